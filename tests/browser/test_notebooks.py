"""Every notebook, student and solution version, opened in JupyterLab and run through the UI as a student does.

For each notebook: no dialog or notification on opening or during the run; Run > Run All Cells runs every cell
(per-cell and per-notebook timeouts name the cell that hangs); no error output but an unanswered exercise's in the
student version; screenshots of every figure in build/browser-artifacts/<folder>-<notebook>/. In the widget
notebooks, a slider moved with the keyboard changes the value shown and the figure's pixels.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser import ui
from tests.browser.conftest import CELL_TIMEOUT, NOTEBOOK_TIMEOUT
from tests.browser.lab import ROOT, Server, unexpected_errors

NOTEBOOKS = sorted(str(p.relative_to(ROOT)) for folder in ("notebooks", "solutions") for p in (ROOT / folder).glob("*.ipynb"))


def _artifact_dir(artifacts: Path, rel_path: str) -> Path:
    folder, name = rel_path.split("/", 1)
    return artifacts / f"{folder}-{Path(name).stem}"


@pytest.fixture(scope="module", params=NOTEBOOKS)
def ran(request: pytest.FixtureRequest, lab: Server, browser, artifacts: Path) -> Iterator[ui.NotebookRun]:
    """The notebook opened and run through the UI, its figures saved; its kernel is shut down afterwards."""
    rel_path = request.param
    workspace = re.sub(r"\W", "-", rel_path.removesuffix(".ipynb"))
    folder = _artifact_dir(artifacts, rel_path)
    folder.mkdir(parents=True, exist_ok=True)
    run = None
    try:
        run = ui.open_notebook(browser, lab, rel_path, workspace)
        try:
            ui.run_all_cells(run, CELL_TIMEOUT, NOTEBOOK_TIMEOUT)
        except Exception:
            run.page.screenshot(path=str(folder / "failed-run.png"))
            raise
        run.popups = run.state.popups()
        ui.screenshot_figures(run, folder)
        run.page.screenshot(path=str(folder / "page.png"))
        with open(artifacts / "run-times.jsonl", "a") as log:
            log.write(json.dumps({"notebook": rel_path, "seconds": round(run.seconds, 1), "slowest": run.slowest}) + "\n")
        yield run
    finally:
        try:
            lab.shutdown_sessions(rel_path)
        finally:
            if run is not None:
                run.page.close()


def test_no_dialog_or_notification(ran: ui.NotebookRun) -> None:
    """Nothing pops up between opening the notebook and the end of Run All (checked on every poll too)."""
    assert ran.popups == []
    ui.check_no_popup(ran.page, f"after running {ran.rel_path}")


def test_runs_without_unexpected_errors(ran: ui.NotebookRun) -> None:
    """Every code cell ran; only an unanswered exercise's errors, and only in the student version."""
    problems = unexpected_errors(ran.cells, ran.state.prompts, ran.state.outputs, ran.student)
    assert problems == [], f"{ran.rel_path}:\n" + "\n".join(problems)


