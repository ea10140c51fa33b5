"""One control group per submission: its memory (all its processes together), process count and CPU share.

Linux counts and limits resources per control group, whatever user the processes run as, so a submission that forks
until refused or allocates in many processes hits *its own* limits, never its neighbours'. Both layouts are supported:

* cgroup v1 (one hierarchy per controller, e.g. /sys/fs/cgroup/memory): ``memory.limit_in_bytes`` (and
  ``memory.memsw.limit_in_bytes`` where swap is accounted), ``pids.max``, ``cpu.cfs_quota_us``;
* cgroup v2 (one unified hierarchy with the memory, pids and cpu controllers): ``memory.max``,
  ``memory.swap.max``, ``pids.max``, ``cpu.max``.

Each group is created below the grader's own group (so whoever limits the grader also limits the submissions), needs
write access to it (root, or a delegated subtree) and is removed after the run. ``create`` returns None, with the
reason in `unavailable_reason`, where that is not possible: the sandbox then falls back to per-process rlimits.
On v2, the grader's group must be able to hand the controllers down: v2 forbids that to a non-root group that holds
processes itself, so start the grader in a delegated group with nothing else in it (e.g. under
``systemd-run --scope -p Delegate=yes``, after moving itself into a leaf); otherwise ``create`` reports why not.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")
V2_CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000
MB = 1024 * 1024


@dataclass(frozen=True)
class Usage:
    """What one submission used, read from its control group after the run (trusted: the kernel's counters)."""

    memory_peak_mb: float
    oom_kills: int
    processes_refused: int
    cpu_seconds: float

    def as_dict(self) -> dict[str, float]:
        return {"memory_peak_mb": round(self.memory_peak_mb, 1), "oom_kills": self.oom_kills,
                "processes_refused": self.processes_refused, "cpu_seconds": round(self.cpu_seconds, 2)}


def _write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _keyed(text: str, key: str) -> int:
    """The number after `key` in a flat-keyed cgroup file ("oom_kill 3\\nmax 0"), 0 when absent."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
            return int(parts[1])
    return 0


def _own_paths(root: Path) -> tuple[str, dict[str, str]]:
    """("v1" or "v2", {controller: this process's group path}) from /proc/self/cgroup."""
    v1: dict[str, str] = {}
    v2 = None
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and controllers == "":
            v2 = path
        for controller in controllers.split(","):
            v1[controller] = path
    if all(c in v1 for c in V1_CONTROLLERS if (root / c).is_dir()) and (root / "memory" / "memory.limit_in_bytes").exists():
        return "v1", v1
    if v2 is not None and (root / "cgroup.controllers").exists():
        return "v2", {"unified": v2}
    return "none", {}


class Cgroup:
    """The control group(s) of one submission: created with its limits, joined before exec, killed and removed."""

    def __init__(self, version: str, dirs: dict[str, Path]) -> None:
        self.version = version
        self.dirs = dirs  # controller (or "unified") -> folder
        self.procs_files = [str(d / "cgroup.procs") for d in dirs.values()]

    def join(self) -> None:
        """Move the calling process into the group (a `preexec_fn`: before exec, so every descendant is inside)."""
        pid = str(os.getpid())
        for path in self.procs_files:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, pid.encode())
            finally:
                os.close(fd)

    def pids(self) -> list[int]:
        """Processes still in the group."""
        found: set[int] = set()
        for path in self.procs_files:
            found |= {int(p) for p in _read(Path(path)).split() if p.isdigit()}
        return sorted(found)

    def kill_all(self, wait_seconds: float = 10.0) -> None:
        """SIGKILL every process in the group until it is empty (or `wait_seconds` pass)."""
        kill_file = self.dirs.get("unified", Path("/nonexistent")) / "cgroup.kill"
        deadline = time.monotonic() + wait_seconds
        while (pids := self.pids()) and time.monotonic() < deadline:
            if kill_file.exists():
                with contextlib.suppress(OSError):
                    _write(kill_file, "1")
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def usage(self) -> Usage:
        """Peak memory, OOM kills, refused forks and CPU time, from the kernel's counters."""
        if self.version == "v2":
            d = self.dirs["unified"]
            peak = _read(d / "memory.peak").strip()
            return Usage(int(peak) / MB if peak.isdigit() else 0.0, _keyed(_read(d / "memory.events"), "oom_kill"),
                         _keyed(_read(d / "pids.events"), "max"),
                         _keyed(_read(d / "cpu.stat"), "usage_usec") / 1e6)
        memory, pids = self.dirs["memory"], self.dirs["pids"]
        peak = _read(memory / "memory.max_usage_in_bytes").strip()
        cpu = _read(self.dirs["cpuacct"] / "cpuacct.usage").strip() if "cpuacct" in self.dirs else ""
        return Usage(int(peak) / MB if peak.isdigit() else 0.0,
                     _keyed(_read(memory / "memory.oom_control"), "oom_kill"),
                     _keyed(_read(pids / "pids.events"), "max"), int(cpu) / 1e9 if cpu.isdigit() else 0.0)

    def remove(self) -> None:
        """Kill what is left and delete the group's folders."""
        self.kill_all()
        for d in self.dirs.values():
            with contextlib.suppress(OSError):
                d.rmdir()


_state: dict[str, str] = {}


def unavailable_reason() -> str | None:
    """None when `create` works here, else why not (set by the last `create`)."""
    return _state.get("reason")


def create(memory_mb: int, max_processes: int, cpus: float, root: Path = CGROUP_ROOT) -> Cgroup | None:
    """A new group with these limits below the grader's own, or None (see `unavailable_reason`)."""
    version, own = _own_paths(root)
    name = f"vae-grade-{secrets.token_hex(6)}"
    dirs: dict[str, Path] = {}
    try:
        if version == "v1":
            for controller in V1_CONTROLLERS:
                if (root / controller).is_dir() and controller in own:
                    dirs[controller] = root / controller / own[controller].lstrip("/") / name
        elif version == "v2":
            parent = root / own["unified"].lstrip("/")
            _enable_v2_controllers(parent)
            dirs["unified"] = parent / name
        else:
            _state["reason"] = f"no cgroup v1 memory controller nor cgroup v2 under {root}"
            return None
        for d in dirs.values():
            d.mkdir()
        group = Cgroup(version, dirs)
        _set_limits(group, memory_mb, max_processes, cpus)
    except OSError as exc:
        for d in dirs.values():
            with contextlib.suppress(OSError):
                d.rmdir()
        _state["reason"] = f"cannot create a cgroup ({exc.strerror or exc}: {exc.filename or root})"
        return None
    _state.pop("reason", None)
    return group


def _enable_v2_controllers(parent: Path) -> None:
    """Let the grader's v2 group hand memory, pids and cpu to child groups."""
    enabled = _read(parent / "cgroup.subtree_control").split()
    missing = [c for c in V2_CONTROLLERS if c not in enabled]
    if missing:
        _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))


def _set_limits(group: Cgroup, memory_mb: int, max_processes: int, cpus: float) -> None:
    memory = str(memory_mb * MB)
    quota = max(1000, int(cpus * CPU_PERIOD_US))
    if group.version == "v2":
        d = group.dirs["unified"]
        _write(d / "memory.max", memory)
        if (d / "memory.swap.max").exists():
            _write(d / "memory.swap.max", "0")
        _write(d / "pids.max", str(max_processes))
        _write(d / "cpu.max", f"{quota} {CPU_PERIOD_US}")
        return
    _write(group.dirs["memory"] / "memory.limit_in_bytes", memory)
    if (group.dirs["memory"] / "memory.memsw.limit_in_bytes").exists():
        with contextlib.suppress(OSError):  # only where swap is accounted
            _write(group.dirs["memory"] / "memory.memsw.limit_in_bytes", memory)
    _write(group.dirs["pids"] / "pids.max", str(max_processes))
    _write(group.dirs["cpu"] / "cpu.cfs_period_us", str(CPU_PERIOD_US))
    _write(group.dirs["cpu"] / "cpu.cfs_quota_us", str(quota))
