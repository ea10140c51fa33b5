"""The trusted side reads what a sandbox leaves behind without blocking, inflating or trusting it (fast, no sandbox)."""

from __future__ import annotations

import io
import json
import os
import threading
import zipfile
from pathlib import Path

import pytest
import torch

from instructor.grading import grader, judge, sandbox
from instructor.grading.cgroups import Usage
from instructor.grading.judge import UnreadableResult, load_result


def _save(path: Path, values: dict, error: str = "") -> Path:
    torch.save({"error": error, "values": values}, path)
    return path


def _finishes(fn, *args, seconds: float = 10.0):
    """fn(*args) in a thread; fails the test instead of hanging when it blocks."""
    result: dict = {}

    def target() -> None:
        try:
            result["value"] = fn(*args)
        except Exception as exc:  # noqa: BLE001 - handed to the test
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{fn.__name__} blocked"
    if "error" in result:
        raise result["error"]
    return result["value"]


def test_plain_results_load_including_transposed_views(tmp_path):
    path = _save(tmp_path / "r.pt", {"a": torch.randn(3, 4).T, "n": torch.tensor(2)})
    loaded = load_result(path)
    assert loaded["error"] == "" and loaded["values"]["a"].shape == (4, 3)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "r.pt")
    with pytest.raises(UnreadableResult, match="not a regular file"):
        _finishes(load_result, tmp_path / "r.pt")
    os.mkfifo(tmp_path / "status.json")
    assert _finishes(grader._read_status, tmp_path / "status.json") == {}


def test_a_symlink_is_refused(tmp_path):
    target = _save(tmp_path / "real.pt", {"a": torch.zeros(2)})
    (tmp_path / "r.pt").symlink_to(target)
    with pytest.raises(UnreadableResult, match="not a regular file"):
        load_result(tmp_path / "r.pt")


def test_compressed_members_are_refused_before_unpacking(tmp_path):
    plain = _save(tmp_path / "plain.pt", {"a": torch.zeros(1000)})
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for member in src.infolist():
            dst.writestr(member.filename, src.read(member))
    with pytest.raises(UnreadableResult, match="compressed members"):
        load_result(bomb)


def test_expanded_and_overlapping_tensors_are_refused(tmp_path):
    with pytest.raises(UnreadableResult, match="more than 20,000,000 numbers"):
        load_result(_save(tmp_path / "e.pt", {"a": torch.zeros(1).expand(300_000_000)}))
    with pytest.raises(UnreadableResult, match="expanded or overlapping"):
        load_result(_save(tmp_path / "z.pt", {"a": torch.zeros(1).expand(1000)}))
    with pytest.raises(UnreadableResult, match="expanded or overlapping"):
        load_result(_save(tmp_path / "o.pt", {"a": torch.zeros(10).as_strided((5, 5), (1, 1))}))


def test_numbers_are_capped_per_submission(tmp_path):
    path = _save(tmp_path / "r.pt", {"a": torch.zeros(1000)})
    budget = [2500]
    load_result(path, budget)
    load_result(path, budget)
    with pytest.raises(UnreadableResult, match="all results together"):
        load_result(path, budget)


def test_errors_and_names_are_bounded(tmp_path):
    assert len(load_result(_save(tmp_path / "r.pt", {}, error="x" * 100_000))["error"]) == judge.MAX_ERROR_CHARS
    with pytest.raises(UnreadableResult, match="malformed name"):
        load_result(_save(tmp_path / "n.pt", {"m" * 1000: torch.zeros(1)}))


def test_oversized_files_are_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(judge, "MAX_RESULT_BYTES", 1000)
    with pytest.raises(UnreadableResult, match="larger than"):
        load_result(_save(tmp_path / "r.pt", {"a": torch.zeros(10_000)}))


def test_not_a_torch_file_is_refused(tmp_path):
    (tmp_path / "r.pt").write_bytes(b"\x80\x04garbage")
    with pytest.raises(UnreadableResult, match="not a file written by torch.save"):
        load_result(tmp_path / "r.pt")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("r/data.pkl", b"not a pickle")
    (tmp_path / "z.pt").write_bytes(buffer.getvalue())
    with pytest.raises(UnreadableResult, match="could not be read"):
        load_result(tmp_path / "z.pt")


def _run(oom: int = 0, timed_out: bool = False) -> sandbox.SandboxResult:
    return sandbox.SandboxResult(0, timed_out, 1.0, "", Usage(100.0, oom, 0, 1.0))


def test_an_oom_kill_in_the_control_group_is_reported_as_memory():
    nb = grader.nbformat.v4.new_notebook()
    assert grader._status(_run(oom=2), {"kernel_died": True}, nb)[0] == "memory"
    assert grader._status(_run(), {"memory_errors": 1}, nb)[0] == "memory"
    assert grader._status(_run(), {"kernel_died": True}, nb)[0] == "crashed"


def test_the_note_names_the_cell_that_ran_out_of_time():
    nb = grader.nbformat.v4.new_notebook(cells=[grader.nbformat.v4.new_markdown_cell("# Title"),
                                                grader.nbformat.v4.new_code_cell("x = 1"),
                                                grader.nbformat.v4.new_code_cell("\nwhile True:\n    pass")])
    status, note = grader._status(_run(), {"timeouts": [2], "restarts": 1}, nb)
    assert status == "timeout" and "code cell 2 (`while True:`)" in note and "kernel was restarted" in note
    assert "a hidden test" in grader._status(_run(), {"timeouts": [7]}, nb)[1]
    assert json.dumps(grader._status(_run(), {"timeouts": ["x" * 10**6]}, nb)).__len__() < 2000
