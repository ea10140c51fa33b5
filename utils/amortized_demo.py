"""Helpers for notebook 03 (amortized inference): the pretrained decoder, count calls, time a function, print a
table, two figures.

None of them knows an exercise's answer: they load, count, time, format and draw what the notebook gives them.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn

from utils.plot import LINE_STYLES, axes

PIXELS = 784
DECODER_FILE = Path(__file__).resolve().parent / "datasets" / "nb03_decoder.npy"
DECODER_SHA256 = "2d2925d18618200a6354d4e55382e7cf344b2d4b5059908e58a3d72cdcd9f536"


class Decoder(nn.Module):
    """f_theta: z (B, d) -> mean image (B, 784) in (0, 1), an MLP d -> hidden -> hidden -> 784 (ReLU, sigmoid)."""

    def __init__(self, latent_dim: int = 8, hidden_dim: int = 128, data_dim: int = PIXELS) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.ReLU(),  # (B, d) -> (B, hidden)
                                 nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                                 nn.Linear(hidden_dim, data_dim))  # -> (B, 784)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z))


def load_decoder(device: torch.device | str = "cpu") -> Decoder:
    """The pretrained decoder of notebook 03 (d = 8, 128 hidden units), frozen, in eval mode, on `device`.

    Its weights are `utils/datasets/nb03_decoder.npy` (one float32 vector), checked against their SHA-256; see
    utils/datasets/README.md for how they were trained.
    """
    if not DECODER_FILE.is_file():
        raise FileNotFoundError(f"{DECODER_FILE} is missing: restore it from the course "
                                "(git checkout -- utils/datasets) or download the course again.")
    digest = hashlib.sha256(DECODER_FILE.read_bytes()).hexdigest()
    if digest != DECODER_SHA256:
        raise ValueError(f"{DECODER_FILE} is damaged (sha256 {digest[:12]}…, expected {DECODER_SHA256[:12]}…): "
                         "restore it from the course (git checkout -- utils/datasets).")
    decoder = Decoder()
    vector = torch.from_numpy(np.load(DECODER_FILE))
    nn.utils.vector_to_parameters(vector, decoder.parameters())
    return decoder.to(device).eval().requires_grad_(False)


class CallCounter:
    """Wrap a function and count how often it is called (e.g. ELBO evaluations during inference).

    counter = CallCounter(elbo_fn); counter(x, mu, logvar) calls elbo_fn and adds 1 to counter.calls.
    """

    def __init__(self, fn: Callable):
        self.fn = fn
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


def count_forward_passes(module: torch.nn.Module, fn: Callable[[], object]) -> tuple[int, object]:
    """Run fn() and return (how many times module.forward ran, fn's result), via a forward hook."""
    calls = [0]

    def hook(*_):
        calls[0] += 1

    handle = module.register_forward_hook(hook)
    try:
        result = fn()
    finally:
        handle.remove()
    return calls[0], result


def best_time(fn: Callable[[], object], repeats: int = 3, device: torch.device | str | None = None) -> float:
    """Shortest wall-clock time of `repeats` calls of fn(), in seconds (CUDA work is synchronized).

    The minimum, not the mean: on a busy machine other processes only ever add time.
    """
    def sync():
        if device is not None and torch.device(device).type == "cuda":
            torch.cuda.synchronize()

    best = math.inf
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def timed(fn: Callable[[], object], device: torch.device | str | None = None) -> tuple[float, object]:
    """Run fn() once; return (wall-clock seconds, fn's result), synchronizing CUDA before and after."""
    cuda = device is not None and torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def _fmt(value: object, digits: int) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "—"
        return f"{value:,.{digits}f}"
    return str(value)


def format_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str], digits: int = 2) -> str:
    """Rows (dicts) as a plain-text table with a header line; floats with `digits` decimals, NaN as '—'."""
    cells = [[_fmt(row.get(col, ""), digits) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    lines = ["  ".join(col.rjust(w) for col, w in zip(columns, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def elbo_scatter(elbo_per_point: torch.Tensor | np.ndarray, elbo_encoder: torch.Tensor | np.ndarray,
                 title: str = "Per-point ELBO vs encoder ELBO", label: str = "data points",
                 ax: Axes | None = None) -> Figure:
    """Scatter each point's ELBO under its own Q_i (x axis) against its ELBO under the encoder (y axis), in nats.

    Points below the diagonal y = x are where the encoder is worse: their vertical distance to it is that
    point's amortization gap.
    """
    a = np.asarray(torch.as_tensor(elbo_per_point).detach().cpu(), dtype=float)
    b = np.asarray(torch.as_tensor(elbo_encoder).detach().cpu(), dtype=float)
    fig, ax = axes(ax)
    ax.scatter(a, b, s=6, alpha=0.5, label=label)
    low, high = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
    ax.plot([low, high], [low, high], color="black", ls="--", lw=1, label="y = x (no gap)")
    ax.set_xlabel("ELBO with per-point $Q_i$ (nats)")
    ax.set_ylabel(r"ELBO with encoder $q_\phi(z|x)$ (nats)")
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def gap_vs_steps(steps: Sequence[int], gaps: Mapping[str, Sequence[float]], title: str = "Semi-amortized inference",
                 ylabel: str = "remaining gap (nats/point)", ax: Axes | None = None) -> Figure:
    """Plot each curve in `gaps` (name -> gap after k steps, one value per entry of `steps`) against k.

    The x axis is symmetric-log so that k = 0 (the encoder's output) is shown; the y axis is logarithmic
    when every gap is positive.
    """
    fig, ax = axes(ax)
    for i, (name, values) in enumerate(gaps.items()):
        ax.plot(list(steps), list(values), marker="os^D"[i % 4], ms=4, ls=LINE_STYLES[i % len(LINE_STYLES)],
                label=name)
    ax.set_xscale("symlog", linthresh=1)
    if all(v > 0 for values in gaps.values() for v in values):
        ax.set_yscale("log")
    ax.set_xlabel("gradient steps K per data point, starting from the encoder's output")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return fig


def gap_vs_epochs(curves: Mapping[str, Sequence[float]], title: str = "Amortization gap during training",
                  ylabel: str = "held-out amortization gap (nats/point)", ax: Axes | None = None) -> Figure:
    """Plot each curve in `curves` (name -> one gap per epoch, epochs 1, 2, ...) against the epoch.

    The y axis is logarithmic when every value is positive (gaps of different models differ by orders of magnitude).
    """
    fig, ax = axes(ax)
    for i, (name, values) in enumerate(curves.items()):
        epochs = range(1, len(values) + 1)
        ax.plot(list(epochs), list(values), ls=LINE_STYLES[i % len(LINE_STYLES)], lw=1.5, label=name)
    if all(v > 0 for values in curves.values() for v in values):
        ax.set_yscale("log")
    ax.set_xlabel("epoch of encoder training")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return fig
