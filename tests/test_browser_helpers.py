"""The browser suite's helpers that need no browser (tests/browser/lab.py): server start-up and its failures, the
run watcher's timeouts, and how outputs are judged."""

from __future__ import annotations

import io
import socket
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.browser.lab import (
    Cell,
    CellTimeout,
    Output,
    RunWatcher,
    ServerStartError,
    changed_pixels,
    error_name,
    free_port,
    is_executed,
    lab_command,
    start_server,
    unexpected_errors,
)

TRACEBACK = ("---------------------------------------------------------------------------\n"
             "{name}                       Traceback (most recent call last)\n"
             "Cell In[3], line 1\n----> 1 f()\n\n{name}: {message}")
STDERR = "application/vnd.jupyter.stderr"


def _static_server(folder: Path):
    """A command factory for a stand-in server: Python's http.server on `port`, with folder/api/status to answer."""
    (folder / "api").mkdir(parents=True, exist_ok=True)
    (folder / "api" / "status").write_text("{}")
    return lambda port, token: [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder)]


# --------------------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------------------

def test_free_port_is_bindable_and_not_one_in_use():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = free_port()
        assert port != taken.getsockname()[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_lab_command_is_make_lab_on_localhost_with_token_and_no_browser():
    command = lab_command(8899, "secret")
    assert command[:2] == ["make", "--no-print-directory"] and "lab" in command
    args = command[-1]
    for part in ("LAB_ARGS=", "--no-browser", "--ServerApp.ip=127.0.0.1", "--ServerApp.port=8899",
                 "--ServerApp.port_retries=0", "--IdentityProvider.token=secret"):
        assert part in args


def test_start_server_waits_for_the_server_and_stops_it(tmp_path):
    server = start_server(_static_server(tmp_path / "www"), tmp_path / "log.txt", timeout=30)
    try:
        assert server.process.poll() is None
        assert server.url("lab") == f"http://127.0.0.1:{server.port}/lab?token={server.token}"
    finally:
        server.stop()
    assert server.process.poll() is not None
    server.stop()  # twice is fine


def test_start_server_moves_to_another_port_when_the_port_is_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy, free_port()])
        server = start_server(_static_server(tmp_path / "www"), tmp_path / "log.txt", timeout=30,
                              pick_port=lambda: next(ports))
        try:
            assert server.port != busy
        finally:
            server.stop()


def test_start_server_gives_up_on_a_taken_port_after_its_attempts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with pytest.raises(ServerStartError, match=r"(?s)attempt 2 of 2.*Address already in use"):
            start_server(_static_server(tmp_path / "www"), tmp_path / "log.txt", timeout=30, attempts=2,
                         pick_port=lambda: busy)


def test_a_server_that_exits_fails_with_its_log(tmp_path):
    def crashes(port, token):
        return [sys.executable, "-c", "import sys; print('loading the course…'); sys.exit('bad config: no such folder')"]

    with pytest.raises(ServerStartError, match=r"(?s)exited with code 1 .*last lines of .*log\.txt.*loading the course….*"
                                               r"bad config: no such folder"):
        start_server(crashes, tmp_path / "log.txt", timeout=30)


def test_a_server_that_never_answers_times_out_and_is_stopped(tmp_path):
    def silent(port, token):
        return [sys.executable, "-c", "import time; print('starting', flush=True); time.sleep(60)"]

    with pytest.raises(ServerStartError, match=r"(?s)did not answer on port \d+ within 1 s.*starting"):
        start_server(silent, tmp_path / "log.txt", timeout=1)


# --------------------------------------------------------------------------------------------------------------
# Watching a run
# --------------------------------------------------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


CELLS = [Cell(0, "markdown", "# Title"), Cell(1, "code", "import time"),
         Cell(2, "code", "# a comment first\ntime.sleep(1000)"), Cell(3, "code", "print(1)")]


