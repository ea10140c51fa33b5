"""The grading command's input handling and reports, without running notebooks (fast)."""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from instructor import grade
from instructor.grading import report, sandbox
from instructor.grading.grader import Outcome
from instructor.grading.judge import Verdict
from instructor.grading.spec import AssignmentError, load_assignment, resolve_name

ROOT = Path(__file__).resolve().parent.parent.parent
NB = "00_course_tour"
SOLUTION = ROOT / "solutions" / f"{NB}.ipynb"


def test_assignment_names_resolve_and_unknown_ones_are_listed():
    assert resolve_name("00") == NB and resolve_name(f"{NB}.ipynb") == NB
    with pytest.raises(AssignmentError, match="choose one of: 00_course_tour"):
        resolve_name("07")


def test_points_come_from_the_solution_metadata():
    assignment = load_assignment(NB)
    assert [p.grade_id for p in assignment.checks] == ["ex0_1_visible", "ex0_1_hidden", "ex0_2_extra"]
    assert assignment.max_points(False) == 3 and assignment.max_points(True) == 1
    assert [p.exercise for p in assignment.written] == ["0.1q"]


def test_discover_folder_layout_and_reject_others(tmp_path):
    (tmp_path / "alice").mkdir()
    shutil.copy(SOLUTION, tmp_path / "alice" / f"{NB}.ipynb")
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "homework.ipynb").write_text("{}")
    (tmp_path / f"carol_{NB}.ipynb").write_text("{}")
    (tmp_path / "bad name!").mkdir()
    found, problems = grade.discover(tmp_path, NB, tmp_path / "scratch")
    assert found == {"alice": tmp_path / "alice" / f"{NB}.ipynb", "bob": None}
    text = "\n".join(problems)
    assert f"bob: no {NB}.ipynb (found homework.ipynb)" in text
    assert f"skipped carol_{NB}.ipynb: submissions must be <student>/{NB}.ipynb" in text
    assert "'bad name!'" in text


def test_discover_zip_of_folders_and_per_student_zips_safely(tmp_path):
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(SOLUTION, f"course-export/alice/{NB}.ipynb")
        z.writestr(f"course-export/../../escaped/{NB}.ipynb", "{}")
        z.writestr("course-export/readme.txt", "not a notebook")
    found, _ = grade.discover(archive, NB, tmp_path / "scratch")
    assert list(found) == ["alice"] and found["alice"].read_bytes() == SOLUTION.read_bytes()
    assert not (tmp_path / "escaped").exists()
    folder = tmp_path / "subs"
    folder.mkdir()
    with zipfile.ZipFile(folder / "dave.zip", "w") as z:
        z.write(SOLUTION, f"dave/{NB}.ipynb")
    (folder / "erin.zip").write_text("not a zip")
    found, problems = grade.discover(folder, NB, tmp_path / "scratch2")
    assert found["dave"].read_bytes() == SOLUTION.read_bytes() and found["erin"] is None
    assert any("erin.zip is not a valid zip file" in p for p in problems)


def test_invalid_notebooks_get_status_invalid_without_running(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "run_isolated", lambda *a, **k: pytest.fail("an invalid notebook must not run"))
    from instructor.grading.grader import grade_notebook

    for content in (b"garbage", b'{"cells": 3}', b"\xff\xfe"):
        path = tmp_path / "nb.ipynb"
        path.write_bytes(content)
        outcome = grade_notebook(load_assignment(NB), path, "x", {}, sandbox.Limits())
        assert outcome.status == "invalid" and "not a valid Jupyter notebook" in outcome.note


