"""Figures used across the course. Each function labels its axes and returns the Figure; those that draw one panel
take `ax=None` (draw into a new figure, or into the panel given).

Every figure a notebook shows goes through `show(fig, alt="...")`: the figure as an HTML <img> whose alt text says
what it shows, the one form that both JupyterLab and the course website (MyST-NB) render with its alt text (neither
reads alt text from an image/png output). Importing this module sets the course's colours (`use_course_style`):
Okabe-Ito colours, each paired with its own line style, so two lines never differ by colour alone; in a notebook it
also closes the figures of a cell that raised, which would otherwise be shown half drawn and without alt text.

They work headless (the Agg backend in tests and CI) and in JupyterLab.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import cycler
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

FIGSIZE = (6.4, 4.0)
IMAGE_CMAP = "gray_r"  # dark ink on white paper, like the digits themselves
CONTINUOUS_CMAP = "viridis"  # ordered values: perceptually uniform, readable with colour-vision deficiencies and in grey
# Okabe & Ito's palette, distinguishable with the common colour-vision deficiencies (ordered by contrast on white;
# yellow, too pale for a line, comes last). Each colour has its own line style: lines never differ by colour alone.
LINE_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
LINE_STYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (8, 2)), (0, (1, 2)))
# The ten digit classes: Paul Tol's colour-blind-safe "muted" palette (9 colours) and black. latent_scatter also
# writes each digit at the middle of its class, so no class is told by colour alone.
CLASS_COLORS = ("#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499",
                "#000000")
CLASS_CMAP = ListedColormap(CLASS_COLORS, name="digit_classes")


def use_course_style() -> None:
    """Set matplotlib's colour cycle (C0, C1, ... and every unstyled line) to LINE_COLORS paired with LINE_STYLES,
    and its default colour map to CONTINUOUS_CMAP. Done once when `utils.plot` is imported."""
    plt.rcParams["axes.prop_cycle"] = cycler(color=list(LINE_COLORS)) + cycler(linestyle=list(LINE_STYLES))
    plt.rcParams["image.cmap"] = CONTINUOUS_CMAP


def close_figures_of_failed_cell(shell=None) -> None:
    """IPython hook: when a cell raised (e.g. an unanswered exercise), close the figures it left open, so that the
    inline backend does not show them half drawn and without a text alternative."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    if shell is not None and not shell.last_execution_succeeded:
        plt.close("all")


def _install_failed_cell_hook() -> None:
    """Run close_figures_of_failed_cell after every cell, before the inline backend shows the cell's open figures."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the course's requirements
        return
    shell = get_ipython()
    if shell is None:
        return
    hooks = shell.events.callbacks["post_execute"]
    if not any(getattr(h, "__name__", "") == close_figures_of_failed_cell.__name__ for h in hooks):
        hooks.insert(0, close_figures_of_failed_cell)


use_course_style()
_install_failed_cell_hook()


def _png(fig: Figure) -> str:
    """The figure as a base64-encoded PNG (white background, cropped to its contents, as Jupyter shows figures)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", facecolor="white")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(png: str, alt: str) -> str:
    if not alt or not alt.strip():
        raise ValueError("a figure needs a text alternative: say what it shows, e.g. show(fig, alt='Line plot of ...')")
    return f'<img src="data:image/png;base64,{png}" alt="{html.escape(alt.strip(), quote=True)}">'


def figure_html(fig: Figure, alt: str) -> str:
    """The figure as an HTML <img> (a PNG in a data: URI) whose alt attribute is `alt`, escaped."""
    return _img(_png(fig), alt)


def figure_bundle(fig: Figure, alt: str) -> dict[str, str]:
    """The MIME bundle `show` displays: text/html (the <img> with its alt text), which JupyterLab and MyST-NB prefer;
    image/png, the same picture for tools that cannot show HTML (a PDF export); text/plain, the alt text."""
    png = _png(fig)
    return {"text/html": _img(png, alt), "image/png": png, "text/plain": f"[figure] {alt.strip()}"}


def show(fig: Figure, alt: str) -> None:
    """Display `fig` in the notebook with a text alternative, then close it (so it is not shown twice).

    alt: what the figure shows, for a reader who cannot see it: the kind of plot, its axes and what stands out,
    e.g. "Line plot of the loss (nats per image) against epochs 1 to 20: it falls fast, then levels off near 80."
    """
    from IPython.display import display

    display(figure_bundle(fig, alt), raw=True)
    plt.close(fig)


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
        if key.endswith("loss"):  # the course's style cycle gives each curve its own colour and line style
            ax.plot(range(1, len(values) + 1), values, marker="os^D"[len(ax.lines) % 4], ms=3, label=key.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def latent_scatter(z: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, title: str = "Latent codes",
                   ax: Axes | None = None) -> Figure:
    """Scatter 2-d codes z (N, 2), coloured by digit class, with a colour bar; each class's digit is also written
    at the class's median code (on a white box), so the classes are told apart without colour too."""
    z, labels = _to_numpy(z), _to_numpy(labels)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"latent_scatter needs codes of shape (N, 2), got {z.shape}")
    fig, ax = axes(ax, (5.5, 5.0))
    points = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap=CLASS_CMAP, s=6, vmin=-0.5, vmax=9.5)
    for digit in np.unique(labels).astype(int):
        x, y = np.median(z[labels == digit], axis=0)
        ax.text(x, y, str(digit), ha="center", va="center", fontsize=11, fontweight="bold",
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.85, "edgecolor": "0.3"})
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


