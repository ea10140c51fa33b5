"""utils.widgets without a browser: the pure numbers, the figures' update functions, and the sliders around them."""

import math
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from utils import widgets


def test_jensen_numbers_both_sides_and_gap():
    r = widgets.jensen_numbers(np.square, 1.0, 3.0, 0.25)
    assert r["x"] == pytest.approx(2.5)
    assert r["f_of_mean"] == pytest.approx(6.25)
    assert r["mean_of_f"] == pytest.approx(0.25 * 1 + 0.75 * 9)
    assert r["gap"] == pytest.approx(7.0 - 6.25)
    concave = widgets.jensen_numbers(np.log, 1.0, 3.0, 0.25, kind="concave")
    assert concave["gap"] == pytest.approx(math.log(2.5) - 0.75 * math.log(3))
    assert concave["gap"] > 0  # Exercise 2.1's sign: log E[X] − E[log X] ≥ 0


def test_jensen_gap_is_never_negative_in_either_panel():
    """The figure shows gap ≥ 0 in both panels, in Exercise 2.1's convention (no "−0.319 (≤ 0)")."""
    jf = widgets.JensenFigure(a=0.5, b=4.0, lam=0.3)
    for lam in np.linspace(0, 1, 21):
        for fn, r in zip(jf.functions, jf.update(float(lam)), strict=True):
            assert r["gap"] >= -1e-12, (fn.kind, lam)
    assert all("−" not in t.get_text().split("gap = ")[1].split("=")[1] for t in jf.texts)
    with pytest.raises(ValueError, match="kind"):
        widgets.jensen_numbers(np.log, 1.0, 2.0, 0.5, kind="linear")


@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_jensen_gap_closes_at_the_ends(lam):
    for f, kind in ((np.square, "convex"), (np.log, "concave"), (np.exp, "convex")):
        assert widgets.jensen_numbers(f, 0.7, 2.9, lam, kind)["gap"] == pytest.approx(0.0, abs=1e-12)


def test_jensen_numbers_rejects_lambda_outside_unit_interval():
    with pytest.raises(ValueError, match="λ"):
        widgets.jensen_numbers(np.log, 1.0, 2.0, 1.5)


def test_jensen_figure_update_moves_points_gap_and_text():
    fig_count = len(plt.get_fignums())
    jf = widgets.JensenFigure(a=0.5, b=4.0, lam=0.3)
    assert len(plt.get_fignums()) == fig_count, "widget figures must not be registered with pyplot"
    results = jf.update(0.8)
    for i, (fn, r) in enumerate(zip(jf.functions, results, strict=True)):
        x = 0.8 * 0.5 + 0.2 * 4.0
        assert r["x"] == pytest.approx(x)
        assert jf.curve_points[i].get_xdata()[0] == pytest.approx(x)
        assert jf.curve_points[i].get_ydata()[0] == pytest.approx(float(fn.f(x)))
        assert jf.chord_points[i].get_ydata()[0] == pytest.approx(0.8 * fn.f(0.5) + 0.2 * fn.f(4.0))
        assert list(jf.gap_lines[i].get_ydata()) == pytest.approx([r["f_of_mean"], r["mean_of_f"]])
        assert f"= {r['gap']:.3f} (≥ 0)" in jf.texts[i].get_text()
        assert "λ = 0.80" in jf.texts[i].get_text()
        assert r["gap"] >= 0
        assert r["gap"] == pytest.approx(abs(r["mean_of_f"] - r["f_of_mean"]))
    before = jf.curve_points[0].get_xdata()[0]
    jf.update(0.1)
    assert jf.curve_points[0].get_xdata()[0] != before
    assert jf.axes[0].get_xlabel() and jf.axes[0].get_title()


@pytest.mark.parametrize("x", [-1.7, 0.0, 2.0])
def test_linear_gaussian_matches_quadrature(x):
    model = widgets.LinearGaussian(w=1.5, sigma=0.8)
    z = torch.linspace(-12, 12, 20_001, dtype=torch.float64)
    joint = model.log_joint(x, z).exp()
    evidence = torch.trapezoid(joint, z)
    assert model.log_marginal(x).item() == pytest.approx(math.log(evidence.item()), abs=1e-9)
    post = joint / evidence
    mean = torch.trapezoid(z * post, z).item()
    std = math.sqrt(torch.trapezoid((z - mean) ** 2 * post, z).item())
    pm, ps = model.posterior(x)
    assert pm.item() == pytest.approx(mean, abs=1e-8)
    assert ps.item() == pytest.approx(std, abs=1e-8)
    assert torch.allclose(model.log_joint(x, z), model.log_prior(z) + model.log_likelihood(x, z))


def quadrature_elbo(model, x):
    """ELBO of q = N(m, s²) by numerical integration: independent of any closed form."""
    def elbo(m, s):
        z = torch.linspace(m - 12 * s, m + 12 * s, 20_001, dtype=torch.float64)
        log_q = -0.5 * math.log(2 * math.pi * s**2) - 0.5 * ((z - m) / s) ** 2
        return torch.trapezoid(log_q.exp() * (model.log_joint(x, z) - log_q), z).item()
    return elbo


