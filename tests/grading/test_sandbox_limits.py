"""The sandbox itself, without a notebook: its namespaces and its control group's limits (a few seconds each)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from instructor.grading import sandbox
from tests.grading.isolation import require_isolation

pytestmark = pytest.mark.corpus


def _run(tmp_path: Path, code: str, **limits) -> tuple[sandbox.SandboxResult, str]:
    """Run `code` in a strong sandbox (its folder is /sandbox); returns the result and what it wrote to /sandbox/out."""
    require_isolation()
    work = tmp_path / "box"
    work.mkdir()
    env = {"PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    result = sandbox.run_isolated([sys.executable, "-c", code], work, env, "",
                                  sandbox.Limits(total_seconds=60, **limits))
    out = work / "out"
    return result, out.read_text() if out.is_file() else ""


def test_ipc_uts_and_pid_namespaces_are_the_sandbox_own(tmp_path):
    code = ("import os; open('/sandbox/out', 'w').write(' '.join(os.readlink(f'/proc/self/ns/{n}') "
            "for n in ('ipc', 'uts', 'pid')))")
    _, out = _run(tmp_path, code)
    host = [os.readlink(f"/proc/self/ns/{n}") for n in ("ipc", "uts", "pid")]
    inside = out.split()
    assert len(inside) == 3 and all(a != b for a, b in zip(inside, host, strict=True)), (inside, host)


def test_processes_are_limited_per_submission_not_per_user(tmp_path):
    code = ("import os, time\nn = 0\ntry:\n    while n < 10000:\n        if os.fork() == 0:\n            time.sleep(30)\n"
            "            os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nopen('/sandbox/out', 'w').write(str(n))")
    result, out = _run(tmp_path, code, max_processes=40)
    assert out and int(out) < 40 and result.usage is not None and result.usage.processes_refused > 0


def test_memory_counts_every_process_of_the_submission(tmp_path):
    code = ("import os, time\nfor _ in range(4):\n    if os.fork() == 0:\n        b = b'x' * (96 * 2**20)\n"
            "        time.sleep(30)\n        os._exit(0)\ntime.sleep(5)\nopen('/sandbox/out', 'w').write('done')")
    result, _ = _run(tmp_path, code, memory_mb=256)
    assert result.usage is not None and result.usage.oom_kills > 0 and result.usage.memory_peak_mb <= 257


def test_the_sandbox_runs_in_its_own_control_group_which_is_removed_after(tmp_path):
    _, out = _run(tmp_path, "open('/sandbox/out', 'w').write(open('/proc/self/cgroup').read())")
    groups = {line.rsplit("/", 1)[-1] for line in out.splitlines() if "/vae-grade-" in line}
    assert len(groups) == 1, out  # one name, in every hierarchy with a controller
    assert not any(Path("/sys/fs/cgroup").rglob(groups.pop()))  # removed after the run