def test_watcher_finishes_when_no_cell_is_queued_and_the_kernel_is_idle():
    clock = Clock()
    w = RunWatcher(CELLS, cell_timeout=10, notebook_timeout=100, clock=clock)
    assert not w.update(["", "[ ]:", "[ ]:", "[ ]:"], kernel_idle=True)  # Run All not started yet
    clock.now = 1
    assert not w.update(["", "[*]:", "[*]:", "[*]:"], kernel_idle=False)
    clock.now = 5
    assert not w.update(["", "[1]:", "[2]:", "[*]:"], kernel_idle=False)
    clock.now = 6
    assert not w.update(["", "[1]:", "[2]:", "[3]:"], kernel_idle=False)  # kernel still busy
    assert w.update(["", "[1]:", "[2]:", "[3]:"], kernel_idle=True)
    assert w.slowest(1)[0][0].startswith("cell 1")


def test_watcher_names_the_cell_that_hangs():
    clock = Clock()
    w = RunWatcher(CELLS, cell_timeout=10, notebook_timeout=100, clock=clock)
    w.update(["", "[*]:", "[*]:", "[*]:"], kernel_idle=False)
    clock.now = 2
    w.update(["", "[1]:", "[*]:", "[*]:"], kernel_idle=False)
    clock.now = 11  # cell 2 has run for 9 s: not yet
    w.update(["", "[1]:", "[*]:", "[*]:"], kernel_idle=False)
    clock.now = 13
    with pytest.raises(CellTimeout, match=r"cell 2 \(`time\.sleep\(1000\)`\) still running after 11 s \(per-cell timeout 10 s\)"):
        w.update(["", "[1]:", "[*]:", "[*]:"], kernel_idle=False)


def test_watcher_enforces_the_notebook_timeout_and_a_start():
    clock = Clock()
    w = RunWatcher(CELLS, cell_timeout=10, notebook_timeout=15, clock=clock)
    for t in range(0, 16, 5):  # every cell takes 5 s: none hangs, but the notebook takes too long
        clock.now = t
        w.update(["", "[1]:", "[2]:" if t < 10 else "[*]:", "[*]:"], kernel_idle=False)
    clock.now = 16
    with pytest.raises(CellTimeout, match=r"did not finish within 15 s; running: cell 2"):
        w.update(["", "[1]:", "[*]:", "[*]:"], kernel_idle=False)

    clock = Clock()
    w = RunWatcher(CELLS, cell_timeout=10, notebook_timeout=100, start_timeout=5, clock=clock)
    clock.now = 6
    with pytest.raises(CellTimeout, match="started no cell within 5 s"):
        w.update(["", "[ ]:", "[ ]:", "[ ]:"], kernel_idle=True)


def test_watcher_rejects_a_page_that_shows_other_cells():
    with pytest.raises(AssertionError, match="shows 2 cells, the notebook file has 4"):
        RunWatcher(CELLS, 10, 100, clock=Clock()).update(["", "[1]:"], kernel_idle=True)


def test_is_executed():
    assert is_executed("[12]:") and is_executed(" [1]: ")
    assert not any(is_executed(p) for p in ("[ ]:", "[*]:", ""))


# --------------------------------------------------------------------------------------------------------------
# Judging outputs
# --------------------------------------------------------------------------------------------------------------

def test_error_name_reads_tracebacks_and_ignores_warnings():
    assert error_name(TRACEBACK.format(name="NotImplementedError", message="Exercise 0.1")) == "NotImplementedError"
    assert error_name(TRACEBACK.format(name="utils.checks.CheckFailed", message="✗ wrong")) == "CheckFailed"
    assert error_name("  Cell In[1], line 1\n    x = \n        ^\nSyntaxError: invalid syntax\n") == "SyntaxError"
    assert error_name("/tmp/ipykernel_1/2.py:3: UserWarning: careful\n  warnings.warn('careful')") is None
    assert error_name("epoch 3/30: 100%|██████████| 32/32 [00:01<00:00]") is None


def _error(name, message):
    return Output(STDERR, TRACEBACK.format(name=name, message=message))


STUDENT = [Cell(0, "code", "def answer():\n    raise NotImplementedError('Exercise 1.1')", ("raises-exception",)),
           Cell(1, "code", "history = answer()", ("needs-answer", "raises-exception")),
           Cell(2, "code", "check(history)", ("check", "raises-exception")),
           Cell(3, "code", "print('done')")]


def test_a_clean_run_has_no_problem():
    outputs = [[], [], [], [Output("application/vnd.jupyter.stdout", "done")]]
    assert unexpected_errors(STUDENT, ["[1]:", "[2]:", "[3]:", "[4]:"], outputs, student=False) == []


