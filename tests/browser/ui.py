"""Driving JupyterLab in the browser as a student does: open a notebook, Run > Run All Cells, read the page, move a
slider with the keyboard, take screenshots. The judging (what counts as an error, a hang, a changed figure) is in
`tests/browser/lab.py`, which needs no browser."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import BrowserContext, Locator, Page
from playwright.sync_api import Error as PlaywrightError

from tests.browser.lab import ROOT, Cell, CellTimeout, Output, RunWatcher, Server, changed_pixels, read_cells

# One poll of the page: every cell's prompt and outputs, the kernel's status, and any dialog or notification.
_STATE_JS = """() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)') || document;
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell')];
  const text = (el) => (el ? el.textContent : '');
  return {
    prompts: cells.map(c => text(c.querySelector('.jp-InputArea-prompt'))),
    outputs: cells.map(c => [...c.querySelectorAll(':scope .jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output')]
      .map(o => ({mime: o.getAttribute('data-mime-type'), text: o.textContent}))),
    status: (document.querySelector('.jp-Notebook-ExecutionIndicator') || {getAttribute: () => null})
      .getAttribute('data-status'),
    dialogs: [...document.querySelectorAll('.jp-Dialog')].map(d => d.textContent.trim().slice(0, 300)),
    toasts: [...document.querySelectorAll('.Toastify__toast')].map(t => t.textContent.trim().slice(0, 300)),
    notifications: text(document.querySelector('.jp-Notification-Status-Text')).trim(),
  };
}"""


class PopupError(AssertionError):
    """A dialog or notification appeared that a student would have to deal with."""


@dataclass
class PageState:
    """What one poll of the page saw."""

    prompts: list[str]
    outputs: list[list[Output]]
    status: str | None
    dialogs: list[str]
    toasts: list[str]
    notifications: str

    def popups(self) -> list[str]:
        """Every dialog and notification on screen, as text ([] when there is none)."""
        found = [f"dialog: {d}" for d in self.dialogs] + [f"notification: {t}" for t in self.toasts]
        if self.notifications not in ("", "0") and not self.toasts:
            found.append(f"{self.notifications} notification(s) in the status bar")
        return found


@dataclass
class NotebookRun:
    """A notebook opened in JupyterLab and run through the UI."""

    rel_path: str
    page: Page
    cells: list[Cell]
    state: PageState | None = None
    seconds: float = 0.0
    slowest: list[tuple[str, float]] = field(default_factory=list)
    popups: list[str] = field(default_factory=list)

    @property
    def student(self) -> bool:
        return self.rel_path.startswith("notebooks/")

    def cell(self, index: int) -> Locator:
        """The page's cell with this index (the same index as in the file)."""
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(index)

    def find_cell(self, marker: str) -> int:
        """Index of the first cell whose source contains `marker`."""
        for c in self.cells:
            if marker in c.source:
                return c.index
        raise LookupError(f"no cell of {self.rel_path} contains {marker!r}")


def read_state(page: Page) -> PageState:
    """Poll the page once."""
    raw = page.evaluate(_STATE_JS)
    outputs = [[Output(o["mime"], o["text"] or "") for o in cell] for cell in raw["outputs"]]
    return PageState(raw["prompts"], outputs, raw["status"], raw["dialogs"], raw["toasts"], raw["notifications"])


def check_no_popup(page: Page, when: str) -> None:
    """Raise PopupError naming what appeared, if any dialog or notification is on screen."""
    found = read_state(page).popups()
    if found:
        raise PopupError(f"{when}: " + "; ".join(found))


def open_notebook(context: BrowserContext, server: Server, rel_path: str, workspace: str,
                  settle_s: float = 3.0) -> NotebookRun:
    """Open `rel_path` in a fresh JupyterLab workspace (so no earlier tab is restored) and wait for its kernel.

    Waits until the page shows every cell of the file and the kernel is idle; fails with PopupError when a dialog
    (e.g. 'Select Kernel' for a notebook without kernelspec) or a notification (e.g. the Jupyter news prompt)
    appears meanwhile.
    """
    cells = read_cells(ROOT / rel_path)
    page = context.new_page()
    try:
        return _wait_until_open(NotebookRun(rel_path, page, cells), server, workspace, settle_s)
    except BaseException:
        page.close()
        raise


