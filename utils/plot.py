"""Figures used across the course. Each function labels its axes and returns the Figure; those that draw one panel
take `ax=None` (draw into a new figure, or into the panel given).

They work headless (the Agg backend in tests and CI) and in JupyterLab.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

FIGSIZE = (6.4, 4.0)
IMAGE_CMAP = "gray_r"  # dark ink on white paper, like the digits themselves
CLASS_CMAP = "tab10"


def axes(ax: Axes | None, figsize: tuple[float, float] = FIGSIZE) -> tuple[Figure, Axes]:
    """(figure, ax) for a plotting function: the given `ax` and its figure, or a new figure of the course's size."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _to_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def image_grid(
    images: torch.Tensor | np.ndarray,
    labels: Sequence | torch.Tensor | None = None,
    ncols: int = 10,
    title: str = "",
    side: int = 28,
    figsize_per_image: float = 0.9,
) -> Figure:
    """Show images (N, 1, 28, 28), (N, 28, 28) or flat (N, 784) in a grid, with an optional label above each."""
    imgs = _to_numpy(images).reshape(len(images), side, side)
    n = len(imgs)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(figsize_per_image * ncols, figsize_per_image * nrows + 0.4),
                             squeeze=False)
    labels = None if labels is None else [str(int(v)) if isinstance(v, (int, np.integer, torch.Tensor)) else str(v)
                                          for v in labels]
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(imgs[i], cmap=IMAGE_CMAP, vmin=0.0, vmax=1.0)
            if labels is not None:
                ax.set_title(labels[i], fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def loss_curves(history: Mapping[str, Sequence[float]], ylabel: str = "loss", title: str = "Training curves",
                ax: Axes | None = None) -> Figure:
    """Plot every '*loss' entry of a `fit` history against the epoch number."""
    fig, ax = axes(ax)
    for key, values in history.items():
        if key.endswith("loss"):
            ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=key.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def latent_scatter(z: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, title: str = "Latent codes",
                   ax: Axes | None = None) -> Figure:
    """Scatter 2-d codes z (N, 2), coloured by digit class, with a colour bar."""
    z, labels = _to_numpy(z), _to_numpy(labels)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"latent_scatter needs codes of shape (N, 2), got {z.shape}")
    fig, ax = axes(ax, (5.5, 5.0))
    points = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap=CLASS_CMAP, s=6, vmin=-0.5, vmax=9.5)
    fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title(title)
    return fig


def manifold_grid(decode: Callable[[torch.Tensor], torch.Tensor], n: int = 15, span: tuple[float, float] = (-2.5, 2.5),
                  side: int = 28, title: str = "Decoded 2-d latent manifold", ax: Axes | None = None,
                  values: Sequence[float] | None = None) -> Figure:
    """Decode an n×n grid of 2-d codes and tile the images, z_1 left to right and z_2 bottom to top.

    decode: maps codes (n*n, 2) to images in [0, 1] with side*side pixels each.
    values: the n coordinates used on both axes (e.g. Gaussian quantiles); default n evenly spaced points over `span`.
    """
    values = np.linspace(span[0], span[1], n) if values is None else np.asarray(values, dtype=float)
    n = len(values)
    z1, z2 = np.meshgrid(values, values[::-1])  # z2 grows upwards, like the axis
    codes = torch.tensor(np.stack([z1.ravel(), z2.ravel()], axis=1), dtype=torch.float32)
    with torch.no_grad():
        images = _to_numpy(decode(codes)).reshape(n, n, side, side)
    canvas = images.transpose(0, 2, 1, 3).reshape(n * side, n * side)
    fig, ax = axes(ax, (6.0, 6.0))
    lo, hi = float(values[0]), float(values[-1])
    ax.imshow(canvas, cmap=IMAGE_CMAP, vmin=0, vmax=1, extent=(lo, hi, lo, hi))
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title(title)
    return fig


def variance_loglog(sample_sizes: Sequence[int], variances: Mapping[str, Sequence[float]],
                    reference: Mapping[str, float] | None = None, title: str = "Estimator variance",
                    ax: Axes | None = None) -> Figure:
    """Plot each estimator's variance against the number of samples N on log-log axes.

    reference: optional per-sample variances v, drawn as dashed lines v / N (the closed form).
    """
    fig, ax = axes(ax)
    ns = np.asarray(sample_sizes, dtype=float)
    for i, (name, values) in enumerate(variances.items()):
        color = f"C{i}"
        ax.loglog(ns, values, marker="o", color=color, label=name)
        if reference and name in reference:
            ax.loglog(ns, reference[name] / ns, ls="--", color=color, alpha=0.7, label=f"{name}: {reference[name]:g}/N")
    ax.set_xlabel("number of samples N")
    ax.set_ylabel("variance of the estimate")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return fig
