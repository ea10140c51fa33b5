"""Keep solutions/*.ipynb valid nbgrader source notebooks: nbgrader's cell metadata derived from the course's.

    python -m instructor.nbgrader_cells            # report the cells whose nbgrader metadata is missing or stale
    python -m instructor.nbgrader_cells --update   # write it into solutions/*.ipynb (metadata only; sources untouched)

The course's own metadata (`course.exercise`, `course.points`, `course.extra_credit`, the tags `check` and
`written-answer`) is the source; this module writes what nbgrader (0.9, default settings) needs beside it:

* a code cell with a `### BEGIN SOLUTION` region is an *autograded answer*: ``solution: true, grade: false`` with a
  grade id ``ex<exercise>_answer`` (``_1``, ``_2``, ... when an exercise has several answer cells);
* a markdown cell with a `### BEGIN SOLUTION` region (a written answer) is a *manually graded answer*:
  ``solution: true, grade: true`` with the points of its question (the `written-answer` cell before it, which holds
  ``course.points``) and a grade id ``ex<exercise>_written``, e.g. ``ex2_5q_written``;
* check cells already carry nbgrader's *autograder tests* metadata (``grade: true, locked: true``, their points);
  they are left as they are.

Extra credit: nbgrader has no such flag, so the points of extra-credit checks and written answers count in nbgrader's
maximum score. README ("Grading with nbgrader") says what an nbgrader course does about it.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import nbformat

from instructor.release import BEGIN_SOLUTION, MARKER, render

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
SCHEMA_VERSION = 3  # nbgrader's cell metadata schema (nbgrader 0.6 and later)


def has_solution_region(cell: nbformat.NotebookNode) -> bool:
    """True if the cell has a `### BEGIN SOLUTION` line (see instructor.release for the markers)."""
    return any((m := MARKER.match(line)) and m.group(2) == BEGIN_SOLUTION for line in cell.source.split("\n"))


def _exercise_id(exercise: str) -> str:
    """'2.5q' -> 'ex2_5q'."""
    return "ex" + exercise.replace(".", "_")


def expected_metadata(nb: nbformat.NotebookNode, name: str) -> dict[int, dict]:
    """{cell index: the nbgrader metadata it must carry} for every answer cell of a solution notebook.

    Raises ValueError when an answer cell has no `course.exercise`, or a written answer no question with points.
    """
    answers = [i for i, cell in enumerate(nb.cells) if cell.cell_type in ("code", "markdown") and has_solution_region(cell)]
    per_exercise = Counter(nb.cells[i].metadata.get("course", {}).get("exercise") for i in answers
                           if nb.cells[i].cell_type == "code")
    seen: Counter[str] = Counter()
    expected = {}
    for i in answers:
        cell = nb.cells[i]
        exercise = cell.metadata.get("course", {}).get("exercise")
        if not exercise:
            raise ValueError(f"{name}, cell {i + 1}: an answer cell needs `course.exercise` in its metadata")
        if cell.cell_type == "code":
            seen[exercise] += 1
            suffix = f"_{seen[exercise]}" if per_exercise[exercise] > 1 else ""
            expected[i] = {"grade": False, "grade_id": f"{_exercise_id(exercise)}_answer{suffix}", "locked": False,
                           "schema_version": SCHEMA_VERSION, "solution": True}
        else:
            points = question_points(nb, i, name)
            expected[i] = {"grade": True, "grade_id": f"{_exercise_id(exercise)}_written", "locked": False,
                           "points": points, "schema_version": SCHEMA_VERSION, "solution": True}
    return expected


def question_points(nb: nbformat.NotebookNode, answer: int, name: str) -> float | int:
    """The points of the written answer in cell `answer`: `course.points` of its question, the cell before it."""
    exercise = nb.cells[answer].metadata["course"]["exercise"]
    for cell in reversed(nb.cells[:answer]):
        course = cell.metadata.get("course", {})
        if course.get("exercise") == exercise and "points" in course:
            return course["points"]
    raise ValueError(f"{name}, cell {answer + 1}: written answer {exercise} has no question cell with `course.points`")


def stale_cells(nb: nbformat.NotebookNode, name: str) -> list[str]:
    """Descriptions of the cells whose nbgrader metadata differs from what it must be (empty when up to date)."""
    problems = [f"{name}, cell {i + 1} ({nb.cells[i].get('id')}): nbgrader metadata should be {want}"
                for i, want in expected_metadata(nb, name).items() if nb.cells[i].metadata.get("nbgrader") != want]
    grade_ids = Counter(c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "grade_id" in c.metadata.get("nbgrader", {}))
    problems += [f"{name}: grade id {gid!r} is used {n} times" for gid, n in grade_ids.items() if n > 1]
    cell_ids = Counter(c.get("id") for c in nb.cells)
    problems += [f"{name}: cell id {cid!r} is used {n} times" for cid, n in cell_ids.items() if n > 1]
    return problems


def update_notebook(path: Path) -> bool:
    """Write the expected nbgrader metadata into one notebook (metadata only); True if the file changed."""
    nb = nbformat.read(path, as_version=4)
    for i, want in expected_metadata(nb, path.name).items():
        nb.cells[i].metadata["nbgrader"] = want
    text = render(nb)
    if path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1: stale metadata found and not updated)."""
    parser = argparse.ArgumentParser(prog="python -m instructor.nbgrader_cells", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update", action="store_true", help="write the nbgrader metadata into solutions/*.ipynb")
    args = parser.parse_args(argv)
    paths = sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))
    if args.update:
        for path in paths:
            if update_notebook(path):
                print(f"updated {path.relative_to(ROOT)}")
        print("now run `python -m instructor.release` to regenerate notebooks/")
    problems = [p for path in paths for p in stale_cells(nbformat.read(path, as_version=4), path.name)]
    print("\n".join(problems) if problems else "nbgrader metadata is up to date.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