def _wait_until_open(run: NotebookRun, server: Server, workspace: str, settle_s: float) -> NotebookRun:
    page, rel_path, cells = run.page, run.rel_path, run.cells
    page.goto(server.url(f"lab/workspaces/{workspace}/tree/{rel_path}"))
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=120_000)
    deadline = time.monotonic() + 120
    idle_since = None
    while True:
        state = read_state(page)
        if state.popups():
            raise PopupError(f"on opening {rel_path}: " + "; ".join(state.popups()))
        ready = state.status == "idle" and len(state.prompts) == len(cells)
        idle_since = (idle_since or time.monotonic()) if ready else None
        # Stay a few seconds: the news prompt and the kernel dialog come a moment after the page.
        if idle_since is not None and time.monotonic() - idle_since > settle_s:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"{rel_path}: the kernel was not idle 120 s after opening (status {state.status!r}, "
                                 f"{len(state.prompts)} of {len(cells)} cells shown)")
        time.sleep(0.5)


def run_all_cells(run: NotebookRun, cell_timeout: float, notebook_timeout: float, poll_s: float = 1.0) -> PageState:
    """Run > Run All Cells from the menu bar, then poll until the run ends; returns the final page state.

    Raises CellTimeout naming the cell that hangs, PopupError when a dialog or notification appears during the run.
    """
    page = run.page
    run.cell(0).click()  # the notebook has the focus, as after a student's click
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator('li[data-command="runmenu:run-all"]').click()
    watcher = RunWatcher(run.cells, cell_timeout, notebook_timeout)
    start = time.monotonic()
    try:
        while True:
            state = read_state(page)
            if state.popups():
                raise PopupError(f"during the run of {run.rel_path}: " + "; ".join(state.popups()))
            if watcher.update(state.prompts, state.status == "idle"):
                run.state, run.seconds, run.slowest = state, time.monotonic() - start, watcher.slowest()
                return state
            time.sleep(poll_s)
    except CellTimeout as exc:
        raise CellTimeout(f"{run.rel_path}: {exc}") from None


def screenshot_figures(run: NotebookRun, folder: Path) -> list[Path]:
    """Save every image in the cells' outputs (figures, widget images) as folder/cellNN-K.png."""
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for cell in run.cells:
        if cell.cell_type != "code":
            continue
        images = run.cell(cell.index).locator(".jp-Cell-outputArea img")
        for k in range(images.count()):
            path = folder / f"cell{cell.index:02d}-{k}.png"
            images.nth(k).screenshot(path=str(path))
            saved.append(path)
    return saved


def slider(cell: Locator, label: str) -> Locator:
    """The ipywidgets slider in `cell` whose label reads exactly `label`."""
    sliders = cell.locator(".widget-slider")
    for i in range(sliders.count()):
        if (sliders.nth(i).locator(".widget-label").text_content() or "").strip() == label:
            return sliders.nth(i)
    shown = [s.strip() for s in sliders.locator(".widget-label").all_text_contents()]
    raise LookupError(f"no slider labelled {label!r} (sliders: {shown})")


def press_right(handle: Locator, presses: int) -> None:
    """Focus a slider's handle and press ArrowRight `presses` times, as a student using the keyboard."""
    handle.focus()
    for _ in range(presses):
        handle.press("ArrowRight")
        time.sleep(0.2)


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    """Poll `condition()` until it is true; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s:.0f} s for {what}")
        time.sleep(0.25)


def image_src(cell: Locator, selector: str) -> str | None:
    """The `src` of the first element matching `selector` in `cell`, None while there is none (no waiting: a
    widget's Output replaces its image on every redraw)."""
    return cell.evaluate("(c, sel) => { const i = c.querySelector(sel); return i ? i.getAttribute('src') : null; }", selector)


def figure_change(cell: Locator, selector: str, act: Callable[[], None], folder: Path, name: str,
                  timeout_s: float = 90.0) -> int:
    """Screenshot the image `selector` in `cell`, run `act()`, wait until the image's source changes and then stays
    the same for a second, screenshot again; save both as folder/name-before.png and -after.png; return the number
    of pixels that differ."""
    folder.mkdir(parents=True, exist_ok=True)
    image = cell.locator(selector).first
    src = image_src(cell, selector)
    before = _screenshot_settled(image, folder / f"{name}-before.png")
    act()
    wait_until(lambda: image_src(cell, selector) not in (src, None), f"the {name} image to change", timeout_s)
    last = None
    deadline = time.monotonic() + timeout_s
    while (now := image_src(cell, selector)) != last and time.monotonic() < deadline:
        last = now
        time.sleep(1.0)
    after = _screenshot_settled(image, folder / f"{name}-after.png")
    return changed_pixels(before, after)


def _screenshot_settled(image: Locator, path: Path, tries: int = 5) -> bytes:
    """Screenshot an image that a late redraw may replace meanwhile ('not attached to the DOM'): try again."""
    for attempt in range(tries):
        try:
            return image.screenshot(path=str(path))
        except PlaywrightError:
            if attempt == tries - 1:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")  # pragma: no cover