def _line(text):  # an error output as the course shows it: one line, no traceback
    return Output(STDERR, text)


UNANSWERED = "✗ Exercise 1.1 is not answered yet: write your code under '# YOUR CODE HERE'"
WAITING = Output("application/vnd.jupyter.stdout", "⏸ This cell waits for Exercise 1.1, which is not answered yet.")


def test_an_unanswered_exercise_is_one_line_once_in_student_versions():
    outputs = [[], [_line(UNANSWERED)], [WAITING], []]
    prompts = ["[1]:", "[2]:", "[3]:", "[4]:"]
    assert unexpected_errors(STUDENT, prompts, outputs, student=True) == []
    # ...but not in a solution,
    problems = unexpected_errors(STUDENT, prompts, outputs, student=False)
    assert problems == ["cell 1 (`history = answer()`) raised a failed check: " + UNANSWERED]
    # ...not twice for the same exercise, not with a traceback, and no follow-on NameError or failed check.
    outputs[2] = [_line(UNANSWERED)]
    assert unexpected_errors(STUDENT, prompts, outputs, student=True) == [
        "cell 2 (`check(history)`): a second error for Exercise 1.1 (the first: cell 1 (`history = answer()`))"]
    outputs[2] = [_error("NameError", "name 'history' is not defined")]
    assert [p.split(" raised ")[1][:9] for p in unexpected_errors(STUDENT, prompts, outputs, student=True)] == ["NameError"]
    outputs[1] = [_error("NotImplementedError", "Exercise 1.1")]  # the old wall of red
    outputs[2] = []
    assert "raised NotImplementedError" in unexpected_errors(STUDENT, prompts, outputs, student=True)[0]
    outputs[1] = [_line("✗ the ELBO is too low.")]
    assert unexpected_errors(STUDENT, prompts, outputs, student=True) == [
        "cell 1 (`history = answer()`) raised a failed check: ✗ the ELBO is too low."]


def test_a_collapsed_cell_shows_no_prompt_and_is_not_reported():
    cells = [Cell(0, "code", "import os", ("hosted-setup",), collapsed=True), Cell(1, "code", "x = 1")]
    assert unexpected_errors(cells, ["", "[2]:"], [[], []], student=False) == []
    assert unexpected_errors(cells, ["[ ]:", "[2]:"], [[], []], student=False) == [
        "cell 0 (`import os`) did not run (prompt '[ ]:')"]
    assert unexpected_errors([cells[1]], [""], [[]], student=False) == ["cell 1 (`x = 1`) did not run (prompt 'empty')"]


def test_an_error_in_an_untagged_cell_and_the_cells_it_stopped_are_reported():
    outputs = [[], [], [], [_error("ImportError", "no module named utils")]]
    problems = unexpected_errors(STUDENT, ["[1]:", "[2]:", "[ ]:", "[3]:"], outputs, student=True)
    assert problems[0] == "cell 2 (`check(history)`) did not run (prompt '[ ]:')"
    assert "cell 3 (`print('done')`) raised ImportError" in problems[1]


def test_widgets_that_fail_to_render_are_reported():
    cells = [Cell(0, "code", "display(panel)")]
    for out in (Output(None, "Error displaying widget: model not found"),
                Output("text/plain", "VBox(children=(FloatSlider(value=0.3, description='λ'),))")):
        assert "widget" in unexpected_errors(cells, ["[1]:"], [[out]], student=False)[0]


def test_cell_describe_skips_comments_and_shortens():
    assert Cell(4, "code", "# Check 1.1\n\n" + "x = " + "1 + " * 40).describe().startswith("cell 4 (`x = 1 + 1")
    assert Cell(4, "code", "# Check 1.1 (hidden tests)").describe() == "cell 4 (`# Check 1.1 (hidden tests)`)"
    assert len(Cell(0, "code", "y = " * 50).describe()) < 110


def _png(color, size=(20, 10)):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_changed_pixels():
    white = _png("white")
    img = Image.new("RGB", (20, 10), "white")
    img.putpixel((3, 4), (0, 0, 0))
    img.putpixel((5, 5), (250, 255, 255))
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    assert changed_pixels(white, white) == 0
    assert changed_pixels(white, buffer.getvalue()) == 2
    assert changed_pixels(white, _png("white", (30, 10))) == 300
