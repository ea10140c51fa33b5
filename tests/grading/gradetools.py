"""Run hidden-test probes in this process, on namespaces the test builds (e.g. with a typical wrong answer).

The grader runs probes in the student's kernel; here the same probe functions run in-process (fast, no kernel) so
that a test can show each hidden test fails on a typical wrong answer, with a message naming the mistake.
"""

from __future__ import annotations

from instructor.grading import kernel_side
from instructor.grading.judge import Verdict
from instructor.grading.reference import ensure_reference
from instructor.grading.spec import Assignment, load_assignment

_cache: dict[str, tuple[Assignment, dict]] = {}


def assignment_and_reference(name: str) -> tuple[Assignment, dict]:
    """The assignment and its reference results (built on first use, as for grading; cached per test session)."""
    if name not in _cache:
        assignment = load_assignment(name)
        _cache[name] = (assignment, ensure_reference(assignment))
    return _cache[name]


def probe_values(name: str, grade_id: str, namespace: dict) -> dict:
    """The probe's data for `namespace`, converted exactly as in the kernel (raises what the probe raises)."""
    assignment, _ = assignment_and_reference(name)
    values: dict = {}
    kernel_side._plain(assignment.probes[grade_id](namespace), "", values)
    return values


def judge(name: str, grade_id: str, namespace: dict) -> Verdict:
    """The verdict the grader would give a notebook whose globals are `namespace`; its diagnosis is a listed one."""
    assignment, reference = assignment_and_reference(name)
    try:
        values = probe_values(name, grade_id, namespace)
    except Exception as exc:  # noqa: BLE001 - the grader records this as a failed part
        return Verdict(False, f"✗ calling your code raised {kernel_side.describe_error(exc)}")
    verdict = assignment.judges[grade_id](values, reference[grade_id])
    assert verdict.diagnosis == "" or verdict.diagnosis in assignment.diagnoses, verdict
    return verdict


def assert_fails(name: str, grade_id: str, namespace: dict, says: str, diagnosis: str | None = None) -> str:
    """Assert the hidden test fails on `namespace` with a message containing `says` (and, when given, the diagnosis
    id `diagnosis`); returns the message."""
    verdict = judge(name, grade_id, namespace)
    assert not verdict.passed, f"a wrong answer passed {grade_id}: {verdict.message}"
    assert says in verdict.message, verdict.message
    assert diagnosis is None or verdict.diagnosis == diagnosis, (verdict.diagnosis, verdict.message)
    return verdict.message
