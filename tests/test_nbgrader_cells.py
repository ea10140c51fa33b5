"""solutions/*.ipynb are valid nbgrader source notebooks: the metadata written by `instructor.nbgrader_cells`.

The real nbgrader run (generate_assignment and autograde on all six notebooks) is tests/nbgrader, `make test-nbgrader`.
"""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from instructor import nbgrader_cells
from instructor.grading.spec import graded_parts

PATHS = sorted(nbgrader_cells.SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_solution_notebooks_carry_up_to_date_nbgrader_metadata(path):
    nb = nbformat.read(path, as_version=4)
    assert nbgrader_cells.stale_cells(nb, path.name) == [], "run `python -m instructor.nbgrader_cells --update`"
    for cell in nb.cells:  # nbgrader's own rule: a solution region only in a solution cell
        if nbgrader_cells.has_solution_region(cell):
            assert cell.metadata["nbgrader"]["solution"] is True


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_nbgrader_points_are_the_course_points(path):
    """nbgrader's maximum = the course's regular + extra-credit points, written answers included."""
    nb = nbformat.read(path, as_version=4)
    nbgrader_total = sum(c.metadata["nbgrader"].get("points", 0) for c in nb.cells
                         if c.metadata.get("nbgrader", {}).get("grade"))
    assert nbgrader_total == sum(p.points for p in graded_parts(nb))
    written = {c.metadata["course"]["exercise"]: c.metadata["nbgrader"]["points"] for c in nb.cells
               if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")}
    assert written == {p.exercise: p.points for p in graded_parts(nb) if p.kind == "written"}


def _notebook(*cells):
    nb = new_notebook(cells=list(cells))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i}"
    return nb


def test_answer_cells_get_unique_grade_ids_and_written_answers_their_points():
    answer = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"
    nb = _notebook(new_code_cell(answer, metadata={"course": {"exercise": "3.1"}}),
                   new_code_cell(answer, metadata={"course": {"exercise": "3.1"}}),
                   new_markdown_cell("**Question 3.1.** Why?", metadata={"course": {"exercise": "3.1q", "points": 2},
                                                                         "tags": ["written-answer"]}),
                   new_markdown_cell("### BEGIN SOLUTION\nBecause.\n### END SOLUTION",
                                     metadata={"course": {"exercise": "3.1q"}, "tags": ["written-answer"]}))
    expected = nbgrader_cells.expected_metadata(nb, "t")
    assert [expected[i]["grade_id"] for i in (0, 1, 3)] == ["ex3_1_answer_1", "ex3_1_answer_2", "ex3_1q_written"]
    assert expected[3]["grade"] is True and expected[3]["points"] == 2 and expected[3]["solution"] is True
    assert expected[0]["grade"] is False and 2 not in expected
    stale = nbgrader_cells.stale_cells(nb, "t")
    assert len(stale) == 3 and "cell 1 (c0)" in stale[0]


def test_an_answer_cell_without_exercise_or_a_question_without_points_is_an_error():
    with pytest.raises(ValueError, match="cell 1: an answer cell needs `course.exercise`"):
        nbgrader_cells.expected_metadata(_notebook(new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")), "t")
    written = new_markdown_cell("### BEGIN SOLUTION\nBecause.\n### END SOLUTION", metadata={"course": {"exercise": "1q"}})
    with pytest.raises(ValueError, match="written answer 1q has no question cell"):
        nbgrader_cells.expected_metadata(_notebook(written), "t")
