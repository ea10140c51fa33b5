"""Interactive figures for the course: a matplotlib figure, a pure update function, and sliders around them.

Each widget has three layers, so that it can be tested without a browser:

1. a pure function that computes the numbers a figure shows (`jensen_numbers`, `elbo_gap_numbers`);
2. a figure class that draws once and whose `update(...)` moves its lines and texts and returns those numbers
   (`JensenFigure`, `ElboGapFigure`);
3. a function that puts ipywidgets sliders around the figure (`jensen_widget`, `elbo_gap_widget`), both built on
   `slider_panel`.

Figures are created with `matplotlib.figure.Figure`, not pyplot, so a notebook shows them only where the widget
displays them. The module also holds the 1-d linear-Gaussian model z ~ N(0, 1), x | z ~ N(w z, σ²) whose exact
posterior and marginal likelihood the ELBO-gap widget draws. Nothing here computes an exercise's answer: the ELBO
shown by `ElboGapFigure` comes from a function the notebook passes in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from utils import plot  # also sets the course's colours and line styles

FIGSIZE_WIDE = (10.0, 4.0)
# Okabe-Ito colours (as plot.LINE_COLORS), distinguishable with the common colour-vision deficiencies; lines also
# differ in style. Jensen's figure draws its curve, chord and gap in the first, second and last of them.
POSTERIOR_COLOR, Q_COLOR, ELBO_COLOR, GAP_COLOR = "#0072B2", "#E69F00", "#009E73", "#D55E00"


# --------------------------------------------------------------------------------------------------------------
# Shared slider machinery
# --------------------------------------------------------------------------------------------------------------

# ipywidgets draws a slider's handle (role="slider", what the keyboard moves) without an accessible name, and its
# label beside it is not linked to it, so a screen reader announces "slider 0.30" without saying which. This script,
# shown once with every panel, names each handle after its label (aria-label) as the widgets appear on the page.
SLIDER_NAMES_JS = """(() => {
  if (window.vaeCourseSliderNames) return;
  window.vaeCourseSliderNames = true;
  const name = () => document.querySelectorAll('.widget-slider').forEach(slider => {
    const label = (slider.querySelector('.widget-label') || {}).textContent || '';
    slider.querySelectorAll('[role="slider"]').forEach(handle => {
      if (label.trim() && handle.getAttribute('aria-label') !== label.trim()) handle.setAttribute('aria-label', label.trim());
    });
  });
  name();
  new MutationObserver(name).observe(document.body, {childList: true, subtree: true});
})();"""


def slider_names():
    """An (empty-looking) ipywidgets.Output that runs SLIDER_NAMES_JS: put it beside any sliders."""
    import ipywidgets
    from IPython.display import Javascript, display

    out = ipywidgets.Output()
    with out:
        display(Javascript(SLIDER_NAMES_JS))
    return out


def slider_panel(figure: Figure, update: Callable[..., object], sliders: Mapping[str, object],
                 describe: Callable[[], str], columns: int = 3):
    """Sliders above an output area that shows `figure`; moving a slider calls `update(**values)` and redraws.

    sliders: name -> ipywidgets value widget (e.g. FloatSlider); `update` receives every slider's value by name.
    describe: returns the figure's text alternative as it is now (called after every update; see plot.show).
    Returns an ipywidgets.VBox. The figure is drawn once immediately, so the panel works when a notebook is run
    headless (nbval, a grader) as well as in JupyterLab.
    """
    import ipywidgets
    from IPython.display import Javascript, clear_output, display

    out = ipywidgets.Output()

    def refresh(_change=None) -> None:
        update(**{name: widget.value for name, widget in sliders.items()})
        with out:
            clear_output(wait=True)
            display(plot.figure_bundle(figure, describe()), raw=True)
            display(Javascript(SLIDER_NAMES_JS))  # the sliders' names for screen readers (see SLIDER_NAMES_JS)

    for widget in sliders.values():
        widget.observe(refresh, names="value")
    refresh()
    widgets = list(sliders.values())
    rows = [ipywidgets.HBox(widgets[i:i + columns]) for i in range(0, len(widgets), columns)]
    return ipywidgets.VBox([*rows, out])


def _float_slider(description: str, value: float, low: float, high: float, step: float, wide: bool = False):
    """A labelled slider, moved with the arrow keys once focused (Tab); wide ones are easier to set with a mouse."""
    import ipywidgets

    layout = {"width": "min(520px, 95%)"} if wide else {}
    return ipywidgets.FloatSlider(value=value, min=low, max=high, step=step, description=description,
                                  continuous_update=True, readout_format=".2f", layout=layout)


# --------------------------------------------------------------------------------------------------------------
# Jensen's inequality
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScalarFunction:
    """A named scalar function for the Jensen figure; `kind` is 'convex' or 'concave'."""

    name: str
    f: Callable[[np.ndarray], np.ndarray]
    kind: str


JENSEN_FUNCTIONS = (
    ScalarFunction("$f(x) = x^2$", np.square, "convex"),
    ScalarFunction(r"$f(x) = \log x$", np.log, "concave"),
)


def jensen_numbers(f: Callable[[np.ndarray], np.ndarray], a: float, b: float, lam: float,
                   kind: str = "convex") -> dict[str, float]:
    """The two sides of Jensen's inequality for two points a, b with weights λ and 1 − λ.

    kind: 'convex' or 'concave', the shape of f. Returns x = λa + (1−λ)b, f_of_mean = f(x),
    mean_of_f = λ f(a) + (1−λ) f(b) and gap ≥ 0, the amount by which Jensen's inequality holds:
    mean_of_f − f_of_mean for a convex f, f_of_mean − mean_of_f for a concave f (as in Exercise 2.1,
    log E[X] − E[log X]); 0 at λ = 0 or 1 or when a = b.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"λ must lie in [0, 1], got {lam}")
    if kind not in ("convex", "concave"):
        raise ValueError(f"kind must be 'convex' or 'concave', got {kind!r}")
    x = lam * a + (1 - lam) * b
    f_of_mean = float(f(np.float64(x)))
    mean_of_f = float(lam * f(np.float64(a)) + (1 - lam) * f(np.float64(b)))
    gap = mean_of_f - f_of_mean if kind == "convex" else f_of_mean - mean_of_f
    return {"lam": float(lam), "x": float(x), "f_of_mean": f_of_mean, "mean_of_f": mean_of_f, "gap": gap}


