"""Reference results are a local cache: built from the solution when missing or stale, reused while fresh, never in git."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from instructor.grading import reference, spec
from instructor.grading.grader import Outcome
from instructor.grading.spec import AssignmentError, ReferenceMissing, assignment_names, load_assignment, load_reference

ROOT = Path(__file__).resolve().parent.parent.parent
NB = "00_course_tour"  # the quickest solution to run (about 10 s)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty reference cache for this test only."""
    monkeypatch.setattr(spec, "REFERENCE", tmp_path / "grading-reference")
    return tmp_path / "grading-reference"


@pytest.mark.parametrize("name", assignment_names())
def test_every_reference_holds_every_probe_and_the_solution_passes_it(name):
    from tests.grading.gradetools import assignment_and_reference

    assignment, values = assignment_and_reference(name)  # builds it when this checkout has none
    assert set(values) == {p.grade_id for p in assignment.checks}
    assert load_reference(assignment).keys() == values.keys()  # fresh for this solution, hidden tests, utils, torch


def test_a_missing_reference_is_built_once_then_reused(cache, monkeypatch):
    assignment = load_assignment(NB)
    with pytest.raises(ReferenceMissing, match="no reference results for 00_course_tour"):
        load_reference(assignment)
    log = io.StringIO()
    values = reference.ensure_reference(assignment, log=log)  # a real run of the solution notebook
    assert "Building the reference results of 00_course_tour" in log.getvalue()
    assert sorted(p.name for p in cache.iterdir()) == [f"{NB}.json", f"{NB}.npz"]  # no partial files left
    assert set(values) == {p.grade_id for p in assignment.checks}

    monkeypatch.setattr(reference, "build_reference", lambda *a, **k: pytest.fail("a fresh reference was rebuilt"))
    again = reference.ensure_reference(assignment, log=None)
    assert all((again[g][k] == values[g][k]).all() for g in values for k in values[g])


def test_a_stale_or_half_written_reference_is_rebuilt(cache, monkeypatch):
    assignment = load_assignment(NB)
    spec.save_reference(assignment, {p.grade_id: {} for p in assignment.checks})
    meta = cache / f"{NB}.json"
    recorded = json.loads(meta.read_text())
    assert recorded == {**assignment.fingerprint(), "probes": sorted(p.grade_id for p in assignment.checks)}
    assert recorded["torch"]
    meta.write_text(json.dumps({**recorded, "hidden_tests_sha256": "0" * 64}))
    with pytest.raises(ReferenceMissing, match="out of date"):
        load_reference(assignment)

    builds = []
    monkeypatch.setattr(reference, "build_reference", lambda name, limits=None: builds.append(name) or
                        spec.save_reference(assignment, {p.grade_id: {} for p in assignment.checks}))
    reference.ensure_reference(assignment, log=None)
    assert builds == [NB]
    meta.unlink()  # an interrupted build: the fingerprint is written last
    reference.ensure_reference(assignment, log=None)
    assert builds == [NB, NB]


def test_the_fingerprint_covers_the_imported_utils_modules_and_nothing_of_the_tooling(tmp_path, monkeypatch):
    for folder in ("utils", "solutions", "instructor"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    monkeypatch.setattr(spec, "ROOT", tmp_path)
    monkeypatch.setattr(spec, "SOLUTIONS", tmp_path / "solutions")
    monkeypatch.setattr(spec, "HIDDEN_TESTS", tmp_path / "solutions" / "grading")
    assignment = load_assignment("05_vae")
    tests = tmp_path / "solutions" / "grading" / "05_vae"
    imported = spec.imported_utils((tests / "probes.py").read_text() + (tests / "judges.py").read_text()
                                   + "".join(c.source for c in assignment_cells(assignment)))
    assert {"data", "train", "checks", "plot", "latent_explorer", "cuda_speedups"} <= set(imported), imported
    assert spec.imported_utils("from utils import (\n    checks,\n    data,\n)\nx = 1") == ["__init__", "checks", "data"]
    before = assignment.fingerprint()

    (tmp_path / "utils" / "__pycache__").mkdir(exist_ok=True)
    (tmp_path / "utils" / "__pycache__" / "x.py").write_text("ignored")
    for tool in ("bench.py", "release.py", "grade.py", "gradescope.py", "site/build.py"):  # tooling edits
        with open(tmp_path / "instructor" / tool, "a") as f:
            f.write("\n# a changed comment\n")
    with open(tmp_path / "utils" / "estimators_demo.py", "a") as f:  # a module notebook 05 does not import
        f.write("\n# a changed comment\n")
    assert "estimators_demo" not in imported
    assert assignment.fingerprint() == before

    with open(tmp_path / "utils" / "plot.py", "a") as f:  # imported by 05 (directly or through another module)
        f.write("\n# a changed comment\n")
    assert assignment.fingerprint() != before


def assignment_cells(assignment):
    import nbformat

    return [c for c in nbformat.read(assignment.solution, as_version=4).cells if c.cell_type == "code"]


def test_a_solution_that_fails_is_not_stored_as_reference(cache, monkeypatch):
    monkeypatch.setattr(reference, "grade_notebook", lambda *a, **k: Outcome("solution", "crashed", note="boom"))
    with pytest.raises(AssignmentError, match="did not produce every probe's data .status crashed boom"):
        reference.build_reference(NB)
    assert not cache.exists() or not any(cache.iterdir())


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_git_holds_no_reference_results_or_other_large_data():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    # Shipped to students, each checked by SHA-256 on load: the offline digits (0.8 MB) and notebook 03's small
    # pretrained decoder (0.5 MB; made by instructor/nb03_decoder.py).
    shipped = {"utils/datasets/mnist_5000.npz", "utils/datasets/nb03_decoder.npy"}
    binary = [p for p in tracked if p.endswith((".npz", ".npy", ".pt", ".pth", ".pkl", ".zip", ".gz")) and p not in shipped]
    assert not binary, f"data files in git (build them locally instead): {binary}"
    # A solution notebook stores each figure twice (the PNG, and the HTML that carries its alt text): 05 is 2.1 MB.
    limit = {p: 3 * 2**20 for p in tracked if p.startswith("solutions/") and p.endswith(".ipynb")}
    large = [p for p in tracked if (ROOT / p).is_file() and (ROOT / p).stat().st_size > limit.get(p, 2 * 2**20)]
    assert not large, f"files over their size limit (2 MB, a solution notebook 3 MB) in git: {large}"
    assert "/build/" in (ROOT / ".gitignore").read_text().split()  # where the references are cached
