"""Export a grades folder to the gradebook import of Canvas or Moodle, or to a plain CSV (never regrades).

    python -m instructor.export grades/05 --format canvas --roster roster.csv --missing zero --out canvas-05.csv
    python -m instructor.export grades/05 --format moodle --roster roster.csv --missing blank --out moodle-05.csv
    python -m instructor.export grades/05 --format csv --out grades-05.csv            # roster optional

It reads ``grades.json`` (so the hand-graded written answers merged with ``instructor.grade merge`` count) and
refuses a missing, partial or out-of-date grades folder (`instructor.grading.gradeset`). Students are matched to the
roster (`instructor.grading.roster`) by the submissions' ids. A roster student without a submission (or whose
folder held no notebook, status ``missing``) gets 0 or a blank cell, as ``--missing zero|blank`` says, and is
listed; submissions not in the roster are listed and left out; with no match at all the export stops and shows
both sides. The score is the regular points plus the extra credit (``--extra-credit add``, the default) or the
regular points only (``omit``); written answers not graded yet count 0 and their students are listed.

**Canvas** (Grades > Import), the columns of Canvas's own gradebook export, in this order::

    Student,ID,SIS User ID,SIS Login ID,Section,<title> (<assignment id>)
        Points Possible,,,,,25
    "Doe, Jane",1234,s123,jdoe,A,23

``Student`` is the name, ``ID`` Canvas's user id; Canvas identifies the student by ID, else SIS User ID, else SIS
Login ID, else the name (each row needs one of the three ids here). The assignment column is "title (id)" when
``--canvas-assignment-id`` is given (Canvas's export writes it so; the id picks the existing assignment), else the
title alone, which matches an assignment of exactly that title or creates a new one. The second row is Canvas's
"Points Possible" row (first cell ``    Points Possible``, the regular points in the assignment column: it sets
a new assignment's points); ``--no-points-possible`` leaves it out, as Canvas also accepts. Source: Canvas's
importer, ``lib/gradebook_importer.rb`` in instructure/canvas-lms (header check: ``Student``, ``ID``, optional
``SIS User ID``/``SIS Login ID``, last student column ``Section``; a row whose first cell contains
"Points Possible" sets points possible; "Title (id)" columns), and the Instructure guide "How do I import grades in
the Gradebook?".

**Moodle** (Grades > Import > CSV file), one identifier column and one grade column::

    email,<title>
    jane@example.edu,23

The identifier is ``email``, ``idnumber`` or ``username`` (``--moodle-id``; the roster's column of that name); on
the import page map it ("Map from") to Email address / ID number / Username ("Map to") and map the grade column to
the grade item. A blank cell is "no grade" (Moodle skips blank and "-"). Grades use a decimal point. Source:
Moodle's ``grade/import/csv/classes/load_data.php`` (user mapping fields id, idnumber, email, username; blank or
"-" as no grade; numbers through ``unformat_float``; a grade above the site's grade-point maximum, 100 by default,
is refused).

**csv**: ``student,name,status,score,points_possible,regular,extra_credit,written_to_grade`` for every roster
student (every graded student without a roster), for a spreadsheet.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

from instructor.grading.gradeset import GradesError, GradeSet, StudentGrades, load_grades
from instructor.grading.roster import Enrolled, RosterError, read_roster
from instructor.grading.spec import AssignmentError

FORMATS = ("canvas", "moodle", "csv")
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_POINTS_POSSIBLE = "    Points Possible"  # as Canvas's own export writes it
MOODLE_IDS = ("email", "idnumber", "username")
CSV_COLUMNS = ["student", "name", "status", "score", "points_possible", "regular", "extra_credit", "written_to_grade"]
SHOWN = 10


class ExportError(ValueError):
    """The export cannot be written as asked; the message says why."""


@dataclass(frozen=True)
class Row:
    """One student in the export: roster entry (None without a roster), grades (None: no submission), score."""

    student: str
    enrolled: Enrolled | None
    grades: StudentGrades | None
    score: float | None  # None: blank cell
    regular: float = 0.0
    extra: float = 0.0


@dataclass
class Export:
    """What goes into the file, and what the TA must be told."""

    rows: list[Row]
    points_possible: float
    without_submission: list[str] = field(default_factory=list)  # roster students: 0 or blank
    not_in_roster: list[str] = field(default_factory=list)  # submissions left out
    written_to_grade: list[str] = field(default_factory=list)  # students with written answers not graded yet


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{round(x, 2):g}"


def _some(names: list[str]) -> str:
    return ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def build_export(grades: GradeSet, roster: list[Enrolled] | None, missing: str, extra_credit: str = "add") -> Export:
    """Match grades to the roster and compute each score; ExportError when no roster student has a submission."""
    by_student = {s.student: s for s in grades.students}
    add_extra = extra_credit == "add"

    def score_row(student: str, enrolled: Enrolled | None) -> Row:
        s = by_student.get(student)
        if s is None or s.status == "missing":
            return Row(student, enrolled, s, 0.0 if missing == "zero" else None)
        regular, extra = grades.total(s, False), grades.total(s, True)
        return Row(student, enrolled, s, regular + (extra if add_extra else 0.0), regular, extra)

    if roster is None:
        rows = [score_row(s.student, None) for s in grades.students]
        not_in_roster: list[str] = []
    else:
        rows = [score_row(e.student, e) for e in roster]
        enrolled_ids = {e.student for e in roster}
        not_in_roster = [s.student for s in grades.students if s.student not in enrolled_ids]
        if not any(e.student in by_student for e in roster):
            raise ExportError(f"no roster student has graded work: the roster's ids ({_some([e.student for e in roster])}) "
                              f"and the submissions' ids ({_some(list(by_student))}) do not match; is --roster-key the "
                              "column holding the submission folder names?")
    without = [r.student for r in rows if r.grades is None or r.grades.status == "missing"]
    pending = [r.student for r in rows if r.grades is not None and r.grades.status != "missing" and grades.pending(r.grades)]
    return Export(rows, grades.assignment.max_points(False), without, not_in_roster, pending)


def canvas_rows(export: Export, title: str, points_possible_row: bool = True) -> list[list[str]]:
    """Header, optional Points Possible row, one row per roster student (see the module docstring)."""
    lacking = [r.student for r in export.rows
               if r.enrolled is None or not any(r.enrolled.get(f) for f in ("canvas_id", "sis_user_id", "sis_login_id"))]
    if lacking:
        raise ExportError(f"Canvas needs each student's ID, SIS User ID or SIS Login ID: the roster has none for "
                          f"{_some(lacking)} (roster columns canvas_id, sis_user_id, sis_login_id)")
    table = [[*CANVAS_COLUMNS, title]]
    if points_possible_row:
        table.append([CANVAS_POINTS_POSSIBLE, "", "", "", "", _fmt(export.points_possible)])
    for r in export.rows:
        e = r.enrolled
        table.append([e.get("name") or r.student, e.get("canvas_id"), e.get("sis_user_id"), e.get("sis_login_id"),
                      e.get("section"), _fmt(r.score)])
    return table


def moodle_rows(export: Export, title: str, identifier: str = "email") -> list[list[str]]:
    """Identifier column and grade column (see the module docstring)."""
    lacking = [r.student for r in export.rows if r.enrolled is None or not r.enrolled.get(identifier)]
    if lacking:
        raise ExportError(f"Moodle matches students by {identifier}: the roster has none for {_some(lacking)}")
    return [[identifier, title], *[[r.enrolled.get(identifier), _fmt(r.score)] for r in export.rows]]


def csv_rows(export: Export, grades: GradeSet) -> list[list[str]]:
    table = [CSV_COLUMNS]
    for r in export.rows:
        ran = r.grades is not None and r.grades.status != "missing"
        table.append([r.student, r.enrolled.get("name") if r.enrolled else "",
                      r.grades.status if r.grades else "no submission", _fmt(r.score), _fmt(export.points_possible),
                      _fmt(r.regular) if ran else "", _fmt(r.extra) if ran else "",
                      " ".join(grades.pending(r.grades)) if ran else ""])
    return table


def write_csv(path: Path, table: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(table)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m instructor.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("grades", type=Path, help="the grading folder (the --out of instructor.grade)")
    parser.add_argument("--format", choices=FORMATS, required=True)
    parser.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    parser.add_argument("--roster", type=Path, help="the class roster CSV (required for canvas and moodle)")
    parser.add_argument("--roster-key", help="the roster column holding the submissions' ids (default: student; "
                                             "SIS Login ID for a Canvas gradebook export)")
    parser.add_argument("--missing", choices=("zero", "blank"),
                        help="what a roster student without a submission gets (required with a roster)")
    parser.add_argument("--extra-credit", choices=("add", "omit"), default="add",
                        help="add the extra credit to the score (default) or leave it out")
    parser.add_argument("--column", help="the grade column's title (default: the assignment's name, e.g. 05_vae)")
    parser.add_argument("--canvas-assignment-id", help="Canvas's id of the assignment: the column becomes 'title (id)'")
    parser.add_argument("--no-points-possible", action="store_true", help="Canvas: leave out the Points Possible row")
    parser.add_argument("--moodle-id", choices=MOODLE_IDS, default="email", help="Moodle's identifier column")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 when nothing was written)."""
    args = _parser().parse_args(argv)
    try:
        if args.format != "csv" and args.roster is None:
            raise ExportError(f"--format {args.format} needs --roster (the class list with the LMS's ids)")
        if args.roster is not None and args.missing is None:
            raise ExportError("say what roster students without a submission get: --missing zero or --missing blank")
        grades = load_grades(args.grades)
        roster = read_roster(args.roster, args.roster_key) if args.roster else None
        export = build_export(grades, roster, args.missing or "blank", args.extra_credit)
        title = args.column or grades.assignment.name
        if args.format == "canvas":
            title += f" ({args.canvas_assignment_id})" if args.canvas_assignment_id else ""
            table = canvas_rows(export, title, not args.no_points_possible)
        elif args.format == "moodle":
            table = moodle_rows(export, title, args.moodle_id)
        else:
            table = csv_rows(export, grades)
        write_csv(args.out, table)
    except (ExportError, GradesError, RosterError, AssignmentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scored = sum(1 for r in export.rows if r.score is not None)
    print(f"{args.format}: {args.out} ({len(export.rows)} students, {scored} with a score, of "
          f"{_fmt(export.points_possible)} points{' plus extra credit' if args.extra_credit == 'add' else ''})")
    if export.without_submission:
        print(f"no submission ({args.missing or 'blank'}): {len(export.without_submission)}: "
              f"{_some(export.without_submission)}")
    if export.not_in_roster:
        print(f"warning: graded but not in the roster, left out: {len(export.not_in_roster)}: "
              f"{_some(export.not_in_roster)}", file=sys.stderr)
    if export.written_to_grade:
        print(f"warning: written answers not graded yet (counted 0): {len(export.written_to_grade)}: "
              f"{_some(export.written_to_grade)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
