"""The LMS export on the corpus, checked against the import formats Canvas's and Moodle's importers read.

The checkers below restate the importers' rules (see instructor/export.py's docstring for the sources): Canvas's
`lib/gradebook_importer.rb` (header Student, ID, [SIS User ID,] [SIS Login ID,] Section, then assignment columns
"title (id)"; a row whose first cell holds "Points Possible"; a student found by ID, SIS User ID, SIS Login ID or
name) and Moodle's `grade/import/csv/classes/load_data.php` (a user column mapped to id/idnumber/email/username;
grades numbers with a decimal point, blank or "-" for none, at most the grade-point maximum, 100 by default).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from instructor import export
from instructor.grading.gradeset import load_grades
from instructor.grading.roster import RosterError, read_roster
from tests.classreport.conftest import NB02, NB05

ROSTER = [  # student (submission id), name, email, canvas_id, sis_user_id, sis_login_id, section
    ("sol-a", "Able, Sol", "sol.a@example.edu", "101", "S101", "sola", "A"),
    ("sigma-a", "Sig, Ma", "sigma.a@example.edu", "102", "S102", "sigmaa", "A"),
    ("blank-a", "Blank, A", "blank.a@example.edu", "103", "S103", "blanka", "B"),
    ("gone-a", "Gone, A", "gone.a@example.edu", "104", "S104", "gonea", "B"),  # folder without a notebook
    ("dropped", "Dropped, D", "d@example.edu", "105", "S105", "dropped", "B"),  # never submitted
]
COLUMNS = ["student", "name", "email", "canvas_id", "sis_user_id", "sis_login_id", "section"]


def _roster(path: Path, rows=ROSTER, columns=COLUMNS) -> Path:
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([columns, *rows])
    return path


def _read(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def check_canvas(rows: list[list[str]]) -> dict[str, str]:
    """Canvas's importer rules; returns {SIS Login ID: grade} and the assignment's points possible under ''."""
    header = rows[0]
    assert re.search("Student", header[0]) and re.search("ID", header[1])
    if re.search(r"SIS\s+Login\s+ID", header[2]):
        student_columns = 4
    else:
        assert re.search(r"SIS\s+User\s+ID", header[2]) and re.search(r"SIS\s+Login\s+ID", header[3])
        student_columns = 5
    assert re.search("Section", header[student_columns - 1])
    assert len(header) == student_columns + 1 and header[-1]
    grades = {}
    for row in rows[1:]:
        assert len(row) == len(header)
        if re.search("Points Possible", row[0]):
            grades[""] = row[-1]
            continue
        assert row[1].isdigit() or row[student_columns - 2] or row[0], "the importer could not find the student"
        assert row[-1] == "" or re.fullmatch(r"-?\d+(\.\d+)?", row[-1])
        grades[row[student_columns - 2]] = row[-1]
    return grades


def check_moodle(rows: list[list[str]], identifier: str) -> dict[str, str]:
    """Moodle's importer rules; returns {identifier: grade}."""
    assert rows[0][0] == identifier and identifier in ("id", "idnumber", "email", "username") and len(rows[0]) == 2
    grades = {}
    for row in rows[1:]:
        assert len(row) == 2 and row[0], "a blank user field is skipped by Moodle"
        assert row[1] in ("", "-") or 0 <= float(row[1]) <= 100
        grades[row[0]] = row[1]
    return grades


def test_canvas_file_follows_canvas_import_format(graded, tmp_path, capsys):
    out = tmp_path / "canvas.csv"
    assert export.main([str(graded[NB05]), "--format", "canvas", "--roster", str(_roster(tmp_path / "r.csv")),
                        "--missing", "zero", "--canvas-assignment-id", "4242", "--out", str(out)]) == 0
    rows = _read(out)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "05_vae (4242)"]
    assert rows[1] == ["    Points Possible", "", "", "", "", "25"]
    grades = check_canvas(rows)
    # sol-a: 22 auto-graded + 10 extra (5.3q, 3 points, not graded yet); sigma-a lost 5.1 (4 points); blank-a nothing;
    # gone-a and dropped: --missing zero
    assert grades == {"": "25", "sola": "32", "sigmaa": "28", "blanka": "0", "gonea": "0", "dropped": "0"}
    assert rows[2][:5] == ["Able, Sol", "101", "S101", "sola", "A"]
    said = capsys.readouterr()
    assert "no submission (zero): 2: gone-a, dropped" in said.out
    assert "graded but not in the roster, left out: 15:" in said.err


def test_canvas_without_points_possible_row_and_extra_credit_left_out(graded, tmp_path):
    out = tmp_path / "canvas.csv"
    assert export.main([str(graded[NB05]), "--format", "canvas", "--roster", str(_roster(tmp_path / "r.csv")),
                        "--missing", "blank", "--no-points-possible", "--extra-credit", "omit", "--column",
                        "VAE homework", "--out", str(out)]) == 0
    rows = _read(out)
    assert rows[0][-1] == "VAE homework" and "Points Possible" not in rows[1][0]
    assert check_canvas(rows) == {"sola": "22", "sigmaa": "18", "blanka": "0", "gonea": "", "dropped": ""}


