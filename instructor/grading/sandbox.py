"""Run a command isolated from the machine: the untrusted side of grading.

Strong isolation (Linux with util-linux's ``unshare``, as root or with unprivileged user namespaces):
    * a new mount namespace whose root is an empty in-memory folder, with read-only views of the system folders and
      the Python installation only: the course repository, ``solutions/``, the reference results, the other
      submissions, the gradebook and the home folders are simply not there;
    * the submission's own folder mounted read-write at ``/sandbox`` (the only place it can write to disk);
    * new network (no interfaces up: any connection fails at once), IPC (System V shared memory, semaphores and
      message queues die with the sandbox and are invisible to other submissions) and UTS namespaces;
    * a new PID namespace: when the runner ends, every process it or the notebook started is killed;
    * an unprivileged user (``nobody`` when grading as root) with no capabilities and ``no_new_privs``.
Per-submission limits (``Limits``), whatever the isolation:
    * a control group of its own (``cgroups``; needs root or a delegated cgroup subtree): memory of all its
      processes together, number of processes and threads, CPU time (``cpus`` cores at most);
    * its folder (``/sandbox``, the log, the probes' results) is a size-capped tmpfs (``disk_mb``; root only), its
      ``/tmp`` and ``/dev/shm`` small tmpfs inside the namespace; tmpfs pages count in its memory too;
    * rlimits per process: address space, file size, no core files. Only where no control group can be created,
      ``RLIMIT_NPROC`` caps processes, counted per *user* across the machine (shared by all submissions);
    * a wall-clock limit enforced from outside.
Weak isolation (``strong=False``, e.g. macOS or a container that forbids namespaces): the limits, the scrubbed
environment and the process-group kill apply; when grading as root (and Python is readable by others) the
submission also runs as ``nobody``, so files readable only by root (e.g. a ``chmod 700`` folder of hidden tests
and references) stay out of its reach. Otherwise it can read whatever the grading user can read, and it can open
network connections. The grader refuses this mode unless asked for it explicitly.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from instructor.grading import cgroups

NOBODY = 65534
SANDBOX_MOUNT = "/sandbox"
SYSTEM_DIRS = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc")


@dataclass(frozen=True)
class Limits:
    """Resource limits for one submission: the only place their defaults are written."""

    cell_seconds: int = 300  # one cell (or one hidden test's probe); then interrupt, and restart the kernel if needed
    total_seconds: int = 1200  # the whole notebook, probes included; then everything is killed
    memory_mb: int = 6144  # all its processes together (and each process's address space)
    max_processes: int = 512  # processes and threads together
    cpus: float = 1.0  # CPU time, in cores
    disk_mb: int = 1024  # its writable folder
    max_file_mb: int = 512  # any one file it writes

    def describe(self) -> str:
        """One line for logs and reports."""
        return (f"{self.cell_seconds} s per cell, {self.total_seconds} s per notebook, {self.memory_mb} MB of memory, "
                f"{self.max_processes} processes, {self.cpus:g} CPU, {self.disk_mb} MB of disk")


@dataclass
class SandboxResult:
    """What the trusted side observed about one sandboxed run (nothing here comes from the submission)."""

    returncode: int
    timed_out: bool
    seconds: float
    log_tail: str
    usage: cgroups.Usage | None = None  # None where no control group could be created


class IsolationUnavailable(RuntimeError):
    """Namespaces cannot be created here; the message says why and what to do."""


def python_dirs() -> list[str]:
    """Folders the sandboxed Python needs to see (read-only): the venv and the base installation."""
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        dirs.add(sysconfig.get_paths()[key])
    dirs |= {os.path.realpath(d) for d in dirs}  # a venv that is a symlink (e.g. a shared one) is bound at its target
    # Keep only top-most folders, none of which is a system folder (those are mounted anyway).
    kept: list[str] = []
    for d in sorted(dirs, key=len):
        if not os.path.isdir(d) or any(d == s or d.startswith(s + "/") for s in SYSTEM_DIRS):
            continue
        if not any(d == k or d.startswith(k + "/") for k in kept):
            kept.append(d)
    return kept


def _mount_script(newroot: str, workdir: str, drop_to_nobody: bool, command: list[str]) -> str:
    """The shell script run as root of the new namespaces: build the minimal root, then drop privileges and exec."""
    q = shlex.quote
    tools = "/usr/sbin:/usr/bin:/sbin:/bin"
    chroot = shutil.which("chroot", path=tools) or "/usr/sbin/chroot"
    lines = [
        "set -e",
        f'SAVED_PATH="$PATH"; PATH={tools}',
        "mount --make-rprivate /",
        f"R={q(newroot)}",
        'mount -t tmpfs -o size=64m,mode=755 tmpfs "$R"',
        # /tmp first: a Python installation under /tmp (e.g. a CI clone's venv) is bound inside it below
        'mkdir -p "$R/dev/shm" "$R/proc" "$R/tmp" "$R/sandbox"',
        'mount -t tmpfs -o size=256m,mode=1777 tmpfs "$R/tmp"',
    ]
    for d in (*SYSTEM_DIRS, *python_dirs()):
        lines.append(
            f'if [ -L {q(d)} ]; then mkdir -p "$R$(dirname {q(d)})"; ln -s "$(readlink {q(d)})" "$R"{q(d)}; '
            f'elif [ -d {q(d)} ]; then mkdir -p "$R"{q(d)}; mount --rbind {q(d)} "$R"{q(d)}; '
            f'mount -o remount,bind,ro "$R"{q(d)}; fi'
        )
    lines += [
        'for f in null zero random urandom; do touch "$R/dev/$f"; mount --bind "/dev/$f" "$R/dev/$f"; done',
        'mount -t tmpfs -o size=64m,mode=1777 tmpfs "$R/dev/shm"',
        'mount -t proc proc "$R/proc"',
        f'mount --bind {q(workdir)} "$R{SANDBOX_MOUNT}"',
        'mount -o remount,ro,bind "$R"',
    ]
    user = f"--reuid={NOBODY} --regid={NOBODY} --clear-groups " if drop_to_nobody else ""
    setpriv = shutil.which("setpriv", path=tools) or "/usr/bin/setpriv"
    setpriv += f" {user}--no-new-privs --bounding-set=-all --inh-caps=-all"
    lines.append(f'PATH="$SAVED_PATH"; cd "$R" && exec {chroot} "$R" {setpriv} {" ".join(q(c) for c in command)}')
    return "\n".join(lines)


def isolation_command(newroot: Path, workdir: Path, command: list[str]) -> list[str]:
    """The argv that runs `command` under strong isolation (see the module docstring)."""
    unshare = shutil.which("unshare")
    if unshare is None or not sys.platform.startswith("linux"):
        raise IsolationUnavailable("strong isolation needs Linux and util-linux's `unshare`")
    as_root = os.geteuid() == 0
    user_ns = [] if as_root else ["--user", "--map-root-user"]
    script = _mount_script(str(newroot), str(workdir), drop_to_nobody=as_root, command=command)
    return [unshare, *user_ns, "--mount", "--net", "--ipc", "--uts", "--pid", "--fork", "--kill-child", "sh", "-c",
            script]


_probe_cache: dict[str, str | None] = {}


def check_limits() -> str | None:
    """None when each submission gets limits of its own here (a control group and a size-capped tmpfs), else what
    is missing; then memory, processes and CPU are limited per process (or per user) only."""
    group = cgroups.create(64, 16, 0.5)
    if group is None:
        return cgroups.unavailable_reason()
    group.remove()
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "the disk limit (a tmpfs per submission) needs root"
    return None


def check_isolation() -> str | None:
    """None when strong isolation works on this machine, else the reason it does not (cached)."""
    if "result" in _probe_cache:
        return _probe_cache["result"]
    import tempfile

    with tempfile.TemporaryDirectory(prefix="vae-grade-probe-") as tmp:
        root, work = Path(tmp, "root"), Path(tmp, "work")
        root.mkdir()
        work.mkdir()
        prepare_workdir(work)
        try:
            argv = isolation_command(root, work, [sys.executable, "-c", "open('/sandbox/ok', 'w').write('1')"])
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            reason = None if (work / "ok").is_file() else f"unshare failed: {proc.stderr.strip()[-400:]}"
        except (IsolationUnavailable, OSError, subprocess.TimeoutExpired) as exc:
            reason = str(exc)
    _probe_cache["result"] = reason
    return reason


def prepare_workdir(workdir: Path) -> None:
    """Hand the submission's folder to the sandbox user (only needed when grading as root)."""
    if os.geteuid() == 0:
        for path in [workdir, *workdir.rglob("*")]:
            os.lchown(path, NOBODY, NOBODY)


