"""An assignment as the grader sees it: graded parts from the solution notebook, hidden tests, reference results.

* Points and exercise ids come from the solution notebook's cell metadata (the same source `instructor.release` uses):
  check cells carry nbgrader ``grade_id``/``points``, written answers carry ``course.points``.
* Hidden tests live in ``solutions/grading/<assignment>/`` (instructor material, never released), in two files:
  ``probes.py`` defines ``PROBES`` (grade_id -> function of the notebook's namespace returning tensors): the only
  hidden-test code that enters the student's kernel, so it builds inputs and calls the student's functions, and holds
  no reference implementation, expected value or table of wrong answers. ``judges.py`` defines ``JUDGES`` (grade_id ->
  judge from `instructor.grading.judge`, run in the trusted process only) and reaches the probes' input builders
  through `probes_beside`.
* Reference results (the probes' data on the solution notebook, trained weights included) are not kept in git: they
  are built on this machine when first needed (`instructor.grading.reference.ensure_reference`) into
  ``build/grading-reference/`` as ``<assignment>.npz`` (loaded with allow_pickle=False) and ``<assignment>.json``
  (the fingerprint they were made from). A change to the solution's code, its hidden tests, ``utils`` or torch
  makes them stale, and they are rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import nbformat
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent.parent
SOLUTIONS = ROOT / "solutions"
HIDDEN_TESTS = SOLUTIONS / "grading"
REFERENCE = ROOT / "build" / "grading-reference"  # a cache, ignored by git


class AssignmentError(ValueError):
    """The assignment cannot be graded as set up; the message says what to do."""


class ReferenceMissing(AssignmentError):
    """The reference results are not built yet, or were built from another solution, hidden tests, utils or torch."""


@dataclass(frozen=True)
class Part:
    """One graded part: a check cell (auto-graded) or a written answer (graded by hand)."""

    grade_id: str
    exercise: str
    points: float
    extra_credit: bool
    kind: str  # "check" | "written"


@dataclass
class Assignment:
    """Everything the grader needs to know about one notebook."""

    name: str
    solution: Path
    parts: list[Part]
    hidden_tests: Path  # the folder with probes.py and judges.py
    probes: dict = field(repr=False)
    judges: dict = field(repr=False)
    diagnoses: tuple[str, ...] = ()  # the typical mistakes the judges name (judges.py's DIAGNOSES), for the class report

    @property
    def probes_path(self) -> Path:
        return self.hidden_tests / "probes.py"

    @property
    def judges_path(self) -> Path:
        return self.hidden_tests / "judges.py"

    @property
    def probes_source(self) -> str:
        """The source the runner sends into the student's kernel: the probes, and nothing of the judges."""
        return self.probes_path.read_text()

    @property
    def checks(self) -> list[Part]:
        return [p for p in self.parts if p.kind == "check"]

    @property
    def written(self) -> list[Part]:
        return [p for p in self.parts if p.kind == "written"]

    def max_points(self, extra_credit: bool) -> float:
        return sum(p.points for p in self.parts if p.extra_credit == extra_credit)

    @property
    def exercises(self) -> list[str]:
        """Exercise ids in notebook order, each once."""
        return list(dict.fromkeys(p.exercise for p in self.parts))

    def fingerprint(self) -> dict:
        """What the reference results depend on, and nothing else: the solution's code cells, the hidden tests (probes
        and judges), the code that runs them in the kernel, the `utils` modules they import (with theirs) and torch."""
        nb = nbformat.read(self.solution, as_version=4)
        code = "\n\0".join(c.source for c in nb.cells if c.cell_type == "code")
        kernel_side = Path(__file__).with_name("kernel_side.py").read_bytes()
        tests = self.probes_path.read_bytes() + b"\0" + self.judges_path.read_bytes()
        return {"solution_code_sha256": hashlib.sha256(code.encode()).hexdigest(),
                "hidden_tests_sha256": hashlib.sha256(tests + b"\0" + kernel_side).hexdigest(),
                "utils_sha256": utils_digest(imported_utils(code + "\n" + tests.decode())),
                "torch": torch.__version__}


