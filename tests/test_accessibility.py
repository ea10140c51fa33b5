"""Accessibility without a browser (issue #23; the axe-core audits are in tests/browser and tests/site).

- Every figure the instructor notebooks show goes through plot.show(fig, alt=...), and their stored outputs carry it:
  an <img> with a non-empty alt text.
- The course's colours stay distinguishable with the common colour-vision deficiencies (simulated with Machado,
  Oliveira & Fernandes 2009, severity 1), and lines and text in figures have enough contrast on white.
- The audit's bookkeeping (tests/browser/a11y.py): the course's nodes apart from JupyterLab's, serious/critical kept.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest
from matplotlib.colors import to_rgb

from tests.browser import a11y
from utils import plot, widgets

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
ALT = re.compile(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="([^"]*)">')

# Machado et al. (2009), severity 1.0, on linear RGB.
CVD = {"protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
       "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
       "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]]}
MIN_DELTA_E = 12.0  # CIELAB distance: well above "just noticeable" (about 2) for marks as small as scatter points


def _linear(color) -> np.ndarray:
    c = np.asarray(to_rgb(color))
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _lab(rgb_linear: np.ndarray) -> np.ndarray:
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ rgb_linear
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def closest_pair(colors, deficiency: str) -> tuple[float, str, str]:
    """(CIELAB distance, colour, colour) of the two colours that look most alike with the deficiency."""
    seen = {c: _lab(np.clip(np.asarray(CVD[deficiency]) @ _linear(c), 0, 1)) for c in colors}
    return min((float(np.linalg.norm(seen[a] - seen[b])), a, b) for a, b in itertools.combinations(colors, 2))


def contrast(color, background="white") -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    def luminance(c) -> float:
        return float(np.dot([0.2126, 0.7152, 0.0722], _linear(c)))

    high, low = sorted((luminance(color), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


# --------------------------------------------------------------------------------------------------------------
# One mechanism for text alternatives, used everywhere
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_every_figure_is_shown_with_a_text_alternative(path: Path) -> None:
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    for cell in cells:
        source = "".join(cell["source"])
        assert "plt.show(" not in source and not re.search(r"display\([\w.]*fig\)", source), \
            f"{path.name}: show figures with plot.show(fig, alt=...), not plt.show() or display(fig):\n{source[:300]}"
        assert source.count("plot.show(") == len(re.findall(r"plot\.show\([^)]*?alt=", source, re.S)), source[:300]
    images = [o for c in cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, f"{path.name} shows no figure (its stored outputs are missing: make execute-solutions)"
    for output in images:
        found = ALT.fullmatch(output["data"].get("text/html", "") if isinstance(output["data"].get("text/html"), str)
                              else "".join(output["data"].get("text/html", [])))
        assert found and len(found.group(1).strip()) > 40, \
            f"{path.name}: a stored figure without an <img alt> (re-run make execute-solutions NB={path.name[:2]})"


def test_widget_figures_describe_what_they_show() -> None:
    jensen = widgets.JensenFigure(lam=0.3)
    assert "λ = 0.30" in jensen.describe() and "gap +2.572" in jensen.describe()
    jensen.update(0.9)
    assert "λ = 0.90" in jensen.describe()
    model = widgets.LinearGaussian(w=1.5, sigma=0.8)
    gap = widgets.ElboGapFigure(model, 2.0, lambda m, s: -3.0, m=0.2, s=0.9)
    assert "q = N(0.20, 0.90²)" in gap.describe() and "ELBO -3.000" in gap.describe()


# --------------------------------------------------------------------------------------------------------------
# Colour
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("deficiency", CVD)
def test_palettes_stay_distinguishable_with_colour_vision_deficiencies(deficiency: str) -> None:
    lines = closest_pair(plot.LINE_COLORS[:6], deficiency)  # the last two (black, yellow) are rarely needed
    classes = closest_pair(plot.CLASS_COLORS, deficiency)
    assert lines[0] >= MIN_DELTA_E and classes[0] >= MIN_DELTA_E, (lines, classes)


def test_the_palette_check_rejects_matplotlibs_default_colours() -> None:
    tab10 = [matplotlib.colors.to_hex(c) for c in matplotlib.colormaps["tab10"].colors]
    assert closest_pair(tab10[:4], "deuteranopia")[0] < MIN_DELTA_E  # green and red: the classic confusion
    assert closest_pair(tab10[:4], "protanopia")[0] < MIN_DELTA_E


def test_lines_and_texts_have_enough_contrast_on_white() -> None:
    assert all(contrast(c) >= 3.0 for c in plot.LINE_COLORS[:4])  # WCAG 1.4.11: graphics 3:1
    model = widgets.LinearGaussian(w=1.5, sigma=0.8)
    gap = widgets.ElboGapFigure(model, 2.0, lambda m, s: -9.0)  # the ELBO below the axis: the widget says so in text
    figures = [widgets.JensenFigure().fig, gap.fig, plot.loss_curves({"train_loss": [2, 1]}),
               plot.latent_scatter(np.random.default_rng(0).normal(size=(40, 2)), np.arange(40) % 10)]
    for fig in figures:
        texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip()]
        assert texts
        low = [(t.get_text()[:30], t.get_color()) for t in texts if contrast(t.get_color()) < 4.5]
        assert low == [], f"text below 4.5:1 on white: {low}"


# --------------------------------------------------------------------------------------------------------------
# The audit's bookkeeping
# --------------------------------------------------------------------------------------------------------------

def _violation(rule: str, impact: str, *course: bool) -> dict:
    return {"id": rule, "impact": impact, "help": rule, "helpUrl": "", "nodes": [
        {"target": [f"#n{i}"], "html": "<x>", "impact": impact, "summary": "", "course": c} for i, c in enumerate(course)]}


def test_audit_bookkeeping_splits_and_filters(tmp_path: Path) -> None:
    found = [_violation("image-alt", "critical", True, False), _violation("region", "moderate", True),
             _violation("color-contrast", "serious", False, False)]
    course, chrome = a11y.split(found)
    assert a11y.counts(course) == {"image-alt (critical)": 1, "region (moderate)": 1}
    assert a11y.counts(chrome) == {"color-contrast (serious)": 2, "image-alt (critical)": 1}
    assert a11y.counts(a11y.blocking(course)) == {"image-alt (critical)": 1}
    report = a11y.write_report(tmp_path, "lab", {"a.ipynb": found}, split_course=True).read_text()
    assert "the course's content: image-alt (critical): 1, region (moderate): 1" in report
    assert json.loads((tmp_path / "lab.json").read_text())["a.ipynb"][0]["id"] == "image-alt"
