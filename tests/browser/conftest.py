"""Fixtures of the browser suite: the course's JupyterLab server (`make lab`) and headless Debian Chromium.

Run with `make test-browser`. Screenshots and the server's log go to build/browser-artifacts/ (ignored by git).
Timeouts (seconds) can be raised on a slow machine: BROWSER_CELL_TIMEOUT (one cell, default 600),
BROWSER_NOTEBOOK_TIMEOUT (one notebook's Run All, default 1500).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.lab import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, Server, lab_command, start_server

CELL_TIMEOUT = float(os.environ.get("BROWSER_CELL_TIMEOUT", "600"))
NOTEBOOK_TIMEOUT = float(os.environ.get("BROWSER_NOTEBOOK_TIMEOUT", "1500"))


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """build/browser-artifacts/, emptied at the start of the session."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


def lab_env(state_dir: Path) -> dict[str, str]:
    """The environment for the suite's server: the caller's (TEST_ENV's threads and seed reach the kernels), with
    JupyterLab's user settings and workspaces in `state_dir`, so the suite neither reads nor changes the
    developer's. The one user setting: no autosave, so running a notebook in the browser never rewrites the course's
    files (the course's own settings overrides in the venv are read as for a student)."""
    settings = state_dir / "user-settings"
    plugin = settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings"
    plugin.parent.mkdir(parents=True, exist_ok=True)
    plugin.write_text(json.dumps({"autosave": False}))
    (state_dir / "workspaces").mkdir(exist_ok=True)
    return {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(state_dir / "workspaces")}


@pytest.fixture(scope="session")
def lab_state(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment every server of this session gets (see lab_env)."""
    return lab_env(tmp_path_factory.mktemp("jupyterlab-state"))


@pytest.fixture(scope="session")
def lab(artifacts: Path, lab_state: dict[str, str]) -> Iterator[Server]:
    """The course's JupyterLab server, started as `make lab` on 127.0.0.1, a free port and a token; stopped (kernels
    first) whatever happens."""
    server = start_server(lab_command, artifacts / "jupyter-server.log", env=lab_state)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory):
    """Headless Debian Chromium with a fresh profile (a Playwright BrowserContext)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: the browser suite drives Debian's Chromium. Install it with "
                    "`apt-get install -y chromium` (or set CHROMIUM to another Chromium binary).")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(60_000)
        try:
            yield context
        finally:
            context.close()
    finally:
        playwright.stop()
