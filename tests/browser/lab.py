"""Helpers for the browser suite that need no browser: start the course's JupyterLab server, watch a notebook run,
judge its outputs, compare screenshots.

Everything here is plain Python (no Playwright), so `tests/test_browser_helpers.py` tests it in the fast unit suite.

- `start_server` runs a server command on a free port, waits until it answers, retries on another port when the
  port was taken in between, and raises `ServerStartError` with the server's log when it cannot start.
- `lab_command` is that command for the course: `make lab` itself (same venv, same settings overrides, same
  `--ServerApp.root_dir=.` and `--allow-root`), with LAB_ARGS for 127.0.0.1, the port, a token and no browser.
- `RunWatcher` turns what the page shows (each cell's prompt, `[*]:` while queued or running) into "still running",
  "done", or a `CellTimeout` that names the cell that hangs.
- `unexpected_errors` lists the error outputs a student must not meet; `changed_pixels` compares two screenshots.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "browser-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Debian's Chromium, headless, in a container, with nothing that phones home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# Lines of the server's log quoted in an error.
LOG_TAIL_LINES = 60
_PORT_TAKEN = re.compile(r"already in use|is not available|Address in use", re.IGNORECASE)


# --------------------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------------------

class ServerStartError(RuntimeError):
    """The server exited or did not answer in time; the message ends with the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def lab_command(port: int, token: str, root: Path = ROOT, extra_args: str = "") -> list[str]:
    """The command a student runs (`make lab`), told to serve on 127.0.0.1:`port` with `token` and no browser.

    `--ServerApp.port_retries=0` makes a taken port an error (which `start_server` answers with another port)
    instead of a server that silently moves to a port the suite does not know. `extra_args` (e.g. a broken option,
    for the suite's own tests) go last.
    """
    lab_args = (f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --ServerApp.port_retries=0 "
                f"--IdentityProvider.token={token} {extra_args}").strip()
    return ["make", "--no-print-directory", "-C", str(root), "lab", f"LAB_ARGS={lab_args}"]


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a log file ('' when it does not exist)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Server:
    """A running server: its process (the leader of its own process group), port, token and log file."""

    process: subprocess.Popen
    port: int
    token: str
    log_path: Path
    host: str = "127.0.0.1"
    _stopped: bool = field(default=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        """An address on the server with the token, e.g. url('lab/tree/notebooks/00_course_tour.ipynb')."""
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, method: str, path: str, timeout: float = 30.0) -> object:
        """Call the server's REST API (`path` like 'api/sessions'); returns the decoded JSON, or None if empty."""
        request = urllib.request.Request(f"{self.base_url}/{path.lstrip('/')}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body.strip() else None

    def shutdown_sessions(self, path_suffix: str = "") -> list[str]:
        """Shut down the kernel sessions whose notebook path ends with `path_suffix` (all by default).

        Returns the paths whose sessions were shut down."""
        closed = []
        for session in self.api("GET", "api/sessions") or []:
            if session.get("path", "").endswith(path_suffix):
                self.api("DELETE", f"api/sessions/{session['id']}")
                closed.append(session["path"])
        return closed

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the server down cleanly (its API's shutdown: kernels first), else SIGTERM, else SIGKILL, to its
        whole process group. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            try:
                self.api("POST", "api/shutdown", timeout=10)
            except (OSError, urllib.error.URLError, ValueError):
                pass  # not a Jupyter server, or not answering: signals below
            else:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout)
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            if self.process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(wait)
        # The process group may hold children (make's jupyter) after its leader exited.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def _answers(url: str, headers: dict[str, str]) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def start_server(command: Callable[[int, str], Sequence[str]], log_path: Path, *, cwd: Path = ROOT,
                 env: dict[str, str] | None = None, ready_path: str = "api/status", timeout: float = 180.0,
                 attempts: int = 3, pick_port: Callable[[], int] = free_port, poll: float = 0.25) -> Server:
    """Start `command(port, token)` and wait until GET `ready_path` (with the token) answers 200.

    The port comes from `pick_port`; when the server reports the port as taken (another program got it between
    the pick and the bind), it is started again on a new port, up to `attempts` times. Raises ServerStartError,
    with the tail of the server's log (stdout and stderr, written to `log_path`), when the server exits, or does
    not answer within `timeout` seconds (then it is stopped first).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        port, token = pick_port(), secrets.token_hex(16)
        with open(log_path, "w") as log:
            process = subprocess.Popen(list(command(port, token)), cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        server = Server(process, port, token, log_path)
        atexit.register(server.stop, 5.0)  # a safety net; the fixtures stop it themselves
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"token {token}"}
        while True:
            if _answers(f"{server.base_url}/{ready_path}", headers):
                return server
            code = process.poll()
            if code is not None:
                log = log_tail(log_path)
                server.stop()
                if _PORT_TAKEN.search(log) and attempt < attempts:
                    break  # the port was taken: try another
                raise ServerStartError(f"the server exited with code {code} before answering on port {port} "
                                       f"(attempt {attempt} of {attempts}); command: {' '.join(command(port, '…'))}\n"
                                       f"--- last lines of {log_path} ---\n{log}")
            if time.monotonic() > deadline:
                server.stop()
                raise ServerStartError(f"the server did not answer on port {port} within {timeout:.0f} s; "
                                       f"command: {' '.join(command(port, '…'))}\n"
                                       f"--- last lines of {log_path} ---\n{log_tail(log_path)}")
            time.sleep(poll)
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------------------------------------------
# Notebook cells and a run through the UI
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    """One cell of a notebook file: its index (0-based, as in nbformat), type, source and tags."""

    index: int
    cell_type: str
    source: str
    tags: tuple[str, ...] = ()
    collapsed: bool = False  # jupyter.source_hidden: the page shows a placeholder, without a prompt

    def describe(self) -> str:
        """'cell 12 (`means = class_means(x_train, y_train)`)': the index and the first non-comment line."""
        lines = [ln.strip() for ln in self.source.splitlines() if ln.strip()]
        code = [ln for ln in lines if not ln.startswith("#")]
        first = (code or lines or [""])[0]
        return f"cell {self.index} (`{first[:90]}{'…' if len(first) > 90 else ''}`)"


def read_cells(path: Path) -> list[Cell]:
    """The cells of an .ipynb file, in order."""
    nb = json.loads(Path(path).read_text())
    cells = []
    for i, c in enumerate(nb["cells"]):
        source = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
        meta = c.get("metadata", {})
        cells.append(Cell(i, c["cell_type"], source, tuple(meta.get("tags", [])),
                          bool(meta.get("jupyter", {}).get("source_hidden"))))
    return cells


RUNNING = "[*]:"


def is_executed(prompt: str) -> bool:
    """True for a prompt like '[12]:' (the cell ran), False for '[ ]:', '[*]:' and ''."""
    return re.fullmatch(r"\[\d+\]:", prompt.strip()) is not None


class CellTimeout(AssertionError):
    """A cell ran longer than the per-cell timeout, or the notebook longer than its timeout; names the cell."""


class RunWatcher:
    """Follows a 'Run All Cells' from the prompts the page shows, one `update` per poll.

    A code cell's prompt is '[*]:' while it is queued or running, so the running cell is the first one showing it.
    `update` returns True once the run has started and no cell shows '[*]:' any more (with the kernel idle), and
    raises CellTimeout when one cell has been the running one for more than `cell_timeout` seconds, when the whole
    run takes more than `notebook_timeout` seconds, or when nothing starts within `start_timeout` seconds.
    """

    def __init__(self, cells: Sequence[Cell], cell_timeout: float, notebook_timeout: float, start_timeout: float = 120.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cells, self.clock = list(cells), clock
        self.cell_timeout, self.notebook_timeout, self.start_timeout = cell_timeout, notebook_timeout, start_timeout
        self.start = clock()
        self.started = False
        self.running: int | None = None
        self.running_since = self.start
        self.cell_seconds: dict[int, float] = {}

    def update(self, prompts: Sequence[str], kernel_idle: bool) -> bool:
        """Record one poll of the page: every cell's prompt text (in order) and whether the kernel is idle."""
        if len(prompts) != len(self.cells):
            raise AssertionError(f"the page shows {len(prompts)} cells, the notebook file has {len(self.cells)}")
        now = self.clock()
        running = next((i for i, p in enumerate(prompts) if p.strip() == RUNNING), None)
        code = [i for i, c in enumerate(self.cells) if c.cell_type == "code"]
        if running is not None or any(is_executed(prompts[i]) for i in code):
            self.started = True
        if running != self.running:
            if self.running is not None:
                self.cell_seconds[self.running] = now - self.running_since
            self.running, self.running_since = running, now
        if running is not None and now - self.running_since > self.cell_timeout:
            raise CellTimeout(f"{self.cells[running].describe()} still running after {now - self.running_since:.0f} s "
                              f"(per-cell timeout {self.cell_timeout:.0f} s)")
        if now - self.start > self.notebook_timeout:
            where = self.cells[running].describe() if running is not None else "no cell running"
            raise CellTimeout(f"the notebook did not finish within {self.notebook_timeout:.0f} s; running: {where}")
        if not self.started and now - self.start > self.start_timeout:
            raise CellTimeout(f"Run All Cells started no cell within {self.start_timeout:.0f} s")
        return self.started and running is None and kernel_idle

    def slowest(self, n: int = 3) -> list[tuple[str, float]]:
        """The `n` cells that ran longest so far, as (description, seconds)."""
        ranked = sorted(self.cell_seconds.items(), key=lambda kv: -kv[1])[:n]
        return [(self.cells[i].describe(), s) for i, s in ranked]


