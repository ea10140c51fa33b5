"""The class report's numbers on the corpus: mistakes per exercise, score distributions, statuses, written answers."""

from __future__ import annotations

import csv

from instructor import grade
from instructor.classreport import stats
from instructor.classreport.figures import bar_counts
from instructor.classreport.page import PER_STUDENT_MARK
from instructor.grading.gradeset import load_grades
from tests.classreport.conftest import NB02, NB05
from tests.classreport.corpus import EXPECTED_02, EXPECTED_05


def _ranked(folder) -> dict[str, list[tuple[str, int]]]:
    return {e: [(m.diagnosis, m.students) for m in found] for e, found in stats.mistakes(load_grades(folder)).items()}


def test_mistakes_of_notebook_05_are_counted_per_student_and_ranked(graded):
    assert _ranked(graded[NB05]) == EXPECTED_05


def test_mistakes_of_notebook_02_are_counted_per_student_and_ranked(graded):
    assert _ranked(graded[NB02]) == EXPECTED_02


def test_a_mistake_lists_its_parts_and_undiagnosed_failures_keep_an_example(graded):
    found = {m.diagnosis: m for m in stats.mistakes(load_grades(graded[NB05]))["5.2"]}
    assert found["mean_over_pixels"].grade_ids == ("ex5_2_hidden", "ex5_2_visible")
    assert "sum over pixels" in found["mean_over_pixels"].example
    assert found["other"].example.startswith("✗ not graded: the kernel died")


def test_score_distributions_keep_regular_and_extra_credit_apart(graded):
    dists = {d.label: d for d in stats.score_distributions(load_grades(graded[NB05]))}
    total, extra = dists["Total"], dists["Extra credit total"]
    assert (total.maximum, total.extra_credit, extra.maximum, extra.extra_credit) == (25, False, 10, True)
    # 22 auto-graded points + 3 for the written 5.3q, not graded yet (counted 0): the solutions have 22, none full marks
    assert len(total.scores) == 19 and total.full_marks == 0 and sorted(total.scores)[-3:] == [22.0, 22.0, 22.0]
    assert dists["Exercise 5.6"].extra_credit and not dists["Exercise 5.1"].extra_credit
    # 5.1 (4 points): solutions, half-*, pixels-*, crash-a, slow-a pass; sigma-b lost only the hidden test (2 points);
    # blank-*, sigma-a, sigma-c fail both, mem-a, junk-a, gone-a have no verdicts: 0
    assert sorted(dists["Exercise 5.1"].scores).count(4.0) == 11 and 2.0 in dists["Exercise 5.1"].scores
    values, counts = bar_counts(dists["Exercise 5.1"])
    assert values == [0, 1, 2, 3, 4] and counts == [7, 0, 1, 0, 11]


def test_statuses_and_grading_time(graded):
    grades = load_grades(graded[NB05])
    assert stats.statuses(grades) == {"ok": 14, "timeout": 1, "memory": 1, "crashed": 1, "invalid": 1, "missing": 1}
    timing = stats.grading_time(grades)
    assert len(timing.seconds) == 18 and timing.longest == 1200.0


def test_written_answers_to_grade_per_question(graded):
    pending = {p.exercise: p for p in stats.written_pending(load_grades(graded[NB02]))}
    assert list(pending) == ["2.1q", "2.4q", "2.5q", "2.6q"]
    # 9 ran and answered 2.1q and 2.4q; gone-a submitted nothing; 2.5q was left as the placeholder, 2.6q empty
    assert (pending["2.1q"].answered, pending["2.1q"].unanswered, pending["2.1q"].graded) == (9, 1, 0)
    assert (pending["2.4q"].answered, pending["2.4q"].unanswered) == (9, 1) and not pending["2.4q"].extra_credit
    assert (pending["2.5q"].answered, pending["2.5q"].unanswered) == (0, 10) and pending["2.5q"].extra_credit


def test_merge_of_manual_grades_reaches_grades_json_and_rebuilds_the_report(fresh):
    folder = fresh(NB02)
    report = folder / "report.html"
    report.write_text(f"an earlier report, with the per-student table {PER_STUDENT_MARK}")
    with open(folder / "manual_grades.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if row["exercise"] == "2.1q" and row["student"] in ("sol-a", "sigma-a"):
            row["points"] = "1"
    with open(folder / "manual_grades.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert grade.main(["merge", str(folder), str(folder / "manual_grades.csv")]) == 0
    grades = load_grades(folder)
    pending = {p.exercise: p for p in stats.written_pending(grades)}
    assert pending["2.1q"].graded == 2 and pending["2.1q"].answered == 7
    sol = next(s for s in grades.students if s.student == "sol-a")
    assert sol.manual == {"2.1q": 1.0} and grades.total(sol, False) == 17.0  # 16 auto-graded + 1 by hand
    after = report.read_text()
    assert after.startswith("<!DOCTYPE html>") and "<td class=\"num\">7</td>" in after  # 7 answered, to grade
    assert PER_STUDENT_MARK in after and "<th scope=\"row\">sol-a</th>" in after  # the option was kept
