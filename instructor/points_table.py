"""The README's points table: for each notebook, its regular points split by what they ask of the student
(derive a formula or estimator, implement one that is given, or answer in writing) and its extra credit.

    python -m instructor.points_table     # prints the table that README.md must contain

Each graded code cell says what it asks in its metadata, ``"course": {"skill": "derive" | "implement"}``; written
answers (markdown cells tagged ``written-answer``) count as "written". `tests/test_points.py` checks the README.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SKILLS = ("derive", "implement", "written")
HEADER = ("| notebook | derive | implement | written | regular | extra credit |\n"
          "|---|---|---|---|---|---|")


def skill_points(nb: nbformat.NotebookNode) -> tuple[Counter, float]:
    """(regular points per skill, extra-credit points) of a notebook; KeyError names a graded cell with no skill."""
    regular: Counter = Counter()
    extra = 0.0
    for cell in nb.cells:
        meta = cell.get("metadata", {})
        course, grade = meta.get("course", {}), meta.get("nbgrader", {})
        if cell.cell_type == "code" and grade.get("grade"):
            points, skill = float(grade.get("points", 0)), course.get("skill")
            if skill not in ("derive", "implement"):
                raise KeyError(f"graded cell {grade.get('grade_id')!r} has no course.skill (derive or implement)")
        elif cell.cell_type == "markdown" and "written-answer" in meta.get("tags", []) and course.get("points"):
            points, skill = float(course["points"]), "written"
        else:
            continue
        if course.get("extra_credit"):
            extra += points
        else:
            regular[skill] += points
    return regular, extra


def table(solutions: Path = ROOT / "solutions") -> str:
    """The markdown table for notebooks 01-05 (the tour's points are practice) and their total."""
    rows, total, total_extra = [HEADER], Counter(), 0.0
    for path in sorted(solutions.glob("0[1-9]_*.ipynb")):
        regular, extra = skill_points(nbformat.read(path, as_version=4))
        total.update(regular)
        total_extra += extra
        rows.append(_row(f"`{path.stem}`", regular, extra))
    rows.append(_row("**all**", total, total_extra))
    return "\n".join(rows)


def _row(name: str, regular: Counter, extra: float) -> str:
    cells = [f"{regular[s]:g}" for s in SKILLS] + [f"{sum(regular.values()):g}", f"{extra:g}"]
    return f"| {name} | " + " | ".join(cells) + " |"


if __name__ == "__main__":
    print(table())
