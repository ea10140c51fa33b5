"""Grades folders the report, the export and merge refuse, with the reason: missing, partial, older assignment."""

from __future__ import annotations

import json

import pytest

from instructor import export, grade
from instructor.classreport.build import main as report_main
from instructor.grading.gradeset import GradesError, load_grades
from tests.classreport.conftest import NB02, NB05


def _edit_json(folder, change) -> None:
    path = folder / "grades.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_a_folder_that_does_not_exist_or_holds_no_grades(tmp_path):
    with pytest.raises(GradesError, match="does not exist: grade first"):
        load_grades(tmp_path / "grades" / "05")
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(GradesError, match=r"not a grading folder: no grades.json \(it holds: notes.txt\)"):
        load_grades(tmp_path)


def test_an_interrupted_grading_is_refused(fresh):
    folder = fresh(NB05)
    (folder / "grades.json").write_text('{"assignment": "05_vae", "students": [{"student": "sol-a"')
    with pytest.raises(GradesError, match="not valid JSON .* interrupted"):
        load_grades(folder)
    (folder / "grades.json").unlink()
    with pytest.raises(GradesError, match="holds gradebook.csv but no grades.json"):
        load_grades(folder)


def test_a_gradebook_listing_other_students_names_both_sides(fresh):
    folder = fresh(NB05)
    _edit_json(folder, lambda d: d["students"].pop(0))  # sol-a, the first graded
    lines = (folder / "gradebook.csv").read_text().splitlines()
    (folder / "gradebook.csv").write_text("\n".join([*lines, "zoe,ok"]) + "\n")
    with pytest.raises(GradesError, match=r"only in gradebook.csv: sol-a, zoe; only in grades.json: -"):
        load_grades(folder)


def test_a_partial_student_entry_is_refused(fresh):
    folder = fresh(NB02)
    _edit_json(folder, lambda d: d["students"][1].pop("verdicts"))
    with pytest.raises(GradesError, match=r"student #2 \(sol-b\) lacks verdicts: the file is partial"):
        load_grades(folder)


def test_grades_of_an_older_version_of_the_assignment_are_refused_with_the_change(fresh, capsys):
    folder = fresh(NB05)

    def older(data):  # the trained-VAE part was worth 3 points then (2 now), and 5.1 had no hidden test
        parts = data["parts_fingerprint"]["parts"]
        parts[:] = [p for p in parts if p[0] != "ex5_1_hidden"]
        next(p for p in parts if p[0] == "ex5_3_trained")[2] = 3.0
        data["parts_fingerprint"]["sha256"] = "0" * 64

    _edit_json(folder, older)
    with pytest.raises(GradesError, match=r"older version of 05_vae.*ex5_1_hidden added; ex5_3_trained was 3 point"):
        load_grades(folder)
    assert report_main([str(folder)]) == 2 and not (folder / "report.html").exists()
    assert export.main([str(folder), "--format", "csv", "--out", str(folder / "x.csv")]) == 2
    assert grade.main(["merge", str(folder), str(folder / "manual_grades.csv")]) == 2
    assert capsys.readouterr().err.count("older version of 05_vae") == 3


def test_grades_without_a_fingerprint_are_refused(fresh):
    folder = fresh(NB05)
    _edit_json(folder, lambda d: d.pop("parts_fingerprint"))
    with pytest.raises(GradesError, match="does not record the assignment's parts and points"):
        load_grades(folder)


def test_a_missing_feedback_file_is_a_warning_on_the_page(fresh):
    folder = fresh(NB02)
    (folder / "feedback" / "em-a.md").unlink()
    grades = load_grades(folder)
    assert grades.warnings == [f"no feedback file for 1 student(s) in {folder / 'feedback'}"]