def variance_loglog(sample_sizes: Sequence[float], variances: Mapping[str, Sequence[float]],
                    reference: Mapping[str, float] | None = None, title: str = "Estimator variance",
                    ax: Axes | None = None, xlabel: str = "number of samples N",
                    ylabel: str = "variance of the estimate") -> Figure:
    """Plot each estimator's variance against the number of samples N (or another positive x) on log-log axes.

    reference: optional per-sample variances v, drawn as dashed lines v / N (the closed form; only for x = N).
    """
    fig, ax = axes(ax)
    ns = np.asarray(sample_sizes, dtype=float)
    markers = "os^Dv"
    for i, (name, values) in enumerate(variances.items()):
        color = f"C{i}"
        ax.loglog(ns, values, marker=markers[i % len(markers)], ls="-", color=color, label=name)
        if reference and name in reference:
            ax.loglog(ns, reference[name] / ns, ls="--", color=color, alpha=0.7, label=f"{name}: {reference[name]:g}/N")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return fig


def vae_diagram(ax: Axes | None = None) -> Figure:
    """The VAE as a block diagram: x → encoder → (μ, log σ²) → z = μ + σ ⊙ ε (ε ~ N(0, I)) → decoder → logits.

    Boxes are networks or values, arrows the flow of a forward pass; the noise ε enters from below, outside the
    path that gradients take to μ and log σ² (the reparameterization).
    """
    fig, ax = axes(ax, figsize=(11, 3.2))
    boxes = {  # name: (x centre, y centre, text, face colour)
        "x": (0.6, 1.0, "image $x$\n(784 pixels)", "white"),
        "enc": (2.6, 1.0, "encoder\n$q_\\phi(z \\mid x)$\n784 → 400 → ReLU", LINE_COLORS[5]),
        "mu": (4.8, 1.6, "$\\mu_\\phi(x)$", "white"),
        "lv": (4.8, 0.4, "$\\log \\sigma^2_\\phi(x)$", "white"),
        "z": (7.0, 1.0, "$z = \\mu + \\sigma \\odot \\varepsilon$\n$\\sigma = \\exp(\\log \\sigma^2 / 2)$",
              "white"),
        "eps": (7.0, -0.45, "$\\varepsilon \\sim \\mathcal{N}(0, I)$", "0.92"),
        "dec": (9.6, 1.0, "decoder\n$p_\\theta(x \\mid z)$\n$d$ → 400 → ReLU → 784", LINE_COLORS[4]),
        "out": (12.0, 1.0, "logits $\\ell$\n$p(x_j = 1) = \\sigma(\\ell_j)$", "white"),
    }
    texts = {name: ax.text(x, y, text, ha="center", va="center", fontsize=10,
                           bbox={"boxstyle": "round,pad=0.4", "facecolor": face, "edgecolor": "black"})
             for name, (x, y, text, face) in boxes.items()}
    links = [("x", "enc", (1, 0.5), (0, 0.5)), ("enc", "mu", (1, 0.7), (0, 0.5)), ("enc", "lv", (1, 0.3), (0, 0.5)),
             ("mu", "z", (1, 0.5), (0, 0.7)), ("lv", "z", (1, 0.5), (0, 0.3)), ("eps", "z", (0.5, 1), (0.5, 0)),
             ("z", "dec", (1, 0.5), (0, 0.5)), ("dec", "out", (1, 0.5), (0, 0.5))]
    for source, target, start, end in links:
        ax.annotate("", xy=end, xycoords=texts[target], xytext=start, textcoords=texts[source],
                    arrowprops={"arrowstyle": "->", "lw": 1.5, "color": "black", "shrinkA": 6, "shrinkB": 6})
    ax.text(4.8, 2.25, "KL$(q_\\phi(z \\mid x) \\,\\|\\, \\mathcal{N}(0, I))$ from $\\mu$, $\\log\\sigma^2$",
            ha="center", fontsize=9)
    ax.text(12.0, 1.8, "reconstruction $-\\log p_\\theta(x \\mid z)$", ha="center", fontsize=9)
    ax.set(xlim=(-0.3, 13.2), ylim=(-0.9, 2.5), title="The variational autoencoder, one forward pass")
    ax.axis("off")
    return fig
