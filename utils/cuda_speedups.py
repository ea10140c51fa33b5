"""Opt-in speed-ups for `train.fit` on a CUDA GPU: mixed precision and a compiled loss replayed as CUDA graphs.

For the course's small models a GPU is limited by kernel launches, not arithmetic: these options fuse the forward
and backward pass into a few kernels. On a CPU they do not help (README, Performance) and fit refuses them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Batch = tuple[torch.Tensor, ...]
LossFn = Callable[[nn.Module, Batch], torch.Tensor]

CUDA_ONLY_HINT = ("On a CPU the course's models are limited by their own arithmetic, and the default fit already runs "
                  "at the speed of the bare training steps (README, Performance): leave amp and compile off there.")


def check_cuda_options(device: torch.device, **options: bool) -> None:
    """Raise a ValueError naming the options in `options` that are on while `device` is not a CUDA GPU."""
    on = [name for name, value in options.items() if value]
    if on and device.type != "cuda":
        raise ValueError(f"fit({', '.join(f'{name}=True' for name in on)}) needs the data on a CUDA GPU, but it is on "
                         f"{device}. {CUDA_ONLY_HINT}")


def compile_loss(loss_fn: LossFn, backend: str = "inductor") -> LossFn:
    """`loss_fn` compiled by torch.compile for fit(compile=True) on a CUDA GPU.

    With the default backend ('inductor', mode 'reduce-overhead') the forward and the backward pass become a few
    fused kernels captured as CUDA graphs, so a training step costs a handful of kernel launches instead of dozens:
    for the course's small models the launches, not the arithmetic, are the limit on a GPU. Shapes are static
    (dynamic=False): an epoch's last, smaller batch gets a graph of its own. The first steps are slow (compiling).
    backend='aot_eager' traces the same forward and backward graphs without generating code: the tests use it to
    check on a CPU that a loss compiles.
    """
    if backend == "inductor":
        return torch.compile(loss_fn, mode="reduce-overhead", dynamic=False)
    return torch.compile(loss_fn, backend=backend, dynamic=False)


def fast_step(model: nn.Module, loss_fn: LossFn, device: torch.device, *, lr: float,
              optimizer: torch.optim.Optimizer | None, amp: bool, compile: bool,
              clip_grad: float | None) -> tuple[torch.optim.Optimizer, Callable[[Batch], torch.Tensor]]:
    """(optimizer, step) for fit(amp=..., compile=...): the fused Adam unless `optimizer` is given, and a step that
    runs the loss in bfloat16 (amp) and/or compiled (compile). A ValueError when `device` is not a CUDA GPU."""
    check_cuda_options(device, amp=amp, compile=compile)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    step_loss = compile_loss(loss_fn) if compile else loss_fn

    def step(batch: Batch) -> torch.Tensor:
        if compile:
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's graph outputs may be reused now
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = step_loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        optimizer.step()
        return loss

    return optimizer, step
