"""Benchmark (not a test): grade a batch of mixed submissions of one notebook and report the time.

    python tests/bench/bench_grading.py 02 --students 20 --workers 2     # make bench-grading NB=02

The batch: full solutions, unanswered student versions, and partial ones (each exercise's answer cells taken from
the solution or from the student version at random, seeded), plus one invalid file. Prints the grader's summary
and writes build/bench/grading-<assignment>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from instructor import grade  # noqa: E402
from instructor.grading.spec import resolve_name  # noqa: E402


def partial(solution: nbformat.NotebookNode, student: nbformat.NotebookNode, rng: random.Random) -> nbformat.NotebookNode:
    """The solution with each answer cell replaced, with probability 1/2, by the student version's stub."""
    nb = nbformat.from_dict(solution)
    for i, cell in enumerate(nb.cells):
        if "### BEGIN SOLUTION" in cell.source and rng.random() < 0.5:
            nb.cells[i] = student.cells[i]
    return nb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("assignment", nargs="?", default="02")
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    name = resolve_name(args.assignment)
    solution = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4)
    student = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        subs = Path(tmp, "submissions")
        kinds = {}
        for k in range(args.students):
            sid = f"student{k:02d}"
            (subs / sid).mkdir(parents=True)
            if k == args.students - 1:
                (subs / sid / f"{name}.ipynb").write_text("{ not json")
                kinds[sid] = "invalid"
                continue
            kind = ["solution", "blank", "partial", "partial"][k % 4]
            nb = {"solution": solution, "blank": student}.get(kind) or partial(solution, student, rng)
            nbformat.write(nb, subs / sid / f"{name}.ipynb")
            kinds[sid] = kind
        start = time.monotonic()
        status = grade.main(["run", name, str(subs), "--out", str(Path(tmp, "out")), "--workers", str(args.workers),
                             "--no-progress"])
        seconds = time.monotonic() - start
        grades = json.loads(Path(tmp, "out", "grades.json").read_text())
    result = {"assignment": name, "students": args.students, "workers": args.workers, "seconds": round(seconds, 1),
              "cpus": os.cpu_count(), "load_average": os.getloadavg(), "kinds": kinds,
              "statuses": {s["student"]: s["status"] for s in grades["students"]}}
    out = ROOT / "build" / "bench" / f"grading-{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"{args.students} submissions of {name} graded in {seconds:.1f} s with {args.workers} workers -> {out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
