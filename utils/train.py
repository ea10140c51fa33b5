"""Device choice, seeding, and one short training loop for the whole course (CUDA speed-ups: utils/cuda_speedups.py)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from utils import cuda_speedups

DEVICE_ENV = "VAE_COURSE_DEVICE"  # e.g. VAE_COURSE_DEVICE=cpu forces the CPU on a GPU machine
THREADS_ENV = "VAE_COURSE_THREADS"


def get_device() -> torch.device:
    """The device the course trains on: $VAE_COURSE_DEVICE if set, else CUDA, else Apple MPS, else CPU."""
    wanted = os.environ.get(DEVICE_ENV, "").strip().lower()
    if wanted:
        if wanted.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"{DEVICE_ENV}={wanted} but PyTorch sees no CUDA GPU (torch {torch.__version__}). "
                               f"Unset {DEVICE_ENV} to fall back to the CPU, or install a CUDA build (see README).")
        if wanted == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"{DEVICE_ENV}=mps but Apple MPS is not available here. Unset {DEVICE_ENV}.")
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (CPU and GPU), and make CPU runs bit-identical.

    CPU work runs on $VAE_COURSE_THREADS threads (default 1): one thread gives the same numbers on every
    run and is as fast as two for the course's small models on a shared 2-core machine.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.set_num_threads(int(os.environ.get(THREADS_ENV, "1")))


Batch = tuple[torch.Tensor, ...]
LossFn = Callable[[nn.Module, Batch], torch.Tensor]


def _as_tuple(data: torch.Tensor | Batch) -> Batch:
    return (data,) if isinstance(data, torch.Tensor) else tuple(data)


def iterate_batches(data: Batch, batch_size: int, generator: torch.Generator | None = None):
    """Yield batches of the tensors in `data` (all of length N), shuffled when a generator is given."""
    n = len(data[0])
    order = torch.randperm(n, generator=generator).to(data[0].device) if generator is not None else None
    for start in range(0, n, batch_size):
        if order is None:
            yield tuple(t[start:start + batch_size] for t in data)
        else:
            idx = order[start:start + batch_size]
            yield tuple(t[idx] for t in data)


@torch.no_grad()
def evaluate(model: nn.Module, loss_fn: LossFn, data: torch.Tensor | Batch, batch_size: int = 1000) -> float:
    """Mean of loss_fn over `data`, batch by batch (weighted by batch size), in eval mode."""
    data = _as_tuple(data)
    was_training = model.training
    model.eval()
    total = 0.0
    for batch in iterate_batches(data, batch_size):
        total += loss_fn(model, batch).item() * len(batch[0])
    model.train(was_training)
    return total / len(data[0])


def training_step(model: nn.Module, loss_fn: LossFn, optimizer: torch.optim.Optimizer, batch: Batch,
                  clip_grad: float | None = None) -> torch.Tensor:
    """One gradient step on `batch`: loss, backward pass, optional gradient clipping, optimizer step; returns the loss."""
    loss = loss_fn(model, batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip_grad is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
    optimizer.step()
    return loss


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    train_data: torch.Tensor | Batch,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    eval_data: torch.Tensor | Batch | None = None,
    seed: int = 0,
    progress: bool = True,
    clip_grad: float | None = None,
    amp: bool = False,
    compile: bool = False,
    metrics: dict[str, LossFn] | None = None,
) -> dict[str, list[float]]:
    """Train `model` by minimizing `loss_fn(model, batch)` with Adam (or `optimizer`).

    train_data / eval_data: a tensor or a tuple of tensors (e.g. (images, labels)), already on the model's
        device; each epoch visits them in a new seeded random order, `batch_size` rows at a time.
    loss_fn: returns a scalar, the mean loss of the batch in the unit you want to read (e.g. nats per image).
    clip_grad: max gradient norm, or None.
    amp, compile: opt-in speed-ups for a CUDA GPU (a ValueError elsewhere), see utils/cuda_speedups.py: mixed
        precision, and a compiled loss replayed as CUDA graphs. Results match the default closely, not bit for bit.
    metrics: extra numbers {name: fn(model, batch)} evaluated after each epoch on the training data and eval_data
        (e.g. the two terms of a loss), recorded as "train_<name>" and "eval_<name>" (not counted in "seconds").
    Returns the history as plain lists, one entry per epoch: {"train_loss": [...], "eval_loss": [...] (if
        eval_data), "seconds": [...], "cpu_seconds": [...], "epoch_seconds": [...], metrics...}.
    seconds: wall-clock time of the training steps; cpu_seconds: this thread's CPU time for them (a busy machine
    barely changes it); epoch_seconds: the whole epoch with its evaluations, the time the progress bar shows.
    """
    train_data = _as_tuple(train_data)
    if amp or compile:  # opt-in GPU speed-ups; the plain step below is what runs everywhere else
        optimizer, step = cuda_speedups.fast_step(model, loss_fn, train_data[0].device, lr=lr, optimizer=optimizer,
                                                  amp=amp, compile=compile, clip_grad=clip_grad)
    else:
        optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)

        def step(batch: Batch) -> torch.Tensor:
            return training_step(model, loss_fn, optimizer, batch, clip_grad)

    generator = torch.Generator().manual_seed(seed)
    history: dict[str, list[float]] = {"train_loss": [], "seconds": [], "cpu_seconds": [], "epoch_seconds": []}
    if eval_data is not None:
        history["eval_loss"] = []

    if progress:  # plain text first: it shows at once, before the progress bar's widget has loaded
        print(f"training {type(model).__name__}: {epochs} epochs of {len(train_data[0]):,} examples, "
              f"batch {batch_size}", flush=True)
    bar = tqdm(range(1, epochs + 1), desc="epochs", disable=not progress)
    for _ in bar:
        start, cpu_start = time.perf_counter(), time.thread_time()
        total, seen = torch.zeros((), device=train_data[0].device), 0
        model.train()
        for batch in iterate_batches(train_data, batch_size, generator):
            loss = step(batch)
            total += loss.detach() * len(batch[0])  # stays on the device: no sync per step
            seen += len(batch[0])
        history["train_loss"].append(total.item() / seen)
        if eval_data is not None:
            history["eval_loss"].append(evaluate(model, loss_fn, eval_data))
        history["seconds"].append(time.perf_counter() - start)
        history["cpu_seconds"].append(time.thread_time() - cpu_start)
        for name, fn in (metrics or {}).items():
            for split, split_data in (("train", train_data), ("eval", eval_data)):
                if split_data is not None:
                    history.setdefault(f"{split}_{name}", []).append(evaluate(model, fn, split_data))
        history["epoch_seconds"].append(time.perf_counter() - start)
        bar.set_postfix({k: f"{v[-1]:.3f}" for k, v in history.items() if k.endswith("loss")})
    return history
