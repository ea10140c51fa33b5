"""Every plotting helper draws headless, labels its axes and returns a Figure."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from utils import plot


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def labelled(fig: Figure) -> bool:
    ax = fig.axes[0]
    return bool(ax.get_xlabel() and ax.get_ylabel() and ax.get_title())


def test_image_grid_with_labels():
    fig = plot.image_grid(torch.rand(12, 1, 28, 28), labels=torch.arange(12) % 10, ncols=5, title="digits")
    assert isinstance(fig, Figure) and len(fig.axes) == 15
    assert fig.axes[0].get_title() == "0" and fig._suptitle.get_text() == "digits"
    assert plot.image_grid(np.random.rand(3, 784)).axes[0].images[0].get_array().shape == (28, 28)


def test_loss_curves_latent_manifold_variance():
    fig = plot.loss_curves({"train_loss": [3, 2, 1], "eval_loss": [3.5, 2.5, 2], "seconds": [1, 1, 1]})
    assert labelled(fig) and len(fig.axes[0].lines) == 2  # 'seconds' is not a loss
    assert labelled(plot.latent_scatter(torch.randn(50, 2), torch.randint(0, 10, (50,))))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        plot.latent_scatter(torch.randn(50, 3), torch.zeros(50))
    fig = plot.manifold_grid(lambda z: torch.sigmoid(z.sum(1, keepdim=True).expand(-1, 784)), n=5)
    assert labelled(fig) and fig.axes[0].images[0].get_array().shape == (140, 140)
    fig = plot.manifold_grid(lambda z: torch.sigmoid(z[:, :1].expand(-1, 784)), values=[-1.5, 0.0, 0.5, 2.0])
    assert fig.axes[0].images[0].get_array().shape == (112, 112)
    assert fig.axes[0].images[0].get_extent() == [-1.5, 2.0, -1.5, 2.0]
    fig = plot.variance_loglog([10, 100], {"score": [8.7, 0.87], "pathwise": [0.4, 0.04]}, reference={"score": 87})
    assert labelled(fig) and fig.axes[0].get_xscale() == "log" and len(fig.axes[0].lines) == 3


def test_draws_into_a_given_axes():
    fig, ax = plt.subplots()
    assert plot.loss_curves({"train_loss": [1, 0.5]}, ax=ax) is fig


def test_show_displays_the_figure_as_an_img_with_its_alt_text(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append((obj, raw)))
    fig = plot.loss_curves({"train_loss": [3, 2, 1]})
    plot.show(fig, alt='Loss "falls" from 3 to 1 & levels off')
    (bundle, raw), = shown
    assert raw and set(bundle) == {"text/html", "image/png", "text/plain"}
    html = bundle["text/html"]
    assert html.startswith(f'<img src="data:image/png;base64,{bundle["image/png"]}"')
    assert bundle["image/png"].startswith("iVBOR")  # a PNG
    assert html.endswith('alt="Loss &quot;falls&quot; from 3 to 1 &amp; levels off">')
    assert bundle["text/plain"] == '[figure] Loss "falls" from 3 to 1 & levels off'
    assert not plt.fignum_exists(fig.number)  # closed: the inline backend does not show it a second time
    with pytest.raises(ValueError, match="text alternative"):
        plot.show(plot.loss_curves({"train_loss": [1]}), alt="  ")


def test_course_style_pairs_each_colour_with_a_line_style():
    cycle = plt.rcParams["axes.prop_cycle"].by_key()
    assert cycle["color"] == list(plot.LINE_COLORS)
    assert len(set(map(str, cycle["linestyle"]))) == len(cycle["color"])  # no two lines differ by colour alone
    fig = plot.loss_curves({"train_loss": [3, 2, 1], "eval_loss": [3.5, 2.5, 2]})
    a, b = fig.axes[0].lines
    assert (a.get_linestyle(), a.get_marker()) != (b.get_linestyle(), b.get_marker())
    assert plot.CLASS_CMAP.N == 10 and len(set(plot.CLASS_COLORS)) == 10
    fig = plot.latent_scatter(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), np.array([3, 3, 7]))
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["3", "7"]  # each class named on the plot


def test_a_failed_cell_leaves_no_figure_to_show():
    class Shell:
        last_execution_succeeded = False

    fig = plt.figure()
    plot.close_figures_of_failed_cell(Shell())
    assert not plt.fignum_exists(fig.number)
    Shell.last_execution_succeeded = True
    fig = plt.figure()
    plot.close_figures_of_failed_cell(Shell())
    assert plt.fignum_exists(fig.number)


def test_variance_loglog_takes_another_x():
    fig = plot.variance_loglog([0.1, 1, 10], {"a": [1, 2, 3], "b": [3, 2, 1]}, xlabel="frequency ω",
                               ylabel="per-sample variance")
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel(), len(ax.lines)) == ("frequency ω", "per-sample variance", 2)
    assert ax.get_xscale() == ax.get_yscale() == "log"
