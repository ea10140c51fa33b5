"""WCAG 2.1 AA in JupyterLab (issue #23): axe-core audits the page with a course notebook open, the instructor
notebook 05 as stored and a student notebook after Run All. What the course controls (the notebooks' outputs:
figures, text and widgets, and their rendered markdown) has no violation of impact serious or critical;
everything found, JupyterLab's own interface included and listed apart, is written to
build/browser-artifacts/accessibility/jupyterlab.{json,md}.

In the student notebook, every slider's handle (what the keyboard moves) is focusable and named after its label. A
page with a figure that has no alt text and a slider without a name shows that the audit catches them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import a11y, ui
from tests.browser.conftest import CELL_TIMEOUT, NOTEBOOK_TIMEOUT
from tests.browser.lab import Server

# (notebook, run it first?): the instructor notebook with its stored outputs, and a student notebook with widgets
# after Run All (as a student sees it, unanswered exercises and all).
AUDITED = [("solutions/05_vae.ipynb", False), ("notebooks/02_latent_variables_elbo.ipynb", True)]
FOUND: dict[str, list[dict]] = {}


@pytest.fixture(scope="module")
def report(artifacts: Path) -> Iterator[dict[str, list[dict]]]:
    """The violations of every audited page, written to the artifacts folder at the end (even after a failure)."""
    yield FOUND
    if FOUND:
        a11y.write_report(artifacts / "accessibility", "jupyterlab", FOUND, split_course=True)


@pytest.mark.parametrize(("rel_path", "run_all"), AUDITED)
def test_notebook_content_has_no_serious_violation(rel_path: str, run_all: bool, lab: Server, browser,
                                                   report: dict, artifacts: Path) -> None:
    workspace = "a11y-" + re.sub(r"\W", "-", rel_path.removesuffix(".ipynb"))
    run = ui.open_notebook(browser, lab, rel_path, workspace)
    try:
        if run_all:
            ui.run_all_cells(run, CELL_TIMEOUT, NOTEBOOK_TIMEOUT)
        # Every figure output has been rendered (JupyterLab renders cells lazily as they come into view).
        run.page.evaluate("() => { const n = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) "
                          ".jp-WindowedPanel-outer'); if (n) n.scrollTop = n.scrollHeight; }")
        run.page.wait_for_timeout(1000)
        violations = a11y.audit(run.page, a11y.COURSE_SELECTOR)
        report[rel_path] = violations
        course, _ = a11y.split(violations)
        images = run.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell-outputArea img")
        alts = images.evaluate_all("imgs => imgs.map(i => (i.getAttribute('alt') || i.getAttribute('title') || '').trim())")
        # Each slider's handle (what the keyboard moves) is focusable and named after its label.
        sliders = run.page.evaluate("""() => [...document.querySelectorAll('.jp-OutputArea-output .widget-slider')].map(s => {
            const h = s.querySelector('[role="slider"]');
            return [(s.querySelector('.widget-label') || {}).textContent, h && h.getAttribute('aria-label'),
                    h && h.getAttribute('tabindex')]; })""")
    finally:
        try:
            lab.shutdown_sessions(rel_path)
        finally:
            run.page.close()
    bad = a11y.blocking(course)
    assert bad == [], f"{rel_path}: serious or critical violations in the notebook's content:\n{a11y.describe(bad)}"
    assert alts and all(alts), f"{rel_path}: {alts.count('')} of {len(alts)} images have no text alternative"
    assert all(label and name == label.strip() and tab == "0" for label, name, tab in sliders), sliders
    if run_all:
        assert sliders, f"{rel_path}: no slider to check"


PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="  # 1×1 PNG
BROKEN_PAGE = f"""<!doctype html><html lang="en"><head><title>fixture</title></head><body><main>
<div class="jp-OutputArea-output"><img src="data:image/png;base64,{PIXEL}"></div>
<div class="jp-OutputArea-output"><div class="noUi-handle" role="slider" tabindex="0" aria-valuemin="0"
  aria-valuemax="1" aria-valuenow="0.3"></div></div>
<div class="jp-toolbar"><p style="color:#bbb;background:#fff">JupyterLab's own low-contrast text</p></div>
</main></body></html>"""


def test_the_audit_catches_a_missing_alt_and_an_unnamed_slider(browser) -> None:
    page = browser.new_page()
    try:
        page.set_content(BROKEN_PAGE)
        violations = a11y.audit(page, a11y.COURSE_SELECTOR)
    finally:
        page.close()
    course, chrome = a11y.split(violations)
    found = a11y.counts(a11y.blocking(course))
    assert found.get("image-alt (critical)") == 1, found
    assert found.get("aria-input-field-name (serious)") == 1, found
    assert a11y.counts(chrome) == {"color-contrast (serious)": 1}  # outside the course's content: reported apart
