"""Measurement (not a test): how much of the machine one sandboxed submission can take.

    python tests/bench/measure_limits.py --memory-mb 2048 --label after

Grades one notebook 00 submission whose last cell tries to take as much as it can, each in turn: processes (fork
until refused), memory over several processes (each child holds 256 MB, touched), disk (64 MB files in the sandbox's
writable folder) and CPU (4 busy children for 4 s). The attacks stop by themselves at 6 GB of memory, 6 GB of disk
and 5,000 processes, so a run without limits does not take the whole machine. Prints what it got and writes
build/bench/limits-<label>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from instructor.grading import grader, sandbox  # noqa: E402
from instructor.grading.spec import load_assignment  # noqa: E402

MEASURE = r'''
import json, os, select, signal, time
m = {}
kids = []
try:  # processes: fork until refused
    while len(kids) < 5000:
        pid = os.fork()
        if pid == 0:
            time.sleep(120)
            os._exit(0)
        kids.append(pid)
except OSError as exc:
    m["fork_refused"] = str(exc)
m["processes"] = len(kids)
for pid in kids:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)

kids, r, w = [], *os.pipe()
while len(kids) < 24:  # memory: children holding 256 MB each, until one cannot
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        try:
            block = b"x" * 2**28
            os.write(w, b"1")
            time.sleep(120)
        finally:
            os._exit(0)
    kids.append(pid)
    if not select.select([r], [], [], 10)[0]:
        break
    os.read(r, 1)
time.sleep(3)
alive = [pid for pid in kids if os.waitpid(pid, os.WNOHANG) == (0, 0)]
m["memory_mb_held"] = 256 * len(alive)
for pid in kids:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except OSError:
        pass

written = 0
chunk = b"\0" * 2**26
try:  # disk: 64 MB files in the sandbox's own folder
    while written < 6 * 2**30:
        with open(f"../fill-{written >> 26}", "wb") as f:
            f.write(chunk)
        written += len(chunk)
except OSError as exc:
    m["disk_refused"] = str(exc)
m["disk_mb_written"] = written >> 20
for name in os.listdir(".."):
    if name.startswith("fill-"):
        os.remove(os.path.join("..", name))

before = os.times()
kids = []
for _ in range(4):  # CPU: 4 busy children for 4 s of wall time
    pid = os.fork()
    if pid == 0:
        end = time.monotonic() + 4
        while time.monotonic() < end:
            pass
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
after = os.times()
m["cpus_used"] = round((after.children_user + after.children_system - before.children_user
                        - before.children_system) / 4, 2)
open("../measure.json", "w").write(json.dumps(m))
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memory-mb", type=int, default=2048)
    parser.add_argument("--cpus", type=float, default=1.0)
    parser.add_argument("--label", default="now")
    args = parser.parse_args()
    assignment = load_assignment("00")
    nb = nbformat.read(ROOT / "notebooks" / "00_course_tour.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(MEASURE))
    with tempfile.TemporaryDirectory(prefix="vae-measure-") as tmp:
        os.chmod(tmp, 0o755)
        path = Path(tmp, "nb.ipynb")
        nbformat.write(nb, path)
        os.environ["VAE_GRADE_KEEP"] = "1"
        limits = sandbox.Limits(memory_mb=args.memory_mb, cpus=args.cpus)
        outcome = grader.grade_notebook(assignment, path, "measure", None, limits, strong=True, scratch=Path(tmp))
        found = list(Path(tmp).glob("*/box/measure.json"))
        result = json.loads(found[0].read_text()) if found else {"error": "no measurement written"}
        result.update(status=outcome.status, note=outcome.note, seconds=round(outcome.seconds, 1),
                      limits=str(limits), cgroup=outcome.usage)
        for mounted in Path(tmp).glob("vae-grade-*"):  # the kept sandbox folder is still a tmpfs mount point
            sandbox.release_scratch(mounted)
    out = ROOT / "build" / "bench" / f"limits-{args.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
