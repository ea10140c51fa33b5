"""Build `report.html` in a grades folder: `build_report`, and the command line behind `make report`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from instructor.classreport import page
from instructor.grading.gradeset import GradesError, load_grades
from instructor.grading.spec import AssignmentError

REPORT_FILE = "report.html"


def build_report(folder: Path, out: Path | None = None, per_student: bool = False,
                 assignment: str | None = None) -> Path:
    """Write the class report of the grades in `folder` (to `folder`/report.html unless `out`); return its path.

    Reads grades.json only (never regrades); raises GradesError when the folder cannot be used.
    """
    grades = load_grades(folder, assignment)
    target = out or Path(folder) / REPORT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(page.render(grades, per_student), encoding="utf-8")
    partial.replace(target)
    return target


def rebuild_if_present(folder: Path) -> Path | None:
    """After a merge: rebuild an existing report.html with the merged grades, keeping its per-student option."""
    target = Path(folder) / REPORT_FILE
    if not target.is_file():
        return None
    per_student = page.PER_STUDENT_MARK in target.read_text(encoding="utf-8", errors="replace")
    return build_report(folder, target, per_student)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m instructor.classreport",
                                     description="Build the class report (report.html) of a grades folder.")
    parser.add_argument("grades", type=Path, help="the grading folder (the --out of instructor.grade), e.g. grades/05")
    parser.add_argument("--assignment", help="e.g. 05: refuse a folder holding another assignment's grades")
    parser.add_argument("--out", type=Path, help="where to write the page (default: <grades>/report.html)")
    parser.add_argument("--per-student", action="store_true",
                        help="add a table of every student's points (names the students; off by default)")
    args = parser.parse_args(argv)
    try:
        path = build_report(args.grades, args.out, args.per_student, args.assignment)
    except (GradesError, AssignmentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"class report: {path}")
    return 0