class JensenFigure:
    """One panel per function: the curve, the chord from (a, f(a)) to (b, f(b)), and, at x = λa + (1−λ)b,
    the point f(x) on the curve, the point λf(a) + (1−λ)f(b) on the chord and the gap between them.

    Attributes used by tests: fig, axes, curve_points[i], chord_points[i], gap_lines[i], texts[i].
    """

    def __init__(self, a: float = 0.5, b: float = 4.0, lam: float = 0.3,
                 functions: tuple[ScalarFunction, ...] = JENSEN_FUNCTIONS) -> None:
        if a <= 0 or b <= 0:
            raise ValueError("a and b must be positive (the log is one of the functions)")
        self.a, self.b, self.functions = float(a), float(b), functions
        self.fig = Figure(figsize=FIGSIZE_WIDE)
        self.axes = self.fig.subplots(1, len(functions))
        self.axes = np.atleast_1d(self.axes)
        self.curve_points, self.chord_points, self.gap_lines, self.texts = [], [], [], []
        grid = np.linspace(0.7 * min(a, b), 1.1 * max(a, b), 300)  # positive, so that log x is defined
        for ax, fn in zip(self.axes, functions, strict=True):
            convex = fn.kind == "convex"
            ax.plot(grid, fn.f(grid), color=POSTERIOR_COLOR, ls="-", label=fn.name)
            ax.plot([a, b], [fn.f(a), fn.f(b)], color=Q_COLOR, ls="--", label="chord")
            ax.plot([a, b], [fn.f(a), fn.f(b)], "o", color="k", ms=4)
            (curve,) = ax.plot([], [], "o", color=POSTERIOR_COLOR, ms=8, label=r"$f(\lambda a + (1-\lambda) b)$")
            (chord,) = ax.plot([], [], "s", color=Q_COLOR, ms=8, label=r"$\lambda f(a) + (1-\lambda) f(b)$")
            (gap,) = ax.plot([], [], color=GAP_COLOR, ls="-", lw=2.5, label="gap")
            self.curve_points.append(curve)
            self.chord_points.append(chord)
            self.gap_lines.append(gap)
            # Text and legend go where the curve is not: top left / bottom right for a convex curve, swapped for
            # a concave one.
            self.texts.append(ax.text(0.03 if convex else 0.97, 0.97 if convex else 0.03, "", transform=ax.transAxes,
                                      ha="left" if convex else "right", va="top" if convex else "bottom", fontsize=9,
                                      bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"}))
            ax.set_xlabel("$x$")
            ax.set_ylabel("$f(x)$")
            ax.set_title(f"{fn.kind} {fn.name}")
            ax.legend(loc="lower right" if convex else "upper left", fontsize=8)
            ax.grid(alpha=0.3)
        self.fig.tight_layout()
        self.update(lam)

    def update(self, lam: float) -> list[dict[str, float]]:
        """Move the points, the gap segment and the texts to λ; return jensen_numbers for each panel."""
        results = []
        for i, fn in enumerate(self.functions):
            r = jensen_numbers(fn.f, self.a, self.b, lam, fn.kind)
            self.curve_points[i].set_data([r["x"]], [r["f_of_mean"]])
            self.chord_points[i].set_data([r["x"]], [r["mean_of_f"]])
            self.gap_lines[i].set_data([r["x"], r["x"]], [r["f_of_mean"], r["mean_of_f"]])
            order = "chord − curve" if fn.kind == "convex" else "curve − chord"
            self.texts[i].set_text(f"λ = {lam:.2f}\nλf(a)+(1−λ)f(b) = {r['mean_of_f']:.3f}\n"
                                   f"f(λa+(1−λ)b) = {r['f_of_mean']:.3f}\n"
                                   f"gap = {order} = {r['gap']:.3f} (≥ 0)")
            results.append(r)
        self.numbers = results
        return results

    def describe(self) -> str:
        """The figure's text alternative for its current λ."""
        panels = "; ".join(
            f"{fn.kind.capitalize()} panel, {_plain(fn.name)}: the chord's point lies "
            f"{'on or above' if fn.kind == 'convex' else 'on or below'} the curve's point, "
            f"λf(a)+(1−λ)f(b) = {r['mean_of_f']:.3f} vs f(λa+(1−λ)b) = {r['f_of_mean']:.3f}, gap {r['gap']:+.3f} (≥ 0)"
            for fn, r in zip(self.functions, self.numbers, strict=True))
        return (f"Jensen's inequality at λ = {self.numbers[0]['lam']:.2f}, a = {self.a:g}, b = {self.b:g}: each panel draws "
                f"the curve, the dashed chord between (a, f(a)) and (b, f(b)), a circle on the curve and a square on the "
                f"chord at x = λa + (1−λ)b, joined by the gap segment. {panels}.")


def jensen_widget(a: float = 0.5, b: float = 4.0, lam: float = 0.3):
    """A λ slider over a JensenFigure. Returns (ipywidgets.VBox, JensenFigure)."""
    figure = JensenFigure(a, b, lam)
    panel = slider_panel(figure.fig, figure.update, {"lam": _float_slider("λ", lam, 0.0, 1.0, 0.01)}, figure.describe)
    return panel, figure


# --------------------------------------------------------------------------------------------------------------
# The conjugate (linear-Gaussian) latent-variable model and the ELBO gap
# --------------------------------------------------------------------------------------------------------------

def _t(v) -> torch.Tensor:
    return torch.as_tensor(v, dtype=torch.float64)


@dataclass(frozen=True)
class LinearGaussian:
    """z ~ N(0, 1), x | z ~ N(w z, sigma²): a latent-variable model whose posterior and evidence are exact.

    Every method accepts floats or tensors (broadcast together) and returns float64 tensors, in nats.
    posterior:  p(z | x) = N(w x / (w² + σ²), σ² / (w² + σ²));  evidence:  p(x) = N(x; 0, w² + σ²).
    """

    w: float
    sigma: float

    def log_prior(self, z) -> torch.Tensor:
        """log p(z) = log N(z; 0, 1)."""
        z = _t(z)
        return -0.5 * (math.log(2 * math.pi) + z**2)

    def log_likelihood(self, x, z) -> torch.Tensor:
        """log p(x | z) = log N(x; w z, σ²)."""
        x, z = _t(x), _t(z)
        return -0.5 * (math.log(2 * math.pi * self.sigma**2) + (x - self.w * z) ** 2 / self.sigma**2)

    def log_joint(self, x, z) -> torch.Tensor:
        """log p(x, z) = log p(z) + log p(x | z)."""
        return self.log_prior(z) + self.log_likelihood(x, z)

    def posterior(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of the exact posterior p(z | x)."""
        x = _t(x)
        total = self.w**2 + self.sigma**2
        return self.w * x / total, torch.full_like(x, self.sigma / math.sqrt(total))

    def log_marginal(self, x) -> torch.Tensor:
        """log p(x) = log N(x; 0, w² + σ²), the evidence."""
        x = _t(x)
        total = self.w**2 + self.sigma**2
        return -0.5 * (math.log(2 * math.pi * total) + x**2 / total)


def normal_pdf(z: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Density of N(mean, std²) at z (numpy, for drawing)."""
    return np.exp(-0.5 * ((z - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


ElboFn = Callable[[float, float], float]  # (m, s) -> ELBO of q = N(m, s²) for the figure's x


def elbo_gap_numbers(model: LinearGaussian, x: float, m: float, s: float, elbo_fn: ElboFn) -> dict[str, float]:
    """What the ELBO-gap widget shows for q = N(m, s²): log p(x), the ELBO from `elbo_fn(m, s)`, and
    gap = log p(x) − ELBO, which is KL(q ‖ p(z|x)) by factorization #1; plus the posterior's mean and std."""
    if s <= 0:
        raise ValueError(f"s must be positive, got {s}")
    log_px = float(model.log_marginal(x))
    elbo = float(elbo_fn(m, s))
    post_mean, post_std = (float(v) for v in model.posterior(x))
    return {"m": float(m), "s": float(s), "log_px": log_px, "elbo": elbo, "gap": log_px - elbo,
            "post_mean": post_mean, "post_std": post_std}


GAP_AXIS_NATS = 6.0  # the bar's axis shows log p(x) and the 6 nats below it, always the same
S_RANGE = (0.2, 2.0)  # q's standard deviations on the slider; the density axis fits the narrowest q


class ElboGapFigure:
    """Left: prior p(z), exact posterior p(z|x) and q(z) = N(m, s²) over z, on fixed axes. Right: one stacked bar on
    a fixed nats axis, the identity log p(x) = ELBO + KL(q ‖ p(z|x)) at a glance: the ELBO segment rises to the ELBO,
    the gap segment sits on top of it, and together they reach the dashed line at log p(x).

    elbo_fn(m, s) -> ELBO (a float) is supplied by the notebook (it is an exercise), e.g. a lambda around the
    student's `elbo`. Attributes used by tests: fig, q_line, elbo_bar, gap_bar, log_px_line, text, floor.
    """

    def __init__(self, model: LinearGaussian, x: float, elbo_fn: ElboFn, m: float = 0.0, s: float = 1.0,
                 z_range: tuple[float, float] = (-3.5, 3.5)) -> None:
        self.model, self.x, self.elbo_fn = model, float(x), elbo_fn
        self.z = np.linspace(*z_range, 400)
        post_mean, post_std = (float(v) for v in model.posterior(self.x))
        self.fig = Figure(figsize=FIGSIZE_WIDE)
        ax, bx = self.fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})
        self.ax, self.bx = ax, bx
        ax.plot(self.z, normal_pdf(self.z, 0.0, 1.0), color="0.4", ls=":", label="prior $p(z)$")
        ax.plot(self.z, normal_pdf(self.z, post_mean, post_std), color=POSTERIOR_COLOR, ls="-", lw=2,
                label=f"posterior $p(z\\mid x={self.x:g})$")
        (self.q_line,) = ax.plot([], [], color=Q_COLOR, lw=2, ls="--", label="$q(z) = N(m, s^2)$")
        ax.set_ylim(0, 1.05 * normal_pdf(0.0, 0.0, S_RANGE[0]))  # fixed: the narrowest q fits
        ax.set_xlim(*z_range)
        ax.set_xlabel("$z$")
        ax.set_ylabel("density")
        ax.set_title("Prior, exact posterior and $q$")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
        self.text = ax.text(0.98, 0.97, "", transform=ax.transAxes, ha="right", va="top", fontsize=9,
                            bbox={"facecolor": "white", "alpha": 0.9, "edgecolor": "none"})
        log_px = float(model.log_marginal(self.x))
        self.floor = log_px - GAP_AXIS_NATS
        self.log_px_line = bx.axhline(log_px, color="k", lw=1.2, ls="--")
        bx.text(0.62, log_px, r" $\log p(x)$", va="bottom", ha="left", fontsize=9)
        (self.elbo_bar,) = bx.bar([0], [0.0], bottom=self.floor, width=0.8, color=ELBO_COLOR, label="ELBO")
        (self.gap_bar,) = bx.bar([0], [0.0], width=0.8, color=GAP_COLOR, hatch="//", edgecolor="white",
                                 label=r"gap = KL$(q \,\|\, p(z|x))$")
        bx.set_xlim(-0.7, 1.5)
        bx.set_xticks([])
        bx.set_ylim(self.floor, log_px + 0.6)
        bx.set_ylabel("nats")
        bx.set_title(r"$\log p(x)$ = ELBO + KL", fontsize=10)
        bx.legend(loc="lower right", fontsize=8)
        self.below = bx.text(0.0, self.floor + 0.1, "", ha="center", va="bottom", fontsize=8,  # black on white: 4.5:1+
                             bbox={"facecolor": "white", "alpha": 0.9, "edgecolor": "none"})
        self.fig.tight_layout()
        self.update(m, s)

    def update(self, m: float, s: float) -> dict[str, float]:
        """Redraw q = N(m, s²) and the stacked bar; return elbo_gap_numbers."""
        r = elbo_gap_numbers(self.model, self.x, m, s, self.elbo_fn)
        self.q_line.set_data(self.z, normal_pdf(self.z, m, s))
        top = max(r["elbo"], self.floor)  # an ELBO below the axis is drawn at its bottom, and said so
        self.elbo_bar.set_y(self.floor)
        self.elbo_bar.set_height(top - self.floor)
        self.gap_bar.set_y(top)
        self.gap_bar.set_height(r["log_px"] - top)
        self.below.set_text(f"ELBO {r['elbo']:.1f}\nbelow the axis" if r["elbo"] < self.floor else "")
        self.text.set_text(f"m = {m:.2f}, s = {s:.2f}\n{readout(r)}".replace(" = log", "\n= log"))
        self.numbers = r
        return r

    def describe(self) -> str:
        """The figure's text alternative for its current q."""
        r = self.numbers
        return (f"Left: densities over z of the prior N(0, 1) (dotted), the exact posterior p(z | x = {self.x:g}) = "
                f"N({r['post_mean']:.2f}, {r['post_std']:.2f}²) (solid) and q = N({r['m']:.2f}, {r['s']:.2f}²) (dashed). "
                f"Right: one stacked bar in nats, the ELBO {r['elbo']:.3f} plus the gap {r['gap']:.3f} (hatched), "
                f"reaching the dashed line at log p(x) = {r['log_px']:.3f}; the gap is KL(q ‖ p(z|x)) and is 0 only "
                f"when q is the posterior.")


def _plain(label: str) -> str:
    """A matplotlib label without TeX markup, for a text alternative: '$f(x) = \\log x$' -> 'f(x) = log x'."""
    return label.replace("$", "").replace("\\", "")


def readout(r: Mapping[str, float]) -> str:
    """The identity with the widget's numbers, e.g. 'ELBO -3.6512 + gap 0.4123 = log p(x) -3.2389 (nats)'."""
    return f"ELBO {r['elbo']:.4f} + gap {r['gap']:.4f} = log p(x) {r['log_px']:.4f} (nats)"


def elbo_gap_widget(model: LinearGaussian, x: float, elbo_fn: ElboFn, m: float = 0.0, s: float = 1.0):
    """Wide sliders for m and s over an ElboGapFigure, a readout of the identity, and a button that sets q to the
    exact posterior. Returns (ipywidgets.VBox, ElboGapFigure)."""
    import ipywidgets

    figure = ElboGapFigure(model, x, elbo_fn, m, s)
    sliders = {"m": _float_slider("m", m, -3.0, 3.0, 0.01, wide=True),
               "s": _float_slider("s", s, *S_RANGE, 0.01, wide=True)}
    text = ipywidgets.Label(layout={"width": "auto"})

    def update(m: float, s: float) -> dict[str, float]:
        r = figure.update(m, s)
        text.value = readout(r)
        return r

    post_mean, post_std = (float(v) for v in model.posterior(x))
    snap = ipywidgets.Button(description="q = exact posterior", tooltip="set m and s to the posterior's mean and std")

    def to_posterior(_button=None) -> None:
        sliders["m"].value, sliders["s"].value = post_mean, post_std

    snap.on_click(to_posterior)
    panel = slider_panel(figure.fig, update, sliders, figure.describe, columns=1)
    return ipywidgets.VBox([panel.children[0], panel.children[1], ipywidgets.HBox([snap, text]), panel.children[2]]), figure
