"""What a student reads in a notebook: every measured number in the prose is printed by a cell of the same notebook,
code fits a laptop-width cell, and check cells are a few lines (their helpers live in `utils`)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
STUDENT = sorted((ROOT / "notebooks").glob("*.ipynb"))

MAX_CODE_LINE = 100
MAX_CHECK_CELL_LINES = 10
# A decimal in prose, e.g. 118.1, 0.47, 1,234.5 (thousands commas allowed).
_DECIMAL = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+\.\d+|\d+\.\d+)(?![\d.]*\d)")
# Numbers that name things, not measurements: "Exercise 5.2", "Question 1.4", "Extra credit 0.2", "sections 9.2".
_NAMING = re.compile(r"(Exercise|Check|Question|credit|exercises?|checks?|sections?|§|Q|and|–|-)\s*$")
_ANY_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _outputs_text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            for kind, value in output.get("data", {}).items():
                if kind in ("text/plain", "text/markdown", "text/html"):
                    parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)


def _numbers(text: str) -> list[float]:
    return [float(x) for x in _ANY_NUMBER.findall(text.replace(",", ""))]


def _cited(cell: nbformat.NotebookNode) -> set[str]:
    """Numbers a markdown cell quotes from a named source (cell metadata course.cited, e.g. ["105.6"])."""
    return set(cell.get("metadata", {}).get("course", {}).get("cited", []))


def unprinted_numbers(nb: nbformat.NotebookNode) -> list[tuple[int, str, str]]:
    """(cell index, number, context) for each decimal in the prose that no output prints (at the prose's precision)
    and no code cell sets, other than numbers naming exercises or sections and cited ones."""
    printed = _numbers(_outputs_text(nb))
    set_in_code = _numbers("\n".join(c.source for c in nb.cells if c.cell_type == "code"))
    missing = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for match in _DECIMAL.finditer(cell.source):
            text = match.group(1)
            before = cell.source[max(0, match.start() - 16):match.start()]
            if _NAMING.search(before) or text in _cited(cell):
                continue
            value, places = float(text.replace(",", "")), len(text.split(".")[1])
            if any(abs(round(abs(x), places) - value) < 10 ** -(places + 3) for x in printed + set_in_code):
                continue
            context = cell.source[max(0, match.start() - 40):match.end() + 15].replace("\n", " ")
            missing.append((index, text, context))
    return missing


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_every_measured_number_in_the_prose_is_printed_by_a_cell(path):
    missing = unprinted_numbers(nbformat.read(path, as_version=4))
    assert not missing, "\n".join(f"{path.name} cell {i}: {num!r} is printed by no cell: …{ctx}…"
                                  for i, num, ctx in missing)


def test_the_number_check_sees_a_number_no_cell_prints():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("The model reaches 118.1 nats (Exercise 5.2); PyTorch reports 105.6."),
        nbformat.v4.new_code_cell("print(f'{x:.2f}')", outputs=[nbformat.v4.new_output("stream", text="118.13\n")]),
    ])
    assert [num for _, num, _ in unprinted_numbers(nb)] == ["105.6"]
    nb.cells[0].metadata["course"] = {"cited": ["105.6"]}
    assert unprinted_numbers(nb) == []


@pytest.mark.parametrize("path", SOLUTIONS + STUDENT, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_code_lines_fit_a_laptop_screen(path):
    nb = nbformat.read(path, as_version=4)
    long = [(i, len(line)) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for line in cell.source.splitlines() if len(line) > MAX_CODE_LINE]
    assert not long, f"{path.name}: {len(long)} code lines over {MAX_CODE_LINE} characters (cell, length): {long[:8]}"


@pytest.mark.parametrize("path", STUDENT, ids=lambda p: p.stem)
def test_check_cells_are_a_few_lines(path):
    nb = nbformat.read(path, as_version=4)
    tall = [(i, len(cell.source.splitlines())) for i, cell in enumerate(nb.cells)
            if "check" in cell.metadata.get("tags", []) and len(cell.source.splitlines()) > MAX_CHECK_CELL_LINES]
    assert not tall, (f"{path.name}: check cells over {MAX_CHECK_CELL_LINES} lines (cell, lines): {tall}; move their "
                      "helpers into the notebook's check module in utils")
