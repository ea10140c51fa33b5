"""Points recorded in the notebooks' metadata: what the grader reads must add up to the course's 100 + 40."""

import pytest

from instructor.grading.spec import graded_parts
from tests import nbtools

SHARES = {  # regular, extra credit (from the notebook issues)
    "01_autoencoders": (15, 5),
    "02_latent_variables_elbo": (20, 10),
    "03_amortized_inference": (15, 5),
    "04_gradient_estimators": (25, 10),
    "05_vae": (25, 10),
}


def totals(parts):
    regular = sum(p.points for p in parts if not p.extra_credit)
    return regular, sum(p.points for p in parts if p.extra_credit)


@pytest.mark.parametrize("name", sorted(SHARES))
def test_each_notebook_carries_its_share(name):
    parts = graded_parts(nbtools.load(name))  # what the grader, Gradescope and the report read
    assert totals(parts) == SHARES[name]
    for part in parts:
        assert part.points == int(part.points) and part.points > 0, part
        assert part.exercise not in ("", "None"), f"{name}: graded part {part.grade_id} names no exercise"
    ids = [p.grade_id for p in parts]
    assert len(ids) == len(set(ids)), f"{name}: duplicate grade ids {sorted(ids)}"


def test_course_total_is_100_plus_40():
    assert tuple(map(sum, zip(*SHARES.values(), strict=True))) == (100, 40)
    assert {p.stem for p in nbtools.SOLUTIONS.glob("*.ipynb")} == set(SHARES) | {"00_course_tour"}


def test_tour_points_are_practice_only():
    parts = graded_parts(nbtools.load("00_course_tour"))
    assert parts and all(p.kind == "written" or p.grade_id.startswith("ex0_") for p in parts)
    nb = nbtools.load("00_course_tour")
    # Graded: the check cells, and each written answer's question (its answer cell's nbgrader points are the same).
    practice = [c.metadata.get("course", {}).get("practice") for c in nb.cells
                if (c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade"))
                or "points" in c.metadata.get("course", {})]
    assert practice and all(practice)


def test_readme_points_table_is_the_one_the_notebooks_give():
    """README's split of each notebook's points into derive / implement / written is read from the cells' metadata."""
    from instructor import points_table

    assert points_table.table() in (nbtools.ROOT / "README.md").read_text(), (
        "README.md's points table is out of date: paste the output of `python -m instructor.points_table`")


def test_points_table_needs_a_skill_on_every_graded_cell():
    import nbformat

    from instructor import points_table

    cell = nbformat.v4.new_code_cell("check()", metadata={"nbgrader": {"grade": True, "grade_id": "x", "points": 2}})
    with pytest.raises(KeyError, match="'x' has no course.skill"):
        points_table.skill_points(nbformat.v4.new_notebook(cells=[cell]))
    cell.metadata["course"] = {"skill": "derive"}
    written = nbformat.v4.new_markdown_cell("Q", metadata={"tags": ["written-answer"],
                                                           "course": {"points": 3, "extra_credit": True}})
    regular, extra = points_table.skill_points(nbformat.v4.new_notebook(cells=[cell, written]))
    assert regular == {"derive": 2} and extra == 3