# --------------------------------------------------------------------------------------------------------------
# Judging outputs
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Output:
    """One output of a cell as the page shows it: its MIME type (None for a widget) and its text."""

    mime: str | None
    text: str


_TRACEBACK = re.compile(r"^\s*([A-Za-z_][\w.]*)\s+Traceback \(most recent call last\)", re.MULTILINE)
_CELL_LOCATION = re.compile(r"^\s*Cell In\s*\[\d*\],? line \d+", re.MULTILINE)
_LAST_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Failed)):?", re.MULTILINE)
_UNANSWERED = re.compile(r"^✗ Exercise ([\w.]+) is not answered yet")
# A widget shown as its text repr means the front end could not render it (no extension, version mismatch).
_WIDGET_AS_TEXT = re.compile(r"^\s*(?:[A-Z]\w*)\((?:children|value|layout|description)=")
_WIDGET_FAILED = ("Error displaying widget", "Error creating widget", "Failed to load model class")


def error_name(text: str) -> str | None:
    """The exception's name when `text` is an IPython error output ('NotImplementedError'), else None.

    Recognizes a traceback ('NameError   Traceback (most recent call last)') and a SyntaxError's 'Cell In[3],
    line 1'; a warning or a progress bar on stderr is not an error.
    """
    m = _TRACEBACK.search(text)
    if m:
        return m.group(1).rsplit(".", 1)[-1]
    if _CELL_LOCATION.search(text):
        names = _LAST_EXCEPTION.findall(text)
        return names[-1].rsplit(".", 1)[-1] if names else "Error"
    return None