# "from utils import a, b" (names on one line, or in parentheses over several), "from utils.x import ...", "import utils.x"
_UTILS_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+utils(?:\.(\w+))?[ \t]+import[ \t]+(\([\w\s,]+\)|[\w \t,]+)"
                           r"|import[ \t]+utils\.(\w+))", re.M)


def imported_utils(source: str) -> list[str]:
    """The `utils` modules (file stems) that `source` imports, directly or through other `utils` modules."""
    available = {p.stem for p in (ROOT / "utils").glob("*.py")}
    found: set[str] = set()
    pending = [source]
    while pending:
        for module, names, plain in _UTILS_IMPORT.findall(pending.pop()):
            candidates = [module or plain] if (module or plain) else [n.strip() for n in names.strip("() \n").split(",")]
            for name in candidates:
                if name in available and name not in found:
                    found.add(name)
                    pending.append((ROOT / "utils" / f"{name}.py").read_text())
    return sorted(found | {"__init__"})


def utils_digest(modules: list[str]) -> str:
    """One hash of the named `utils` modules (names and contents)."""
    digest = hashlib.sha256()
    for name in sorted(modules):
        digest.update(name.encode() + b"\0" + (ROOT / "utils" / f"{name}.py").read_bytes() + b"\0")
    return digest.hexdigest()


def graded_parts(nb: nbformat.NotebookNode) -> list[Part]:
    """The graded parts of a notebook, in order, from its metadata."""
    parts = []
    for cell in nb.cells:
        meta = cell.get("metadata", {})
        course, grade = meta.get("course", {}), meta.get("nbgrader", {})
        if cell.cell_type == "code" and grade.get("grade"):
            parts.append(Part(grade["grade_id"], str(course.get("exercise")), float(grade.get("points", 0)),
                              bool(course.get("extra_credit")), "check"))
        elif cell.cell_type == "markdown" and "written-answer" in meta.get("tags", []) and course.get("points"):
            parts.append(Part(str(course["exercise"]), str(course["exercise"]), float(course["points"]),
                              bool(course.get("extra_credit")), "written"))
    return parts


def assignment_names() -> list[str]:
    """Names of the notebooks that have hidden tests, e.g. ['00_course_tour', ...]."""
    return sorted(p.parent.name for p in HIDDEN_TESTS.glob("[0-9]*/probes.py"))


def resolve_name(name: str) -> str:
    """'05', '05_vae' or '05_vae.ipynb' -> '05_vae'; a clear error for unknown or ambiguous names."""
    stem = Path(name).name.removesuffix(".ipynb")
    notebooks = sorted(p.stem for p in SOLUTIONS.glob("[0-9]*.ipynb"))
    if not notebooks:
        raise AssignmentError(f"no solution notebooks in {SOLUTIONS}: grading needs the instructor edition")
    matches = [n for n in notebooks if n == stem] or [n for n in notebooks if n.startswith(stem)]
    if len(matches) != 1:
        raise AssignmentError(f"assignment {name!r} {'is ambiguous' if matches else 'is unknown'}; "
                              f"choose one of: {', '.join(notebooks)}")
    return matches[0]


_MODULES: dict[Path, ModuleType] = {}


def _load_module(path: Path, name: str) -> ModuleType:
    """Execute a hidden-tests file once per process (trusted instructor code) and keep the module."""
    path = path.resolve()
    if path not in _MODULES:
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        _MODULES[path] = module
    return _MODULES[path]


def probes_beside(judges_file: str | Path) -> ModuleType:
    """The probes module next to a judges file: judges rebuild the probes' inputs with the probes' own code."""
    folder = Path(judges_file).resolve().parent
    return _load_module(folder / "probes.py", f"hidden_probes_{folder.name}")


