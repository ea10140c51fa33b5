"""Write the student notebooks (notebooks/) from the instructor notebooks (solutions/), the single source.

    python -m instructor.release                      # regenerate notebooks/ from solutions/
    python -m instructor.release --check              # exit 1 if notebooks/ is not what release would write
    python -m instructor.release --execute-solutions  # run solutions/ top to bottom in place, then release
    python -m instructor.release --only 04 ...        # the same for the notebooks whose name starts with 04
    python -m instructor.release --bundle build/vae-course-student.zip   # also write the student bundle (a zip)

Markers (nbgrader-compatible), each on a line of its own:
    ### BEGIN SOLUTION / ### END SOLUTION         code: replaced by `# YOUR CODE HERE` + `raise NotImplementedError(...)`;
                                                 markdown: replaced by `YOUR ANSWER HERE`
    ### BEGIN HIDDEN TESTS / ### END HIDDEN TESTS  removed from the student version
Tags that release reads (cell metadata "tags"):
    check         a graded check cell; needs-answer: a cell that uses an exercise's result.
    Both, and every code cell with a solution region, get `raises-exception` in the student version, so nbval
    runs the unanswered notebook top to bottom.
Cells are locked as nbgrader locks them (`lock_cells`): check cells (nbgrader `grade` or `locked`) cannot be edited
or deleted, answer cells (nbgrader `solution`) cannot be deleted. The nbgrader metadata comes from
`python -m instructor.nbgrader_cells --update`.
Outputs, execution counts and widget state are cleared. solutions/ is never written (except by --execute-solutions).
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
MARKER = re.compile(r"^(\s*)(### (?:BEGIN|END) (?:SOLUTION|HIDDEN TESTS))\s*$")
STUB_CODE = ["# YOUR CODE HERE", "raise NotImplementedError({message})"]
STUB_MARKDOWN = "YOUR ANSWER HERE"
TAGS_THAT_RAISE = {"check", "needs-answer"}
RAISES = "raises-exception"


class MarkerError(ValueError):
    """Unbalanced or nested markers; the message names the file, the cell and the line."""


@dataclass
class Region:
    """A marked region in one cell: kind is 'solution' or 'hidden'; lines are 0-based, inclusive of markers."""

    kind: str
    start: int
    end: int
    indent: str


def find_regions(source: str, where: str) -> list[Region]:
    """Find the marked regions of one cell's source, or raise MarkerError for unbalanced/nested markers."""
    regions, open_region = [], None
    for i, line in enumerate(source.split("\n")):
        m = MARKER.match(line)
        if not m:
            if any(marker in line for marker in (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)):
                raise MarkerError(f"{where}, line {i + 1}: a marker must stand alone on its line: {line.strip()!r}")
            continue
        indent, marker = m.groups()
        kind = "solution" if marker.endswith("SOLUTION") else "hidden"
        if marker.startswith("### BEGIN"):
            if open_region is not None:
                raise MarkerError(f"{where}, line {i + 1}: {marker!r} inside an open {open_region.kind} region "
                                  f"(opened on line {open_region.start + 1}); regions cannot be nested.")
            open_region = Region(kind, i, -1, indent)
        else:
            if open_region is None or open_region.kind != kind:
                raise MarkerError(f"{where}, line {i + 1}: {marker!r} without a matching BEGIN.")
            open_region.end = i
            regions.append(open_region)
            open_region = None
    if open_region is not None:
        raise MarkerError(f"{where}, line {open_region.start + 1}: {open_region.kind} region is never closed.")
    return regions


def _stub_lines(cell: dict, region: Region) -> list[str]:
    if cell["cell_type"] == "markdown":
        return [region.indent + STUB_MARKDOWN]
    exercise = cell.get("metadata", {}).get("course", {}).get("exercise")
    message = f'"Exercise {exercise}"' if exercise else ""
    return [region.indent + line.format(message=message) for line in STUB_CODE]


def lock_cell(cell: dict) -> None:
    """Lock a student cell in place as nbgrader's LockCells does with its default settings.

    An answer cell (nbgrader `solution`, written answers too) cannot be deleted; a check cell (`grade` and not
    `solution`) or a read-only cell (`locked`) can neither be edited nor deleted. JupyterLab and Notebook honour
    `editable` and `deletable`; a determined student can still change the file, which the grader does not trust anyway.
    """
    grading = cell.get("metadata", {}).get("nbgrader", {})
    if grading.get("solution"):
        cell["metadata"]["deletable"] = False
    elif grading.get("grade") or grading.get("locked"):
        cell["metadata"]["deletable"] = False
        cell["metadata"]["editable"] = False


def student_cell(cell: dict, where: str) -> dict:
    """The student version of one cell (a new dict; `cell` is not modified)."""
    out = copy.deepcopy(cell)
    lines = cell["source"].split("\n") if isinstance(cell["source"], str) else "".join(cell["source"]).split("\n")
    regions = find_regions("\n".join(lines), where)
    if regions and cell["cell_type"] not in ("code", "markdown"):
        raise MarkerError(f"{where}: markers are only allowed in code and markdown cells.")
    for region in reversed(regions):
        replacement = [] if region.kind == "hidden" else _stub_lines(cell, region)
        lines[region.start:region.end + 1] = replacement
    out["source"] = "\n".join(lines).rstrip("\n") if regions else "\n".join(lines)
    if cell["cell_type"] == "code":
        out["outputs"], out["execution_count"] = [], None
        tags = list(out.get("metadata", {}).get("tags", []))
        has_solution = any(r.kind == "solution" for r in regions)
        if (has_solution or TAGS_THAT_RAISE & set(tags)) and RAISES not in tags:
            out.setdefault("metadata", {})["tags"] = tags + [RAISES]
        out.get("metadata", {}).pop("execution", None)
    lock_cell(out)
    return out