def can_drop_to_nobody() -> bool:
    """True when running as root and `nobody` can reach and run this Python (every parent folder searchable)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    for path in (os.path.realpath(sys.executable), sys.prefix):
        parts = Path(path).parts
        for i in range(2, len(parts) + 1):
            folder = Path(*parts[:i])
            if folder.is_dir() and not os.stat(folder).st_mode & 0o001:
                return False
    return True


def _become_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def _limit_resources(limits: Limits, group: cgroups.Cgroup | None) -> None:
    """preexec_fn: join the submission's control group, set the rlimits; inherited by every process it starts."""
    if group is not None:
        group.join()
    mb = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_mb * mb, limits.max_file_mb * mb))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if group is None:  # counted per user across the machine (threads included): only a fallback
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))


def mount_scratch(folder: Path, limits: Limits) -> bool:
    """Make `folder` a tmpfs of `limits.disk_mb` (as root on Linux): the submission's whole writable space on the
    machine. False (nothing mounted) where that is not possible; then only `max_file_mb` per file applies."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return False
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={limits.disk_mb}m,mode=0711,nosuid,nodev",
                           "vae-grade", str(folder)], capture_output=True, text=True)
    return proc.returncode == 0


def release_scratch(folder: Path) -> None:
    """Unmount a `mount_scratch` folder (its content goes with it); lazily when something still holds it."""
    if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def run_isolated(command: list[str], workdir: Path, env: dict[str, str], stdin_text: str, limits: Limits,
                 strong: bool = True) -> SandboxResult:
    """Run `command` (paths as seen inside: the workdir is /sandbox) with the limits; kill it all after total_seconds.

    With strong=False the command runs with the real paths (workdir as cwd) and only the limits apply.
    """
    start = time.monotonic()
    newroot = workdir.parent / (workdir.name + ".root")
    newroot.mkdir(exist_ok=True)
    drop = False
    if strong:
        prepare_workdir(workdir)
        argv, cwd = isolation_command(newroot, workdir, command), str(newroot)
    else:
        argv, cwd = command, str(workdir)
        drop = can_drop_to_nobody()
        if drop:
            prepare_workdir(workdir)
            os.chmod(workdir.parent, 0o711)  # mkdtemp made it 0700: nobody must be able to pass through
    log_path = workdir.parent / (workdir.name + ".log")
    group = cgroups.create(limits.memory_mb, limits.max_processes, limits.cpus)
    usage = None
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                    env=env, start_new_session=True,
                                    preexec_fn=lambda: (_limit_resources(limits, group), drop and _become_nobody()))
            timed_out = False
            try:
                proc.communicate(stdin_text.encode(), timeout=limits.total_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(proc)
                if group is not None:
                    group.kill_all()
                    usage = group.usage()
    finally:
        if group is not None:
            group.remove()
    with open(log_path, "rb") as log:
        log.seek(max(0, os.fstat(log.fileno()).st_size - 4000))
        tail = log.read().decode(errors="replace")
    return SandboxResult(proc.returncode if proc.returncode is not None else -9, timed_out,
                         time.monotonic() - start, tail, usage)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the process group (with --kill-child, the namespace's init and so everything in it dies too)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
