"""How a notebook is staged for the course website (instructor.site.build.site_notebook): fast, no Sphinx needed.

The built pages themselves are checked by tests/site (`make test-site`).
"""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from instructor.hosted import SETUP_TAG, colab_url
from instructor.site import build


def _widget(text: str):
    return new_output("display_data", data={build.WIDGET_VIEW: {"model_id": "abc", "version_major": 2,
                                                                "version_minor": 0}, "text/plain": text})


def _notebook() -> nbformat.NotebookNode:
    figure = new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    training = new_code_cell("history = train.fit(model, data)", outputs=[
        _widget("epochs:   0%|          | 0/30 [00:00<?, ?it/s]"), figure])
    explorer = new_code_cell("display(explorer)", outputs=[
        _widget("HBox(children=(VBox(children=(FloatSlider(value=0.0, description='z[0]'),)),))")])
    return new_notebook(cells=[
        new_markdown_cell("# 05 · The VAE"),
        new_code_cell("# Colab or Kaggle only", metadata={"tags": [SETUP_TAG]}),
        new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"),
        new_markdown_cell("**Question.**\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"),
        new_code_cell("assert f() == 1\n### BEGIN HIDDEN TESTS\nassert f() + 1 == 2\n### END HIDDEN TESTS"),
        training, explorer], metadata={"widgets": {"state": {}}})


def test_a_page_has_no_marker_no_setup_cell_and_its_launch_line_under_the_title():
    page = build.site_notebook(_notebook(), "05_vae", "_notebooks/05_vae.ipynb")
    sources = [c.source for c in page.cells]
    assert not any("BEGIN" in s or "END " in s for s in sources)
    assert not any("Colab or Kaggle only" in s for s in sources)
    assert sources[0] == "# 05 · The VAE"
    assert "(path:_notebooks/05_vae.ipynb){.course-download}" in sources[1]
    assert f"[Open in Colab]({colab_url('05_vae')}){{.course-colab}}" in sources[1]
    assert "Because." in sources[3] and "assert f() + 1 == 2" in sources[4]  # the instructor text stays, its markers go
    assert "widgets" not in page.metadata


def test_progress_bars_are_dropped_and_other_widgets_become_a_note():
    original = _notebook()
    page = build.site_notebook(original, "05_vae", "x.ipynb")
    training, explorer = page.cells[-2], page.cells[-1]
    assert [list(o.data) for o in training.outputs] == [["image/png", "text/plain"]]  # the bar is gone, the figure stays
    (note,) = explorer.outputs
    assert build.WIDGET_NOTE in note.data["text/markdown"] and build.WIDGET_VIEW not in note.data
    assert len(original.cells[-2].outputs) == 2  # the notebook itself is not changed