def student_notebook(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The student version of an instructor notebook."""
    out = copy.deepcopy(nb)
    out.cells = [nbformat.from_dict(student_cell(c, f"{name}, cell {i + 1}")) for i, c in enumerate(nb.cells)]
    out.metadata.pop("widgets", None)
    return out


def render(nb: nbformat.NotebookNode) -> str:
    """Serialize a notebook exactly as release writes it (stable key order and indentation)."""
    return nbformat.writes(nb) + "\n"


def _select(solutions: Path, only: str | None) -> list[Path]:
    sources = sorted(p for p in solutions.glob("*.ipynb") if only is None or p.stem.startswith(only))
    if not sources:
        raise FileNotFoundError(f"No notebooks in {solutions}" + (f" whose name starts with {only!r}." if only else "."))
    return sources


def release(solutions: Path = SOLUTIONS, notebooks: Path = NOTEBOOKS, check: bool = False, only: str | None = None) -> list[str]:
    """Write (or, with check=True, only compare) the student version of every solutions/*.ipynb.

    only: a name prefix (e.g. '04') to release one notebook. Returns the names that differ (check=True) or were
    written. Raises MarkerError before writing anything if any selected notebook has bad markers.
    """
    sources = _select(solutions, only)
    if not sources:
        raise FileNotFoundError(f"No notebooks in {solutions}.")
    rendered = {p.name: render(student_notebook(nbformat.read(p, as_version=4), f"{solutions.name}/{p.name}"))
                for p in sources}
    changed = []
    notebooks.mkdir(exist_ok=True)
    for name, text in rendered.items():
        target = notebooks / name
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        changed.append(name)
        if not check:
            tmp = target.with_name(target.name + ".part")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(target)
    orphans = [] if only else sorted(p.name for p in notebooks.glob("*.ipynb") if p.name not in rendered)
    if orphans:
        changed += [f"{name} (no source in {solutions.name}/)" for name in orphans]
    return changed


def execute_solutions(solutions: Path = SOLUTIONS, timeout: int = 600, only: str | None = None) -> None:
    """Run each instructor notebook top to bottom in its folder and store its outputs in place."""
    import time

    from nbclient import NotebookClient

    for path in _select(solutions, only):
        start = time.perf_counter()
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(solutions)}})
        client.execute()
        nb.metadata.pop("widgets", None)  # widget state is large and not reproducible
        for cell in nb.cells:
            cell.metadata.pop("execution", None)  # timestamps would change on every run
        path.write_text(render(nb), encoding="utf-8")
        print(f"executed {path.name} in {time.perf_counter() - start:.1f} s")


# What students receive: the student notebooks and what runs them. Never solutions/ (instructor notebooks, hidden
# tests, reference results) and never tests/ (they hold right and wrong answers).
BUNDLE_FILES = ("README.md", "requirements.txt")
BUNDLE_FOLDERS = {"notebooks": "*.ipynb", "utils": "*"}  # utils: the students' library and its offline data


def bundle_members(root: Path = ROOT) -> list[Path]:
    """Files of the student bundle, relative to the course root."""
    members = [Path(name) for name in BUNDLE_FILES if (root / name).is_file()]
    for folder, pattern in BUNDLE_FOLDERS.items():
        members += sorted(p.relative_to(root) for p in (root / folder).rglob(pattern)
                          if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    return members


def write_bundle(target: Path, root: Path = ROOT, prefix: str = "vae-course") -> list[Path]:
    """Write the student bundle as a zip (atomically); returns its members."""
    import zipfile

    members = bundle_members(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as z:
        for member in members:
            z.write(root / member, f"{prefix}/{member.as_posix()}")
    part.replace(target)
    return members


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if notebooks/ is out of date")
    parser.add_argument("--execute-solutions", action="store_true", help="execute solutions/ in place first")
    parser.add_argument("--only", metavar="PREFIX", help="only the notebooks whose name starts with PREFIX, e.g. 04")
    parser.add_argument("--bundle", type=Path, metavar="ZIP", help="also write the student bundle to this zip")
    args = parser.parse_args(argv)
    try:
        if args.execute_solutions:
            execute_solutions(only=args.only)
        changed = release(check=args.check, only=args.only)
    except MarkerError as exc:
        print(f"release stopped, nothing written: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if changed:
            print("notebooks/ is out of date (run `make release`; never edit notebooks/ by hand): " + ", ".join(changed))
            return 1
        print("notebooks/ is up to date.")
        return 0
    print("wrote " + (", ".join(changed) if changed else "nothing (already up to date)"))
    if args.bundle:
        members = write_bundle(args.bundle)
        print(f"student bundle: {args.bundle} ({len(members)} files; no solutions, hidden tests or tests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
