"""A graded class read back from a grades folder, checked, for the class report and the LMS export (never regrades).

`load_grades(folder)` reads ``grades.json`` (written by ``python -m instructor.grade`` and rewritten by its
``merge``), so both readers see the hand-graded written answers merged so far. It refuses, with the reason:

* a folder that does not exist, has no ``grades.json`` or an unreadable one (interrupted or not a grading folder);
* a folder whose ``gradebook.csv`` lists other students than ``grades.json`` (partial: both sides are named);
* a ``grades.json`` made for another version of the assignment: the parts and points recorded when grading
  (`report.parts_fingerprint`) differ from the solution notebook's now (the changed parts are named), or were not
  recorded (a grader from before fingerprints).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from instructor.grading.grader import STATUSES
from instructor.grading.judge import Verdict
from instructor.grading.report import parts_fingerprint
from instructor.grading.spec import Assignment, load_assignment, resolve_name

GRADES_FILE = "grades.json"
SHOWN = 6  # names quoted in an error before "and N more"


class GradesError(ValueError):
    """The grades folder cannot be used; the message says why and what to do."""


def _some(names: list[str] | set[str]) -> str:
    """'a, b, c' or 'a, b, … and 4 more'."""
    names = sorted(names)
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


@dataclass(frozen=True)
class StudentGrades:
    """One student's graded submission as stored: verdicts per grade id, written answers, hand-graded points."""

    student: str
    status: str
    seconds: float
    note: str
    verdicts: dict[str, Verdict]
    written: dict[str, str] = field(default_factory=dict)
    manual: dict[str, float] = field(default_factory=dict)


@dataclass
class GradeSet:
    """A class's grades for one assignment, with the points computed from the assignment's parts."""

    folder: Path
    assignment: Assignment
    students: list[StudentGrades]
    warnings: list[str] = field(default_factory=list)

    def exercise_points(self, s: StudentGrades) -> dict[str, float | None]:
        """{exercise: points}; None for a written answer not graded by hand yet."""
        points: dict[str, float | None] = {}
        for p in self.assignment.parts:
            if p.kind == "written":
                points[p.exercise] = s.manual.get(p.exercise)
            else:
                verdict = s.verdicts.get(p.grade_id)
                earned = p.points if verdict is not None and verdict.passed else 0.0
                points[p.exercise] = (points.get(p.exercise) or 0.0) + earned
        return points

    def total(self, s: StudentGrades, extra_credit: bool) -> float:
        """Regular (or extra-credit) points earned so far, written answers graded by hand included."""
        extra = self.extra_exercises()
        return sum(v or 0.0 for e, v in self.exercise_points(s).items() if (e in extra) == extra_credit)

    def pending(self, s: StudentGrades) -> list[str]:
        """The written answers of this student still to grade by hand."""
        return [p.exercise for p in self.assignment.written if p.exercise not in s.manual]

    def extra_exercises(self) -> set[str]:
        return {p.exercise for p in self.assignment.parts if p.extra_credit}

    def exercise_maxima(self) -> dict[str, float]:
        """{exercise: points possible}, in notebook order."""
        maxima: dict[str, float] = {}
        for p in self.assignment.parts:
            maxima[p.exercise] = maxima.get(p.exercise, 0.0) + p.points
        return maxima


def _read_json(folder: Path) -> dict:
    if not folder.exists():
        raise GradesError(f"{folder} does not exist: grade first (make grade NB=05 SUB=path/to/submissions)")
    if not folder.is_dir():
        raise GradesError(f"{folder} is a file: give the grading folder (the --out of instructor.grade)")
    path = folder / GRADES_FILE
    if not path.is_file():
        present = sorted(p.name for p in folder.iterdir())
        if "gradebook.csv" in present:
            raise GradesError(f"{folder} holds gradebook.csv but no {GRADES_FILE}: the grading was interrupted or "
                              "the file was removed; grade again with --overwrite")
        raise GradesError(f"{folder} is not a grading folder: no {GRADES_FILE} (it holds: {_some(present) or 'nothing'})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GradesError(f"{path} is not valid JSON ({exc}): the grading was interrupted; grade again with "
                          "--overwrite") from None
    if not isinstance(data, dict) or not isinstance(data.get("students"), list) or "assignment" not in data:
        raise GradesError(f"{path} is not a grades file of instructor.grade (no assignment or students)")
    return data