def test_figures_render(ran: ui.NotebookRun, artifacts: Path) -> None:
    """Every figure a cell outputs is an image the browser decoded (a broken image has no natural size)."""
    images = ran.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell-outputArea img")
    sizes = images.evaluate_all("imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
    shown_without_answers = [c for c in ran.cells if "plot.show(" in c.source and "raises-exception" not in c.tags]
    if not sizes and ran.student and not shown_without_answers:
        pytest.skip(f"{ran.rel_path}: every figure waits for an exercise's answer (a failed cell shows no figure)")
    assert sizes, f"{ran.rel_path} shows no figure at all"
    broken = [i for i, (w, h) in enumerate(sizes) if not (w and h)]
    assert broken == [], f"{ran.rel_path}: images {broken} did not load"
    assert list(_artifact_dir(artifacts, ran.rel_path).glob("cell*.png"))


# --------------------------------------------------------------------------------------------------------------
# Widgets: a slider moved from the keyboard changes what the student sees
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WidgetCase:
    """A widget to move: the cell that displays it (found by a piece of its source) and what to check."""

    name: str
    marker: str
    check: Callable[[ui.NotebookRun, int, Path], None]
    solutions_only: bool = False  # the student version cannot show it before the exercise is answered


def _readout(slider) -> str:
    """A slider's readout as a number's text (ipywidgets writes negative values with a Unicode minus sign)."""
    return (slider.locator(".widget-readout").text_content() or "").strip().replace("\u2212", "-")


def _check_slider_panel(labels: tuple[str, ...], presses: int, step: float):
    """A widgets.slider_panel (sliders over an Output with a matplotlib figure): for each slider, ArrowRight
    `presses` times moves its readout up by `presses` steps and changes the figure's pixels."""

    def check(run: ui.NotebookRun, index: int, folder: Path) -> None:
        cell = run.cell(index)
        for label in labels:
            s = ui.slider(cell, label)
            want = f"{float(_readout(s)) + presses * step:.2f}"
            handle = s.locator(".noUi-handle")
            changed = ui.figure_change(cell, ".widget-output img", lambda handle=handle: ui.press_right(handle, presses),
                                       folder, f"cell{index:02d}-slider-{label}")
            ui.wait_until(lambda s=s, want=want: _readout(s) == want,
                          f"slider {label}'s readout to read {want} (it reads {_readout(s)})")
            assert changed > 100, f"slider {label}: the figure changed in only {changed} pixels"

    return check


def _check_latent_explorer(run: ui.NotebookRun, index: int, folder: Path) -> None:
    """utils.latent_explorer: after Run All the sliders and the code readout agree (the notebook moved the code
    from a later cell); ArrowRight on z[0] moves the code readout and redraws the decoded image."""
    cell = run.cell(index)
    z0, z1 = (ui.slider(cell, f"z[{d}]") for d in (0, 1))
    code = cell.locator(".widget-label", has_text="z = [")
    cell.screenshot(path=str(folder / f"cell{index:02d}-latent-after-run-all.png"))
    sliders = f"z = [{float(_readout(z0)):+.1f}, {float(_readout(z1)):+.1f}]"
    assert code.text_content().strip() == sliders, f"the readout says {code.text_content().strip()}, the sliders {sliders}"
    want = f"z = [{float(_readout(z0)) + 0.5:+.1f}, {float(_readout(z1)):+.1f}]"
    changed = ui.figure_change(cell, "img.widget-image", lambda: ui.press_right(z0.locator(".noUi-handle"), 5), folder,
                               f"cell{index:02d}-latent-z0")
    ui.wait_until(lambda: code.text_content().strip() == want, f"the code readout to read {want} "
                  f"(it reads {code.text_content().strip()})")
    assert changed > 50, f"the decoded image changed in only {changed} pixels"


_IDENTITY = re.compile(r"ELBO (-?\d+\.\d+) \+ gap (-?\d+\.\d+) = log p\(x\) (-?\d+\.\d+)")


def _identity(cell) -> tuple[float, float, float]:
    """(ELBO, gap, log p(x)) from the ELBO-gap widget's readout."""
    text = cell.locator(".widget-label", has_text="gap").text_content() or ""
    found = _IDENTITY.search(text)
    assert found, f"no identity readout in the ELBO-gap widget (it reads {text!r})"
    return tuple(float(v) for v in found.groups())


def _check_elbo_gap(run: ui.NotebookRun, index: int, folder: Path) -> None:
    """The ELBO-gap widget: its sliders move the figure (as every slider panel's); its readout adds up as
    log p(x) = ELBO + gap, before and after; the button puts q on the posterior, where the gap is 0."""
    cell = run.cell(index)
    elbo, gap, log_px = _identity(cell)
    assert gap > 0.01 and abs(elbo + gap - log_px) <= 2e-4, (elbo, gap, log_px)
    _check_slider_panel(("m", "s"), 5, 0.01)(run, index, folder)
    button = cell.locator("button", has_text="q = exact posterior")
    changed = ui.figure_change(cell, ".widget-output img", button.click, folder, f"cell{index:02d}-posterior-button")
    ui.wait_until(lambda: _identity(cell)[1] == 0.0, "the gap to read 0.0000 after the posterior button")
    elbo, gap, after = _identity(cell)
    assert after == log_px and abs(elbo + gap - log_px) <= 2e-4, (elbo, gap, after)
    assert changed > 100, f"the posterior button changed the figure in only {changed} pixels"
    cell.screenshot(path=str(folder / f"cell{index:02d}-elbo-gap-at-posterior.png"))


WIDGETS: dict[str, list[WidgetCase]] = {
    "02_latent_variables_elbo": [
        WidgetCase("Jensen λ slider", "widgets.jensen_widget(", _check_slider_panel(("λ",), 5, 0.01)),
        WidgetCase("ELBO-gap widget", "widgets.elbo_gap_widget(", _check_elbo_gap, solutions_only=True),
    ],
    "05_vae": [WidgetCase("latent explorer", "LatentExplorer(", _check_latent_explorer, solutions_only=True)],
}


def test_widgets_respond(ran: ui.NotebookRun, artifacts: Path) -> None:
    """In the widget notebooks, moving a slider through the UI changes the value and the figure."""
    cases = [c for c in WIDGETS.get(Path(ran.rel_path).stem, []) if ran.rel_path.startswith("solutions/") or not c.solutions_only]
    if not cases:
        pytest.skip(f"{ran.rel_path} shows no widget that works before the exercises are answered")
    folder = _artifact_dir(artifacts, ran.rel_path)
    for case in cases:
        index = ran.find_cell(case.marker)
        try:
            case.check(ran, index, folder)
        except Exception as exc:
            ran.page.screenshot(path=str(folder / ("failed-" + re.sub(r"\W+", "-", case.name) + ".png")))
            raise AssertionError(f"{ran.rel_path}, {case.name} ({ran.cells[index].describe()}): {exc}") from exc
    ui.check_no_popup(ran.page, f"after moving the sliders of {ran.rel_path}")
