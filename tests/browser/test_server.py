"""The suite's server starts as `make lab` does, survives a taken port, and fails with its log when it cannot start."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.browser.lab import Server, ServerStartError, free_port, lab_command, start_server


def test_the_course_settings_overrides_reach_the_server(lab: Server) -> None:
    """`make venv` writes overrides.json into the venv; the server must serve them (no news prompt, no update check)."""
    plugin = lab.api("GET", "lab/api/settings/@jupyterlab/apputils-extension:notification")
    defaults = {name: spec.get("default") for name, spec in plugin["schema"]["properties"].items()}
    assert defaults["fetchNews"] == "false"
    assert defaults["checkForUpdates"] is False
    tracker = lab.api("GET", "lab/api/settings/@jupyterlab/notebook-extension:tracker")
    cell_config = tracker["schema"]["properties"]["codeCellConfig"]["default"]
    assert cell_config.get("lineWrap") is True  # long code lines wrap on a laptop screen instead of running off it


def test_the_server_serves_the_course_root(lab: Server) -> None:
    names = {item["name"] for item in lab.api("GET", "api/contents")["content"]}
    assert {"notebooks", "solutions", "utils", "Makefile"} <= names


def test_a_taken_port_is_replaced_by_another(artifacts: Path, lab_state: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy, free_port()])
        server = start_server(lab_command, artifacts / "server-port-taken.log", env=lab_state, pick_port=lambda: next(ports))
        try:
            assert server.port != busy
            assert server.api("GET", "api/status") is not None
        finally:
            server.stop()
    assert server.process.poll() is not None


def test_a_server_that_cannot_start_fails_with_its_log(artifacts: Path, lab_state: dict[str, str]) -> None:
    def broken(port: int, token: str) -> list[str]:
        return lab_command(port, token, extra_args="--ServerApp.root_dir=/no/such/course")

    with pytest.raises(ServerStartError, match=r"(?s)exited with code \d+.*last lines of .*server-broken\.log.*/no/such/course"):
        start_server(broken, artifacts / "server-broken.log", env=lab_state, attempts=1)
