"""Helpers for tests that run a notebook's check cells against right and wrong answers, without a kernel.

A check cell is found by the `grade_id` in its nbgrader metadata. Its source (hidden tests included) is run with
`exec` in a namespace the test builds, e.g. with a deliberately wrong implementation of the exercise, and the test
asserts that the check fails with a message naming the mistake.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"


def load(name: str) -> nbformat.NotebookNode:
    """The instructor notebook solutions/<name> (name with or without .ipynb)."""
    return nbformat.read(SOLUTIONS / (name if name.endswith(".ipynb") else f"{name}.ipynb"), as_version=4)


def cell_by_grade_id(nb: nbformat.NotebookNode, grade_id: str) -> str:
    """Source of the code cell whose nbgrader grade_id is `grade_id`."""
    for cell in nb.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            return cell.source
    raise KeyError(f"no cell with grade_id {grade_id!r}")


def cell_defining(nb: nbformat.NotebookNode, name: str) -> str:
    """Source of the code cell that defines `def name(` or `class name(`."""
    pattern = re.compile(rf"^(def|class) {re.escape(name)}\b", re.M)
    for cell in nb.cells:
        if cell.cell_type == "code" and pattern.search(cell.source):
            return cell.source
    raise KeyError(f"no cell defines {name!r}")


def run_source(source: str, namespace: dict) -> BaseException | None:
    """exec `source` (IPython magics and plt.show() lines dropped) in `namespace`; return the exception raised, if any."""
    lines = [line for line in source.split("\n") if not line.lstrip().startswith(("%", "!"))]
    try:
        exec(compile("\n".join(lines), "<notebook cell>", "exec"), namespace)
    except BaseException as exc:  # noqa: BLE001 - the test inspects whatever was raised
        return exc
    return None
