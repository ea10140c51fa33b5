"""Per-submission limits (control groups, one Limits default), the namespaces asked for, the runner's restart of a
hung kernel and the grading command's subcommands. Fast except the runner test (one real kernel, about 20 s)."""

from __future__ import annotations

import json
import shutil

import nbformat
import pytest

from instructor import grade
from instructor.grading import cgroups, runner, sandbox

FILES_V1 = {"memory": ["memory.limit_in_bytes", "memory.max_usage_in_bytes", "memory.oom_control"],
            "pids": ["pids.max", "pids.events"], "cpu": ["cpu.cfs_period_us", "cpu.cfs_quota_us"],
            "cpuacct": ["cpuacct.usage"]}


def test_a_v2_group_gets_memory_pids_and_cpu_limits(tmp_path, monkeypatch):
    (tmp_path / "grader").mkdir()
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "grader" / "cgroup.subtree_control").write_text("")
    monkeypatch.setattr(cgroups, "_own_paths", lambda root: ("v2", {"unified": "/grader"}))
    group = cgroups.create(3072, 256, 0.5, root=tmp_path)
    assert group is not None and group.version == "v2"
    d = group.dirs["unified"]
    assert d.parent == tmp_path / "grader" and d.name.startswith("vae-grade-")
    assert (d / "memory.max").read_text() == str(3072 * 2**20) and (d / "pids.max").read_text() == "256"
    assert (d / "cpu.max").read_text() == "50000 100000"
    assert (tmp_path / "grader" / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    (d / "memory.peak").write_text(str(512 * 2**20))
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    (d / "pids.events").write_text("max 7\n")
    (d / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    assert group.usage() == cgroups.Usage(512.0, 1, 7, 2.5)


def test_a_v1_group_lives_below_the_graders_own_in_each_hierarchy(tmp_path, monkeypatch):
    for controller in FILES_V1:
        (tmp_path / controller / "grader").mkdir(parents=True)
    monkeypatch.setattr(cgroups, "_own_paths", lambda root: ("v1", {c: "/grader" for c in FILES_V1}))
    group = cgroups.create(1024, 64, 1.0, root=tmp_path)
    assert group is not None and set(group.dirs) == set(FILES_V1)
    assert all(d.parent.name == "grader" for d in group.dirs.values())
    assert (group.dirs["memory"] / "memory.limit_in_bytes").read_text() == str(1024 * 2**20)
    assert (group.dirs["cpu"] / "cpu.cfs_quota_us").read_text() == "100000"
    (group.dirs["memory"] / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    (group.dirs["cpuacct"] / "cpuacct.usage").write_text("1500000000\n")
    assert group.usage().oom_kills == 3 and group.usage().cpu_seconds == 1.5


def test_no_cgroup_filesystem_means_none_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(cgroups, "_own_paths", lambda root: ("none", {}))
    assert cgroups.create(1024, 64, 1.0, root=tmp_path) is None
    assert "no cgroup" in cgroups.unavailable_reason()


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux")
def test_the_sandbox_asks_for_ipc_and_uts_namespaces(tmp_path):
    argv = sandbox.isolation_command(tmp_path / "root", tmp_path / "work", ["true"])
    assert {"--mount", "--net", "--ipc", "--uts", "--pid", "--kill-child"} <= set(argv)


def test_the_limits_are_defined_once_and_every_command_uses_them():
    defaults = sandbox.Limits()
    args = grade._parser().parse_args(["run", "00", "subs", "--out", "out"])
    assert grade.limits_from(args) == defaults
    args = grade._parser().parse_args(["reference", "00", "--cpus", "0.5"])
    assert grade.limits_from(args) == sandbox.Limits(cpus=0.5)
    assert "6144 MB of memory" in defaults.describe()


def test_grade_subcommands_and_their_messages(capsys):
    with pytest.raises(SystemExit):
        grade.main(["05_vae", "subs", "--out", "x"])  # the subcommand is required
    assert "run|merge|reference" in capsys.readouterr().err
    assert grade.main(["run", "00", "subs", "--out", "x", "--timeout", "0"]) == 2
    assert "--timeout must be positive" in capsys.readouterr().err
    assert grade.main(["merge", "nowhere", "manual.csv"]) == 2
    assert "grade first" in capsys.readouterr().err


def test_a_cell_that_ignores_the_interrupt_is_killed_and_the_rest_runs(tmp_path, monkeypatch):
    """A real kernel: the endless cell is skipped after a restart, the cell before it is replayed."""
    monkeypatch.setattr(runner, "INTERRUPT_GRACE", 3)
    monkeypatch.chdir(tmp_path)
    sources = ["x = 41", "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
               "open('after_kill.txt', 'w').write(str(x + 1))", "while True:\n    pass",
               "open('after_interrupt.txt', 'w').write(str(x))"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    status = runner.Status()
    steps = [runner.Step(i, "notebook") for i in range(len(sources))]
    runner.run_steps(nb, steps, 8, tmp_path, status, lambda: pytest.fail("the kernel died"))
    assert status.timeouts == [1, 3] and status.restarts == 1 and status.cells == 5
    # (files, not outputs: after an interrupt nbclient may drop a cell's outputs, which are never graded)
    assert (tmp_path / "after_kill.txt").read_text() == "42"  # x came back: the first cell was run again
    assert (tmp_path / "after_interrupt.txt").read_text() == "41"  # an ordinary loop is just interrupted
    assert json.loads(json.dumps(status.__dict__))["restarts"] == 1


def test_no_isolation_fails_under_make_test_grading_and_skips_elsewhere(monkeypatch):
    from tests.grading import isolation

    monkeypatch.setattr(sandbox, "check_isolation", lambda: "unshare: operation not permitted")
    monkeypatch.setenv(isolation.REQUIRE_VARIABLE, "1")
    with pytest.raises(pytest.fail.Exception, match="operation not permitted"):
        isolation.require_isolation()
    monkeypatch.delenv(isolation.REQUIRE_VARIABLE)
    with pytest.raises(pytest.skip.Exception):
        isolation.require_isolation()