def test_refuses_weak_isolation_unless_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "check_isolation", lambda: "unshare: operation not permitted")
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    shutil.copy(SOLUTION, tmp_path / "subs" / "alice" / f"{NB}.ipynb")
    with pytest.raises(SystemExit, match="--allow-weak-isolation"):
        grade.main(["run", NB, str(tmp_path / "subs"), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_existing_gradebook_is_not_overwritten_and_out_not_inside_submissions(tmp_path, capsys):
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "gradebook.csv").write_text("precious")
    assert grade.main(["run", NB, str(tmp_path / "subs"), "--out", str(tmp_path / "out")]) == 2
    assert "already holds a gradebook" in capsys.readouterr().err
    assert (tmp_path / "out" / "gradebook.csv").read_text() == "precious"
    assert grade.main(["run", NB, str(tmp_path / "subs"), "--out", str(tmp_path / "subs" / "grades")]) == 2
    assert "must not be inside the submissions folder" in capsys.readouterr().err


def test_missing_submissions_folder_says_so(tmp_path, capsys):
    assert grade.main(["run", NB, str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err


def _outcomes() -> list[Outcome]:
    assignment = load_assignment(NB)
    right = {p.grade_id: Verdict(True, "✓ fine") for p in assignment.checks}
    partial = dict(right, ex0_2_extra=Verdict(False, "✗ nearest_mean_predict: agrees on only 10%"))
    return [Outcome("alice", "ok", right, 9.5), Outcome("bob", "ok", partial, 8.0),
            Outcome("carol", "timeout", {}, 1200.0, "the notebook ran past the total time limit")]


def test_gradebook_feedback_and_manual_merge(tmp_path, capsys):
    assignment = load_assignment(NB)
    report.write_reports(tmp_path, assignment, _outcomes(), {"alice": {"0.1q": "Because means blur."}}, {})
    rows = list(csv.reader((tmp_path / "gradebook.csv").open()))
    assert rows[0][:7] == ["student", "status", "ex 0.1", "ex 0.1q", "ex 0.2 (extra)", "total (of 3)",
                           "extra credit (of 1)"]
    assert rows[1][:8] == ["alice", "ok", "2", "", "1", "2", "1", "to grade: 0.1q"]
    assert rows[2][:7] == ["bob", "ok", "2", "", "0", "2", "0"]
    assert rows[3][1] == "timeout"
    feedback = (tmp_path / "feedback" / "bob.md").read_text()
    assert "| 0.2 (extra) | ex0_2_extra | 0 / 1 | ✗ nearest_mean_predict: agrees on only 10% |" in feedback
    assert "to be graded by hand" in feedback
    assert "Because means blur." in (tmp_path / "feedback" / "alice.md").read_text()
    template = list(csv.DictReader((tmp_path / "manual_grades.csv").open()))
    assert [(r["student"], r["exercise"], r["max_points"]) for r in template] == [
        ("alice", "0.1q", "1"), ("bob", "0.1q", "1"), ("carol", "0.1q", "1")]
    manual = tmp_path / "manual_grades.csv"
    manual.write_text("student,exercise,max_points,points,comment\nalice,0.1q,1,1,good\nbob,0.1q,1,,\n")
    assert grade.main(["merge", str(tmp_path), str(manual)]) == 0
    rows = list(csv.reader((tmp_path / "gradebook.csv").open()))
    assert rows[1][:8] == ["alice", "ok", "2", "1", "1", "3", "1", "graded"]
    assert "1 / 1" in (tmp_path / "feedback" / "alice.md").read_text()
    assert manual.read_text().startswith("student,exercise")  # the TA's file is never rewritten


@pytest.mark.parametrize("row,says", [("alice,9.9q,1,1,", "not a written answer"),
                                      ("alice,0.1q,1,two,", "is not a number"),
                                      ("alice,0.1q,1,5,", "which is worth 1")])
def test_manual_scores_are_validated(tmp_path, row, says):
    path = tmp_path / "manual.csv"
    path.write_text("student,exercise,max_points,points,comment\n" + row + "\n")
    with pytest.raises(ValueError, match=says):
        report.read_manual(path, load_assignment(NB))


def test_summary_counts_statuses_and_exercise_statistics():
    text = report.summary(load_assignment(NB), _outcomes(), 12.3, 2)
    assert "3 submission(s) graded in 12.3 s with 2 worker(s)" in text
    assert "status: ok 2, timeout 1" in text
    assert "ex   0.1: mean  1.33  median  2.00  of 2" in text


def test_grades_json_round_trips():
    assignment = load_assignment(NB)
    data = json.loads(json.dumps(report.outcomes_to_json(assignment, _outcomes(), {})))
    outcomes, _ = report.outcomes_from_json(data)
    assert [o.verdicts for o in outcomes] == [o.verdicts for o in _outcomes()]