def unexpected_errors(cells: Sequence[Cell], prompts: Sequence[str], outputs: Sequence[Sequence[Output]],
                      student: bool) -> list[str]:
    """What a student must not meet after Run All Cells, one line each; [] when the run is clean.

    - every code cell ran (an error in a cell without the `raises-exception` tag stops Run All there);
    - no widget failed to render;
    - no error output at all, except in a student notebook, in cells tagged `raises-exception`, the one line
      "✗ Exercise N is not answered yet ..." once per exercise (cells that wait for it print a ⏸ line instead):
      a traceback, a second error for the same exercise, or a failed check's ✗ line is a problem.
    """
    problems: list[str] = []
    first: dict[str, str] = {}  # exercise -> the cell that said it is unanswered
    for cell, prompt, outs in zip(cells, prompts, outputs, strict=True):
        if cell.cell_type != "code":
            continue
        where = cell.describe()
        if not is_executed(prompt) and not (cell.collapsed and not prompt.strip()):
            problems.append(f"{where} did not run (prompt {prompt.strip() or 'empty'!r})")
        for out in outs:
            if any(marker in out.text for marker in _WIDGET_FAILED):
                problems.append(f"{where}: a widget failed to render: {out.text.strip()[:200]}")
            if out.mime == "text/plain" and _WIDGET_AS_TEXT.match(out.text):
                problems.append(f"{where}: a widget is shown as text (front-end extension missing?): {out.text[:120]}")
            if out.mime not in ("application/vnd.jupyter.stderr", None):
                continue
            text = out.text.strip()
            unanswered = _UNANSWERED.match(text)
            if unanswered and student and "raises-exception" in cell.tags and "\n" not in text:
                exercise = unanswered.group(1)
                if exercise in first:
                    problems.append(f"{where}: a second error for Exercise {exercise} (the first: {first[exercise]})")
                first.setdefault(exercise, where)
                continue
            name = error_name(out.text) or ("a failed check" if text.startswith("✗") else None)
            if name is not None:
                last = text.splitlines()[-1] if text else ""
                problems.append(f"{where} raised {name}: {last[:200]}")
    return problems


def changed_pixels(png_a: bytes, png_b: bytes) -> int:
    """How many pixels differ between two PNG screenshots (all of them when the sizes differ)."""
    from PIL import Image, ImageChops

    a = Image.open(io.BytesIO(png_a)).convert("RGB")
    b = Image.open(io.BytesIO(png_b)).convert("RGB")
    if a.size != b.size:
        return max(a.size[0] * a.size[1], b.size[0] * b.size[1])
    diff = ImageChops.difference(a, b).convert("L").point(lambda v: 255 if v else 0)
    return diff.histogram()[255]