def test_elbo_gap_numbers_is_kl_to_posterior_and_vanishes_there():
    model, x = widgets.LinearGaussian(w=1.5, sigma=0.8), 2.0
    elbo = quadrature_elbo(model, x)
    pm, ps = (v.item() for v in model.posterior(x))
    r = widgets.elbo_gap_numbers(model, x, 0.2, 0.9, elbo)
    kl = math.log(ps / 0.9) + (0.9**2 + (0.2 - pm) ** 2) / (2 * ps**2) - 0.5
    assert r["gap"] == pytest.approx(kl, abs=1e-7)
    assert r["log_px"] == pytest.approx(model.log_marginal(x).item())
    assert widgets.elbo_gap_numbers(model, x, pm, ps, elbo)["gap"] == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError):
        widgets.elbo_gap_numbers(model, x, 0.0, 0.0, elbo)


def test_elbo_gap_figure_update_redraws_q_and_bars():
    model, x = widgets.LinearGaussian(w=1.5, sigma=0.8), 2.0
    calls = []

    def fake_elbo(m, s):  # any function will do: the figure only displays what it is given
        calls.append((m, s))
        return -3.0 - m**2 - s

    fig = widgets.ElboGapFigure(model, x, fake_elbo, m=0.2, s=0.9)
    r = fig.update(-0.5, 0.4)
    assert calls[-1] == (-0.5, 0.4)
    assert r["elbo"] == pytest.approx(-3.65)
    assert r["gap"] == pytest.approx(model.log_marginal(x).item() + 3.65)
    assert fig.q_line.get_ydata() == pytest.approx(widgets.normal_pdf(fig.z, -0.5, 0.4))
    # One stacked bar on a fixed axis: the ELBO segment from the axis' floor up to the ELBO, the gap on top of it,
    # ending at log p(x): the identity log p(x) = ELBO + gap is the bar's height.
    log_px = model.log_marginal(x).item()
    limits = fig.bx.get_ylim()
    assert fig.elbo_bar.get_y() == fig.floor == pytest.approx(log_px - widgets.GAP_AXIS_NATS)
    assert fig.elbo_bar.get_y() + fig.elbo_bar.get_height() == pytest.approx(-3.65)
    assert fig.gap_bar.get_y() == pytest.approx(-3.65) and fig.gap_bar.get_height() == pytest.approx(r["gap"])
    assert fig.gap_bar.get_y() + fig.gap_bar.get_height() == pytest.approx(log_px)
    assert fig.log_px_line.get_ydata()[0] == pytest.approx(log_px)
    assert widgets.readout(r) in fig.text.get_text().replace("\n", " ")
    fig.update(2.9, 0.2)  # a very low ELBO: the axis stays, the bar is clipped at the floor and the text says so
    assert fig.bx.get_ylim() == limits
    assert fig.elbo_bar.get_height() == 0.0 and fig.gap_bar.get_y() == fig.floor
    assert fig.below.get_text() == f"ELBO {fake_elbo(2.9, 0.2):.1f}\nbelow the axis"
    assert fig.ax.get_ylim()[1] > widgets.normal_pdf(0.0, 0.0, widgets.S_RANGE[0])  # the narrowest q is not clipped


def test_widgets_build_headless_and_sliders_call_update():
    pytest.importorskip("ipywidgets")
    panel, jf = widgets.jensen_widget(a=0.5, b=4.0, lam=0.3)
    slider = panel.children[0].children[0]
    slider.value = 0.9  # what dragging the slider does: the observer calls JensenFigure.update
    assert jf.curve_points[0].get_xdata()[0] == pytest.approx(0.9 * 0.5 + 0.1 * 4.0)

    model = widgets.LinearGaussian(w=1.5, sigma=0.8)
    panel, gf = widgets.elbo_gap_widget(model, 2.0, quadrature_elbo(model, 2.0), m=0.2, s=0.9)
    (m_slider,), (s_slider,) = panel.children[0].children, panel.children[1].children
    snap, readout = panel.children[2].children
    pm, ps = (v.item() for v in model.posterior(2.0))
    m_slider.value, s_slider.value = round(pm, 2), round(ps, 2)
    assert gf.q_line.get_ydata() == pytest.approx(widgets.normal_pdf(gf.z, round(pm, 2), round(ps, 2)))
    m_slider.value = 0.0
    snap.click()  # the button puts q on the exact posterior: the gap closes
    assert (m_slider.value, s_slider.value) == pytest.approx((pm, ps))
    elbo, gap, log_px = (float(v) for v in re.findall(r"-?\d+\.\d+", readout.value))
    assert gap == pytest.approx(0.0, abs=1e-6) and elbo + gap == pytest.approx(log_px, abs=2e-4)


def test_slider_panel_lays_out_rows_and_passes_values_by_name():
    ipywidgets = pytest.importorskip("ipywidgets")
    seen = []
    sliders = {f"z{i}": ipywidgets.FloatSlider(value=0.0, min=-3, max=3) for i in range(5)}
    panel = widgets.slider_panel(widgets.Figure(), lambda **values: seen.append(values), sliders,
                                 lambda: "five sliders", columns=2)
    assert [len(row.children) for row in panel.children[:-1]] == [2, 2, 1]  # one slider per latent dimension
    sliders["z3"].value = 1.5
    assert seen[0] == dict.fromkeys(sliders, 0.0) and seen[-1]["z3"] == 1.5
