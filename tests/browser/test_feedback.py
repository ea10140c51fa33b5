"""What a student sees when an answer is wrong: the check's one ✗ line, and no traceback above it.

Each test builds a small notebook from the instructor notebook (its import cell, the exercise cell with a typical
wrong answer in place of the solution, the visible check), writes it under build/browser-artifacts/fixtures/, runs
it with Run All Cells in JupyterLab and keeps a screenshot of the check cell.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from tests.browser import ui
from tests.browser.conftest import CELL_TIMEOUT, NOTEBOOK_TIMEOUT
from tests.browser.lab import ROOT, Server
from tests.browser.test_failure_modes import write_notebook

SOLUTION = re.compile(r"^(\s*)### BEGIN SOLUTION\n.*?^\s*### END SOLUTION\n?", re.S | re.M)


def _cell(nb: nbformat.NotebookNode, marker: str) -> str:
    return next(c.source for c in nb.cells if c.cell_type == "code" and marker in c.source)


def wrong_answer_notebook(name: str, exercise_marker: str, wrong_body: str, check_marker: str) -> list[str]:
    """[import cell, the pixel count, exercise cell with `wrong_body` as its answer, visible check cell] of
    solutions/<name>."""
    nb = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4)
    exercise = SOLUTION.sub(lambda m: "".join(m.group(1) + line + "\n" for line in wrong_body.split("\n")),
                            _cell(nb, exercise_marker), count=1)
    return [_cell(nb, "from utils import checks"), "PIXELS = data.IMAGE_PIXELS", exercise, _cell(nb, check_marker)]


CASES = {  # name: (notebook, exercise cell, wrong answer, check cell, what the ✗ line names)
    "5.1 logvar used as the standard deviation": (
        "05_vae", "def reparameterize(", "eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)\n"
        "return mu + logvar * eps", "# Check 5.1 (visible", "✗ reparameterize"),
    "1.2 a mean over pixels": (
        "01_autoencoders", "def reconstruction_loss(",
        "return F.binary_cross_entropy_with_logits(logits, x.reshape(len(x), -1))", "# Check 1.2 (visible",
        "✗ reconstruction_loss: this is a mean over pixels"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_wrong_answer_shows_the_checks_one_line_and_no_traceback(case: str, lab: Server, browser,
                                                                   artifacts: Path) -> None:
    notebook, exercise, wrong, check, says = CASES[case]
    slug = re.sub(r"\W+", "-", case)
    rel = write_notebook(artifacts / "fixtures", f"wrong-{slug}.ipynb", wrong_answer_notebook(notebook, exercise, wrong,
                                                                                              check))
    run = ui.open_notebook(browser, lab, rel, f"fixture-wrong-{slug}")
    try:
        state = ui.run_all_cells(run, CELL_TIMEOUT, NOTEBOOK_TIMEOUT)
        run.cell(3).screenshot(path=str(artifacts / f"wrong-answer-{slug}.png"))
        assert [o for outs in state.outputs[:3] for o in outs if o.mime == "application/vnd.jupyter.stderr"] == []
        errors = [o.text.strip() for o in state.outputs[3] if o.mime == "application/vnd.jupyter.stderr"]
        assert len(errors) == 1, errors
        assert errors[0].startswith(says), errors[0]
        assert "\n" not in errors[0] and "Traceback" not in errors[0], errors[0]  # the ✗ line alone
    finally:
        lab.shutdown_sessions(rel)
        run.page.close()
