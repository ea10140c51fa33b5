"""Every notebook with hidden tests: the solution scores full marks, the unanswered student version scores 0.

Grades both through the real grader (sandbox, kernel, trusted judge), one batch per notebook.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from instructor import grade
from instructor.grading import sandbox
from instructor.grading.spec import assignment_names, load_assignment

ROOT = Path(__file__).resolve().parent.parent.parent
NAMES = assignment_names()


def test_every_notebook_has_hidden_tests():
    notebooks = sorted(p.stem for p in (ROOT / "solutions").glob("[0-9]*.ipynb"))
    assert notebooks == NAMES


@pytest.mark.corpus
@pytest.mark.skipif(sandbox.check_isolation() is not None, reason="strong isolation unavailable")
@pytest.mark.parametrize("name", NAMES)
def test_solution_full_marks_and_student_version_zero(name, tmp_path):
    for student, folder in (("solution", "solutions"), ("blank", "notebooks")):
        (tmp_path / "subs" / student).mkdir(parents=True)
        shutil.copy(ROOT / folder / f"{name}.ipynb", tmp_path / "subs" / student / f"{name}.ipynb")
    assert grade.main([name, str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--workers", "2",
                       "--no-progress"]) == 0
    students = {s["student"]: s for s in json.loads((tmp_path / "out" / "grades.json").read_text())["students"]}
    assignment = load_assignment(name)
    ids = {p.grade_id for p in assignment.checks}
    solution, blank = students["solution"], students["blank"]
    assert solution["status"] == "ok", solution["note"]
    assert {g for g, (passed, *_) in solution["verdicts"].items() if passed} == ids, solution["verdicts"]
    assert not any(passed for passed, *_ in blank["verdicts"].values()), blank["verdicts"]
    rows = {r.split(",")[0]: r.split(",") for r in (tmp_path / "out" / "gradebook.csv").read_text().splitlines()}
    header = rows["student"]
    total = header.index(next(h for h in header if h.startswith("total")))
    checks_regular = sum(p.points for p in assignment.checks if not p.extra_credit)
    assert float(rows["solution"][total]) == checks_regular and float(rows["blank"][total]) == 0