def test_moodle_file_follows_moodle_import_format(graded, tmp_path):
    out = tmp_path / "moodle.csv"
    roster = _roster(tmp_path / "r.csv")
    assert export.main([str(graded[NB05]), "--format", "moodle", "--roster", str(roster), "--missing", "blank",
                        "--out", str(out)]) == 0
    assert check_moodle(_read(out), "email") == {"sol.a@example.edu": "32", "sigma.a@example.edu": "28",
                                                 "blank.a@example.edu": "0", "gone.a@example.edu": "",
                                                 "d@example.edu": ""}
    rows = [(*r[:2], r[1].lower(), *r[2:]) for r in ROSTER]  # a username column
    assert export.main([str(graded[NB05]), "--format", "moodle", "--roster",
                        str(_roster(tmp_path / "u.csv", rows, [*COLUMNS[:2], "username", *COLUMNS[2:]])),
                        "--missing", "zero", "--moodle-id", "username", "--out", str(out)]) == 0
    assert check_moodle(_read(out), "username")["dropped, d"] == "0"


def test_merged_written_answers_count_in_the_export(fresh, tmp_path):
    from instructor import grade

    folder = fresh(NB02)
    manual = folder / "manual_grades.csv"
    rows = _read(manual)
    for row in rows[1:]:
        if row[0] == "sol-a":
            row[3] = "2"  # 2.1q, 2.4q, 2.5q (extra), 2.6q (extra), 2 points each: full marks
    with open(manual, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    assert grade.main(["merge", str(folder), str(manual)]) == 0
    out = tmp_path / "plain.csv"
    assert export.main([str(folder), "--format", "csv", "--out", str(out)]) == 0
    table = {r[0]: r for r in _read(out)}
    assert table["student"] == export.CSV_COLUMNS
    assert table["sol-a"][3:8] == ["30", "20", "20", "10", ""]  # 16 + 2·2 regular, 6 + 2·2 extra; nothing to grade
    assert table["sol-b"][3:8] == ["22", "20", "16", "6", "2.1q 2.4q 2.5q 2.6q"]
    assert table["gone-a"][2:4] == ["missing", ""]


def test_a_roster_that_matches_no_submission_shows_both_sides(graded, tmp_path, capsys):
    roster = _roster(tmp_path / "r.csv", [("s1001", "A, B", "a@x", "1", "", "", "")])
    assert export.main([str(graded[NB05]), "--format", "canvas", "--roster", str(roster), "--missing", "zero",
                        "--out", str(tmp_path / "c.csv")]) == 2
    err = capsys.readouterr().err
    assert "roster's ids (s1001)" in err and "submissions' ids (blank-a, blank-b, crash-a" in err and "--roster-key" in err
    assert not (tmp_path / "c.csv").exists()


def test_canvas_needs_an_lms_id_and_moodle_its_identifier(graded, tmp_path):
    grades = load_grades(graded[NB05])
    roster = read_roster(_roster(tmp_path / "r.csv", [("sol-a", "Able, Sol", "", "", "", "", "A")]))
    result = export.build_export(grades, roster, "zero")
    with pytest.raises(export.ExportError, match="ID, SIS User ID or SIS Login ID: the roster has none for sol-a"):
        export.canvas_rows(result, "05_vae")
    with pytest.raises(export.ExportError, match="Moodle matches students by email: the roster has none for sol-a"):
        export.moodle_rows(result, "05_vae")


def test_a_canvas_gradebook_export_works_as_the_roster(graded, tmp_path):
    path = tmp_path / "canvas-export.csv"
    _roster(path, [("    Points Possible", "", "", "", "", "25"),
                   ("Able, Sol", "101", "S101", "sol-a", "A", "")],
            ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "05_vae (4242)"])
    roster = read_roster(path)
    assert [(e.student, e.get("name"), e.get("canvas_id")) for e in roster] == [("sol-a", "Able, Sol", "101")]
    rows = export.canvas_rows(export.build_export(load_grades(graded[NB05]), roster, "zero"), "05_vae (4242)")
    assert check_canvas(rows) == {"": "25", "sol-a": "32"}


def test_bad_rosters_and_options_are_refused(graded, tmp_path, capsys):
    with pytest.raises(RosterError, match="no column 'student'"):
        read_roster(_roster(tmp_path / "a.csv", [("x",)], ["login"]))
    with pytest.raises(RosterError, match="line 3: sol-a is listed twice"):
        read_roster(_roster(tmp_path / "b.csv", [ROSTER[0], ROSTER[0]]))
    assert [e.student for e in read_roster(_roster(tmp_path / "c.csv", [("x", "s1")], ["student", "login"]),
                                           key="login")] == ["s1"]
    out = str(tmp_path / "o.csv")
    assert export.main([str(graded[NB02]), "--format", "moodle", "--out", out]) == 2
    assert export.main([str(graded[NB02]), "--format", "csv", "--roster", str(tmp_path / "c.csv"), "--out", out]) == 2
    err = capsys.readouterr().err
    assert "--format moodle needs --roster" in err and "--missing zero or --missing blank" in err