def _student(entry: object, index: int) -> StudentGrades:
    """One stored student, checked field by field."""
    where = f"{GRADES_FILE}, student #{index + 1}"
    if not isinstance(entry, dict):
        raise GradesError(f"{where} is not an object")
    missing = [k for k in ("student", "status", "seconds", "note", "verdicts") if k not in entry]
    if missing:
        raise GradesError(f"{where} ({entry.get('student', '?')}) lacks {', '.join(missing)}: the file is partial")
    if entry["status"] not in STATUSES:
        raise GradesError(f"{where} ({entry['student']}) has status {entry['status']!r}, not one of {', '.join(STATUSES)}")
    verdicts = {}
    for gid, v in entry["verdicts"].items():
        if not isinstance(v, list) or len(v) < 2:
            raise GradesError(f"{where} ({entry['student']}): verdict {gid} is not [passed, message, diagnosis]")
        verdicts[gid] = Verdict(bool(v[0]), str(v[1]), str(v[2]) if len(v) > 2 else "")
    manual = {str(e): float(p) for e, p in (entry.get("manual") or {}).items()}
    return StudentGrades(str(entry["student"]), entry["status"], float(entry["seconds"]), str(entry["note"]),
                         verdicts, dict(entry.get("written") or {}), manual)


def check_fingerprint(data: dict, assignment: Assignment) -> None:
    """Refuse a grades.json recorded for other parts or points than `assignment` has now, naming the changes."""
    recorded = data.get("parts_fingerprint")
    if not isinstance(recorded, dict) or "sha256" not in recorded:
        raise GradesError(f"{GRADES_FILE} of {assignment.name} does not record the assignment's parts and points (it was "
                          "written by an older grader), so its points cannot be checked against the notebook now: "
                          "grade again with --overwrite")
    current = parts_fingerprint(assignment)
    if recorded["sha256"] == current["sha256"]:
        return
    old = {p[0]: p for p in recorded.get("parts", [])}
    new = {p[0]: p for p in current["parts"]}
    changes = [f"{g} removed" for g in old if g not in new] + [f"{g} added" for g in new if g not in old]
    for g in old.keys() & new.keys():
        if old[g] != new[g]:
            changes.append(f"{g} was {old[g][2]:g} point(s){' extra' if old[g][3] else ''} of exercise {old[g][1]}, "
                           f"now {new[g][2]:g}{' extra' if new[g][3] else ''} of {new[g][1]}")
    raise GradesError(f"these grades were made for an older version of {assignment.name}, refusing them: "
                      f"{'; '.join(sorted(changes)) or 'the parts changed order'}. Grade the submissions again.")


def _gradebook_students(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return [r[0] for r in rows[1:] if r]


def load_grades(folder: Path, assignment_name: str | None = None) -> GradeSet:
    """The grades in `folder`, checked (see the module docstring); `assignment_name` (e.g. '05') must match."""
    folder = Path(folder)
    data = _read_json(folder)
    if assignment_name is not None and resolve_name(assignment_name) != data["assignment"]:
        raise GradesError(f"{folder} holds grades of {data['assignment']}, not of {resolve_name(assignment_name)}")
    assignment = load_assignment(data["assignment"])
    check_fingerprint(data, assignment)
    students = [_student(entry, i) for i, entry in enumerate(data["students"])]
    if not students:
        raise GradesError(f"{folder / GRADES_FILE} lists no students")
    names = [s.student for s in students]
    if len(set(names)) != len(names):
        raise GradesError(f"{GRADES_FILE} lists a student twice: {_some({n for n in names if names.count(n) > 1})}")
    warnings = []
    gradebook = folder / "gradebook.csv"
    if gradebook.is_file():
        listed = set(_gradebook_students(gradebook))
        only_book, only_json = listed - set(names), set(names) - listed
        if only_book or only_json:
            raise GradesError(f"{folder} is inconsistent (partial): only in gradebook.csv: {_some(only_book) or '-'}; "
                              f"only in {GRADES_FILE}: {_some(only_json) or '-'}. Grade again with --overwrite")
    else:
        warnings.append(f"{folder} has no gradebook.csv (only {GRADES_FILE}): the folder is incomplete")
    missing_feedback = [n for n in names if not (folder / "feedback" / f"{n}.md").is_file()]
    if missing_feedback:
        warnings.append(f"no feedback file for {len(missing_feedback)} student(s) in {folder / 'feedback'}")
    return GradeSet(folder, assignment, sorted(students, key=lambda s: s.student), warnings)
