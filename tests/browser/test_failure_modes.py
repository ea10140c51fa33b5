"""The suite's own alarms work: a hanging cell is named, a kernel-selection dialog is caught.

Each test writes a small notebook under build/browser-artifacts/fixtures/ (inside the server's root, ignored by
git) and opens it in the same server and browser as the course's notebooks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.browser import ui
from tests.browser.lab import ROOT, CellTimeout, Server, lab_command, start_server

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def write_notebook(folder: Path, name: str, sources: list[str], kernelspec: dict | None = KERNELSPEC) -> str:
    """A notebook of code cells at folder/name; returns its path relative to the course root."""
    cells = [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [], "source": src}
             for i, src in enumerate(sources)]
    metadata = {"kernelspec": kernelspec} if kernelspec else {}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps({"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}))
    return str(path.relative_to(ROOT))


def test_a_hanging_cell_fails_the_run_naming_the_cell(lab: Server, browser, artifacts: Path) -> None:
    rel = write_notebook(artifacts / "fixtures", "hangs.ipynb",
                         ["x = 1", "import time\ntime.sleep(600)  # never returns in time", "print('not reached')"])
    run = ui.open_notebook(browser, lab, rel, "fixture-hangs")
    try:
        with pytest.raises(CellTimeout, match=r"hangs\.ipynb: cell 1 \(`import time`\) still running after \d+ s"):
            ui.run_all_cells(run, cell_timeout=8, notebook_timeout=120)
    finally:
        lab.shutdown_sessions(rel)
        run.page.close()


def test_a_notebook_without_kernelspec_is_caught_by_its_kernel_dialog(lab: Server, browser, artifacts: Path) -> None:
    rel = write_notebook(artifacts / "fixtures", "no_kernelspec.ipynb", ["1 + 1"], kernelspec=None)
    page = None
    try:
        # JupyterLab titles it "Select Kernel" or "Select kernel for: <file>" depending on timing and release.
        with pytest.raises(ui.PopupError, match=r"(?i)on opening .*no_kernelspec\.ipynb: dialog: .*select kernel"):
            run = ui.open_notebook(browser, lab, rel, "fixture-no-kernelspec")
            page = run.page
    finally:
        lab.shutdown_sessions(rel)
        for p in browser.pages:
            if "fixture-no-kernelspec" in p.url:
                p.close()
        if page is not None and not page.is_closed():
            page.close()


def test_without_the_course_settings_the_news_prompt_is_caught(browser, artifacts: Path, lab_state: dict[str, str],
                                                               tmp_path: Path) -> None:
    """A server that does not read the venv's overrides.json (an empty settings folder instead) asks about Jupyter
    news; the suite must see that notification."""
    def no_overrides(port: int, token: str) -> list[str]:
        return lab_command(port, token, extra_args=f"--LabApp.app_settings_dir={tmp_path}")

    server = start_server(no_overrides, artifacts / "server-no-overrides.log", env=lab_state)
    rel = write_notebook(artifacts / "fixtures", "news.ipynb", ["1 + 1"])
    try:
        with pytest.raises(ui.PopupError, match=r"(?i)notification: .*news"):
            ui.open_notebook(browser, server, rel, "fixture-news", settle_s=15)
    finally:
        server.stop()
