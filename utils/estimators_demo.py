"""Statistics and figures for notebook 04 (gradient estimators).

- The moments of a mean of n iid draws, and an interval for a sample variance derived from the fourth moment:
  the tolerances of the notebook's statistical checks come from here (`utils.checks_estimators`).
- Figures: the computational graph before and after reparameterization, runs over time (mean and spread across
  seeds), bias/variance against a parameter, and variances against a parameter.

Nothing here knows an exercise's answer: the notebook passes in the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from utils.plot import FIGSIZE, LINE_COLORS, LINE_STYLES, axes


def mean_of_n_moments(variance: float, mu4: float, n: int) -> tuple[float, float]:
    """Variance and fourth central moment of the mean of n iid draws with the given variance and 4th central moment.

    Var = σ²/n and μ4(mean) = μ4/n³ + 3(n-1)σ⁴/n³ (expand E[(Σ d_i)^4] for centred d_i: n μ4 + 3n(n-1)σ⁴, over n⁴).
    """
    return variance / n, mu4 / n**3 + 3 * (n - 1) * variance**2 / n**3


def sample_variance_sd(variance: float, mu4: float, reps: int, ddof: int = 0) -> float:
    """Standard deviation of the sample variance of `reps` iid draws (variance σ², fourth central moment μ4).

    For the unbiased s² (ddof=1): Var(s²) = μ4/R - σ⁴(R-3)/(R(R-1)) (exact). ddof=0 scales s² by (R-1)/R.
    For normal draws μ4 = 3σ⁴ and this is the chi-square value 2σ⁴/(R-1); heavy tails (large μ4) widen it.
    """
    r = reps
    var_unbiased = mu4 / r - variance**2 * (r - 3) / (r * (r - 1))
    scale = 1.0 if ddof == 1 else (r - 1) / r
    return scale * math.sqrt(max(var_unbiased, 0.0))


def sample_variance_interval(variance: float, mu4: float, reps: int, k_low: float = 4.0, k_high: float = 5.0,
                             ddof: int = 0) -> tuple[float, float]:
    """Interval [E[s²] - k_low·sd(s²), E[s²] + k_high·sd(s²)] for the sample variance of `reps` iid draws.

    sd(s²) comes from the fourth central moment (`sample_variance_sd`). The upper side gets more room because a
    sample variance is right-skewed (bounded below by 0, a long upper tail; heavier still for heavy-tailed draws).
    By Chebyshev's inequality the interval holds with probability at least 1 - 1/min(k_low, k_high)² whatever the
    distribution (93.75% for the defaults); for normal draws (a chi-square s²) with 100 reps it misses with
    probability ≈ 1.4e-5 (upper) and ≈ 1e-7 (lower).
    """
    centre = variance * (1.0 if ddof == 1 else (reps - 1) / reps)
    sd = sample_variance_sd(variance, mu4, reps, ddof)
    return centre - k_low * sd, centre + k_high * sd


def runs_plot(steps: Sequence[float], runs: Mapping[str, np.ndarray], ylabel: str, title: str,
              xlabel: str = "step", target: float | None = None, ax: Axes | None = None) -> Figure:
    """Mean over seeds (line) and the 10%–90% range across seeds (band) of each method's runs.

    runs: name -> array (seeds, len(steps)); target: an optional horizontal reference line (e.g. the optimum).
    """
    fig, ax = axes(ax)
    x = np.asarray(steps, dtype=float)
    for i, (name, values) in enumerate(runs.items()):
        values = np.asarray(values, dtype=float)
        low, high = np.quantile(values, [0.1, 0.9], axis=0)
        ax.plot(x, values.mean(0), color=f"C{i}", ls=LINE_STYLES[i % len(LINE_STYLES)],
                label=f"{name} (mean of {len(values)} seeds)")
        ax.fill_between(x, low, high, color=f"C{i}", alpha=0.2, label=f"{name}: 10%–90% of seeds")
    if target is not None:
        ax.axhline(target, color="k", ls=":", lw=1, label=f"optimum {target:g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def bias_variance_plot(xs: Sequence[float], bias: Sequence[float], variance: Sequence[float], xlabel: str, title: str,
                       reference: Mapping[str, float] | None = None,
                       noise_floor: Sequence[float] | None = None) -> Figure:
    """Two log-log panels: |bias| and variance of an estimator against a parameter (e.g. a temperature).

    reference: name -> variance of another estimator, drawn as a horizontal dashed line on the variance panel.
    noise_floor: optional Monte Carlo standard error of the bias at each x (dotted): a bias below it is not resolved.
    """
    fig, (ax_b, ax_v) = plt.subplots(1, 2, figsize=(2 * FIGSIZE[0] * 0.8, FIGSIZE[1]))
    ax_b.loglog(xs, bias, marker="o", color="C0", label="|mean estimate - exact gradient|")
    if noise_floor is not None:
        ax_b.loglog(xs, noise_floor, ls=":", color="gray", label="Monte Carlo noise floor")
    ax_b.legend(fontsize=8)
    ax_b.set_ylabel("|bias| of the gradient (norm)")
    ax_v.loglog(xs, variance, marker="o", color="C1", label="relaxed (pathwise) estimator")
    for i, (name, value) in enumerate((reference or {}).items()):
        ax_v.axhline(value, color=f"C{i + 2}", ls=LINE_STYLES[(i + 1) % len(LINE_STYLES)], label=name)
    ax_v.set_ylabel("per-sample variance of the gradient (trace)")
    for ax in (ax_b, ax_v):
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3, which="both")
    ax_v.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _node(ax: Axes, xy: tuple[float, float], text: str, random: bool) -> None:
    """A node of a computational graph: an orange ellipse for a random variable, a grey box for a deterministic
    value."""
    style = "ellipse,pad=0.2" if random else "round,pad=0.35"
    colour = LINE_COLORS[4] if random else "#DDDDDD"
    ax.text(*xy, text, ha="center", va="center", fontsize=11, zorder=3,
            bbox={"boxstyle": style, "facecolor": colour, "edgecolor": "black"})


def _edge(ax: Axes, start: tuple[float, float], end: tuple[float, float], colour: str = "black",
          ls: str = "-") -> None:
    ax.annotate("", xy=end, xytext=start, zorder=1,
                arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.5, "ls": ls, "shrinkA": 0,
                            "shrinkB": 0})


def reparameterization_graph() -> Figure:
    """The lecture's computational graph before and after reparameterization, side by side.

    Ellipses are random nodes, boxes deterministic ones; black arrows are the forward pass, dashed blue arrows the
    gradient flowing back. Before: z is sampled from p_θ, and no gradient passes the random node. After:
    z = g(θ, ε) is a deterministic function of θ and of a parameter-free noise ε, and the gradient flows through z.
    """
    fig, (before, after) = plt.subplots(1, 2, figsize=(2 * FIGSIZE[0] * 0.8, FIGSIZE[1] * 0.8))
    back = LINE_COLORS[0]
    for ax in (before, after):
        ax.set_xlim(0, 4.2)
        ax.set_ylim(0, 3)
        ax.axis("off")
    _node(before, (0.4, 1.5), "θ", random=False)
    _node(before, (2.0, 1.5), "z ~ p_θ(z)", random=True)
    _node(before, (3.7, 1.5), "f(z)", random=False)
    _edge(before, (0.6, 1.5), (1.3, 1.5))
    _edge(before, (2.7, 1.5), (3.35, 1.5))
    _edge(before, (3.4, 2.0), (2.6, 2.0), colour=back, ls="--")
    before.text(2.0, 2.35, "✗ no ∂z/∂θ: the gradient stops at a sample", ha="center", fontsize=9,
                color=LINE_COLORS[1])
    before.set_title("Before: z is sampled from p_θ")
    _node(after, (0.4, 2.3), "θ", random=False)
    _node(after, (0.6, 0.7), "ε ~ p(ε)", random=True)
    _node(after, (2.1, 1.5), "z = g(θ, ε)", random=False)
    _node(after, (3.8, 1.5), "f(z)", random=False)
    _edge(after, (0.6, 2.2), (1.6, 1.65))
    _edge(after, (1.1, 0.85), (1.6, 1.35))
    _edge(after, (2.75, 1.5), (3.45, 1.5))
    _edge(after, (3.5, 2.0), (2.7, 2.0), colour=back, ls="--")
    _edge(after, (1.55, 2.0), (0.65, 2.5), colour=back, ls="--")
    after.text(3.1, 2.2, "∂f/∂z", ha="center", fontsize=10, color=back)
    after.text(1.1, 2.6, "∂f/∂z · ∂g/∂θ", ha="center", fontsize=10, color=back)
    after.set_title("After: z = g(θ, ε), the noise has no parameter")
    fig.suptitle("Computational graph (ellipse: random node, box: deterministic; dashed: gradient)")
    fig.tight_layout()
    return fig