def load_hidden_tests(folder: Path) -> tuple[dict, dict, tuple[str, ...]]:
    """PROBES (from probes.py), JUDGES and DIAGNOSES (from judges.py) of an assignment's hidden-tests folder."""
    probes = probes_beside(folder / "judges.py")
    judges = _load_module(folder / "judges.py", f"hidden_judges_{folder.name}")
    return dict(probes.PROBES), dict(judges.JUDGES), tuple(getattr(judges, "DIAGNOSES", ()))


def load_assignment(name: str) -> Assignment:
    """The assignment `name` (see resolve_name), checked: every auto-graded part has a probe and a judge."""
    name = resolve_name(name)
    solution = SOLUTIONS / f"{name}.ipynb"
    folder = HIDDEN_TESTS / name
    missing_files = [f for f in ("probes.py", "judges.py") if not (folder / f).is_file()]
    if missing_files:
        raise AssignmentError(f"no hidden tests for {name}: write "
                              + ", ".join(str((folder / f).relative_to(ROOT)) for f in missing_files))
    parts = graded_parts(nbformat.read(solution, as_version=4))
    probes, judges, diagnoses = load_hidden_tests(folder)
    ids = {p.grade_id for p in parts if p.kind == "check"}
    missing = sorted(ids - set(probes)) + sorted(ids - set(judges))
    extra = sorted((set(probes) | set(judges)) - ids)
    if missing or extra:
        raise AssignmentError(f"{folder.name}/probes.py and judges.py do not match {solution.name}: "
                              f"missing probes/judges for {missing}, unknown grade ids {extra}")
    return Assignment(name, solution, parts, folder, probes, judges, diagnoses)


def reference_paths(name: str) -> tuple[Path, Path]:
    """The reference results' arrays (.npz) and fingerprint (.json) for an assignment."""
    return REFERENCE / f"{name}.npz", REFERENCE / f"{name}.json"


def save_reference(assignment: Assignment, values: dict[str, dict[str, torch.Tensor]]) -> None:
    """Store the probes' data on the solution notebook, with the fingerprint it was made from.

    The fingerprint is written last and each file is replaced atomically, so an interrupted build leaves the old
    reference or none, never a mix.
    """
    REFERENCE.mkdir(parents=True, exist_ok=True)
    arrays = {f"{gid}/{name}": t.numpy() for gid, vals in values.items() for name, t in vals.items()}
    npz, meta = reference_paths(assignment.name)
    meta.unlink(missing_ok=True)
    partial = npz.with_name(npz.stem + ".partial.npz")
    np.savez_compressed(partial, **arrays)
    partial.replace(npz)
    partial = meta.with_name(meta.name + ".partial")
    partial.write_text(json.dumps({**assignment.fingerprint(), "probes": sorted(values)}, indent=1) + "\n")
    partial.replace(meta)


def load_reference(assignment: Assignment) -> dict[str, dict[str, torch.Tensor]]:
    """{grade_id: {name: tensor}}; ReferenceMissing when not built or built from another solution, tests or utils."""
    npz, meta = reference_paths(assignment.name)
    if not npz.is_file() or not meta.is_file():
        raise ReferenceMissing(f"no reference results for {assignment.name} in {REFERENCE}: build them with "
                               f"`make grading-reference NB={assignment.name[:2]}` (`make grade` does it by itself)")
    recorded = json.loads(meta.read_text())
    if {k: recorded.get(k) for k in assignment.fingerprint()} != assignment.fingerprint():
        raise ReferenceMissing(f"the reference results for {assignment.name} are out of date (the solution's code, "
                               f"the hidden tests, utils or torch changed): rebuild them with "
                               f"`make grading-reference NB={assignment.name[:2]}` (`make grade` does it by itself)")
    values: dict[str, dict[str, torch.Tensor]] = {gid: {} for gid in recorded["probes"]}
    with np.load(npz, allow_pickle=False) as data:
        for key in data.files:
            gid, name = key.split("/", 1)
            values[gid][name] = torch.from_numpy(data[key])
    return values
