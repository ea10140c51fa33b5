"""Reference results: the hidden tests' probes run on the solution notebook, built on this machine when needed.

They are a cache in ``build/grading-reference/`` (see `instructor.grading.spec`), never committed: trained weights make
them megabytes, and a local build always matches the solution, hidden tests, utils and torch in use. The first
grading of an assignment builds its reference (as long as one run of the solution notebook: 10 s to about 70 s on
a 2-core CPU); later ones reuse it until the fingerprint changes.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import torch

from instructor.grading import sandbox
from instructor.grading.grader import grade_notebook
from instructor.grading.spec import Assignment, AssignmentError, ReferenceMissing, load_assignment, load_reference, save_reference


def build_reference(name: str, limits: sandbox.Limits | None = None, strong: bool | None = None) -> Assignment:
    """Run the solution notebook through the grader, store the probes' data, check every hidden test passes on it.

    The solution is the instructor's own code, so where strong isolation is unavailable it runs with the limits
    only (``strong=None`` picks what this machine offers).
    """
    assignment = load_assignment(name)
    limits = limits or sandbox.Limits()
    strong = sandbox.check_isolation() is None if strong is None else strong
    outcome = grade_notebook(assignment, assignment.solution, "solution", None, limits, strong)
    failed = [f"{gid}: {v.message}" for gid, v in outcome.verdicts.items()]
    if outcome.status != "ok" or failed or set(outcome.values) != {p.grade_id for p in assignment.checks}:
        raise AssignmentError(f"the solution of {assignment.name} did not produce every probe's data "
                              f"(status {outcome.status} {outcome.note}): " + "; ".join(failed))
    save_reference(assignment, outcome.values)
    reference = load_reference(assignment)
    verdicts = {p.grade_id: assignment.judges[p.grade_id](outcome.values[p.grade_id], reference[p.grade_id])
                for p in assignment.checks}
    wrong = [f"{gid}: {v.message}" for gid, v in verdicts.items() if not v.passed]
    if wrong:
        raise AssignmentError("the solution fails its own hidden tests: " + "; ".join(wrong))
    return assignment


def ensure_reference(assignment: Assignment, limits: sandbox.Limits | None = None,
                     log: TextIO | None = sys.stderr) -> dict[str, dict[str, torch.Tensor]]:
    """The assignment's reference results, built first when missing or stale (a note goes to `log`)."""
    try:
        return load_reference(assignment)
    except ReferenceMissing as why:
        if log is not None:
            print(f"note: {why}.\nBuilding the reference results of {assignment.name} now from the solution "
                  "notebook (one run of it; kept until the solution, hidden tests or utils change) ...",
                  file=log, flush=True)
    start = time.monotonic()
    build_reference(assignment.name, limits)
    if log is not None:
        print(f"{assignment.name}: reference results built in {time.monotonic() - start:.1f} s", file=log, flush=True)
    return load_reference(assignment)
