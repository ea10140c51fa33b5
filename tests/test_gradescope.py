"""The Gradescope autograder bundle: build it, unpack it into a fake Gradescope root, run run_autograder, and check
results.json against Gradescope's documented format (https://gradescope-autograders.readthedocs.io/en/latest/specs/).

The end-to-end runs (the solution, the unanswered student version, two exploits) take about 10-60 s each, run two at a
time: they are marked `corpus` (make test-grading, not make test). The other tests run `instructor.gradescope.run`
in-process with the grader replaced (fast).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from instructor import gradescope
from instructor.grading import sandbox
from instructor.grading.grader import Outcome
from instructor.grading.judge import Verdict
from instructor.grading.spec import load_assignment
from tests.grading import exploits
from tests.grading.isolation import GRADED, require_isolation

ROOT = Path(__file__).resolve().parent.parent
NB = "00_course_tour"
TEST_KEYS = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format", "tags",
             "visibility", "extra_data"}
TOP_KEYS = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
            "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}


def validate(results: dict, name: str = NB) -> None:
    """results.json follows Gradescope's schema, its scores add up, its maxima are the assignment's points."""
    assignment = load_assignment(name)
    assert set(results) <= TOP_KEYS, set(results) - TOP_KEYS
    assert isinstance(results["score"], float) and isinstance(results["output"], str)
    assert results.get("visibility", "visible") in gradescope.VISIBILITIES
    tests = results["tests"]
    assert len(tests) == len(assignment.parts)
    for test in tests:
        assert set(test) <= TEST_KEYS, set(test) - TEST_KEYS
        assert isinstance(test["name"], str) and test["name"]
        assert isinstance(test["score"], float) and isinstance(test["max_score"], float)
        assert isinstance(test["output"], str) and test["visibility"] in gradescope.VISIBILITIES
        assert test.get("status", "passed") in ("passed", "failed")
        if "status" in test:
            assert (test["status"] == "passed") == (test["score"] > 0)
    assert results["score"] == pytest.approx(sum(t["score"] for t in tests))
    by_part = dict(zip(assignment.parts, tests, strict=True))
    regular = [p for p in assignment.checks if not p.extra_credit]
    assert sum(t["max_score"] for t in tests) == pytest.approx(sum(p.points for p in regular))
    for part, test in by_part.items():
        if part.kind == "written":
            assert test["score"] == test["max_score"] == 0 and "graded by hand" in test["name"]
        elif part.extra_credit:
            assert test["max_score"] == 0 and test["score"] in (0, part.points) and "Extra credit" in test["name"]
        else:
            assert test["max_score"] == part.points and test["score"] in (0, part.points)


def _parts(results: dict) -> dict[str, dict]:
    return {t["name"].split()[-1]: t for t in results["tests"]}


# ------------------------------------------------------------------------------------------------- the bundle itself

@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return gradescope.build_bundle(NB, tmp_path_factory.mktemp("bundle") / "autograder.zip")


def test_bundle_layout_follows_gradescope(bundle):
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in z.infolist()}
        requirements = z.read("requirements.txt").decode()
        setup = z.read("setup.sh").decode()
        config = json.loads(z.read("gradescope.json"))
    assert {"setup.sh", "run_autograder"} <= names  # at the root of the zip, not in a folder
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert {"instructor/grade.py", "instructor/gradescope.py", "instructor/grading/judge.py", f"solutions/{NB}.ipynb",
            f"solutions/grading/{NB}/probes.py", f"solutions/grading/{NB}/judges.py", f"build/grading-reference/{NB}.npz",
            f"build/grading-reference/{NB}.json"} <= names
    assert not any(n.startswith(("tests/", "notebooks/")) or "__pycache__" in n for n in names)
    assert not any(n.startswith(("solutions/", "build/")) and NB not in n for n in names)  # this assignment's only
    assert "utils/datasets/mnist_5000.npz" in names and "utils/data.py" in names
    assert not any(n.startswith(("instructor/site", "instructor/bench", "instructor/release")) for n in names)
    assert "torch==2.13.0" in requirements and "nbclient==" in requirements and "pytest" not in requirements
    assert "download.pytorch.org/whl/cpu" in setup and "requirements.txt" in setup
    for script in ("setup.sh", "run_autograder"):  # valid bash
        with zipfile.ZipFile(bundle) as z:
            assert subprocess.run(["bash", "-n"], input=z.read(script), capture_output=True).returncode == 0, script
    assert config == {"assignment": NB, "hidden_visibility": "after_due_date",
                      "limits": dataclasses.asdict(sandbox.Limits()), "allow_unsafe_isolation": False}
    assert sandbox.Limits(**config["limits"]) == sandbox.Limits()  # the grading side reads them back


def test_bundle_is_reproducible(bundle, tmp_path):
    again = gradescope.build_bundle(NB, tmp_path / "again.zip")
    assert again.read_bytes() == bundle.read_bytes()


def test_command_line_builds_and_rejects_bad_options(tmp_path, capsys):
    assert gradescope.main(["build", "00", "--out", str(tmp_path / "a.zip"), "--hidden-visibility", "after_published",
                            "--cell-timeout", "60", "--allow-unsafe-isolation"]) == 0
    with zipfile.ZipFile(tmp_path / "a.zip") as z:
        config = json.loads(z.read("gradescope.json"))
    assert config["hidden_visibility"] == "after_published" and config["allow_unsafe_isolation"] is True
    assert config["limits"]["cell_seconds"] == 60 and config["limits"]["total_seconds"] == sandbox.Limits().total_seconds
    assert gradescope.main(["build", "07"]) == 2 and "unknown" in capsys.readouterr().err
    assert gradescope.main(["build", "00", "--out", str(tmp_path / "b.zip"), "--memory-mb", "0"]) == 2
    assert "--memory-mb must be positive" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- fast: run() in-process

def _fake_root(tmp_path: Path, bundle: Path, notebook: nbformat.NotebookNode | None = None,
               filename: str = f"{NB}.ipynb") -> Path:
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "results").mkdir()
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    for script in ("setup.sh", "run_autograder"):
        os.chmod(root / "source" / script, 0o755)
    if notebook is not None:
        nbformat.write(notebook, root / "submission" / filename)
    return root


def test_find_submission_prefers_the_assignment_name(tmp_path):
    (tmp_path / "sub" / ".ipynb_checkpoints").mkdir(parents=True)
    (tmp_path / "sub" / ".ipynb_checkpoints" / f"{NB}.ipynb").write_text("{}")
    assert gradescope.find_submission(tmp_path, NB)[0] is None
    (tmp_path / "sub" / "mine.ipynb").write_text("{}")
    path, note = gradescope.find_submission(tmp_path, NB)
    assert path.name == "mine.ipynb" and "expected the file name" in note
    (tmp_path / "other.ipynb").write_text("{}")
    assert gradescope.find_submission(tmp_path, NB)[0] is None
    (tmp_path / "sub" / f"{NB}.ipynb").write_text("{}")
    assert gradescope.find_submission(tmp_path, NB)[0] == tmp_path / "sub" / f"{NB}.ipynb"


def test_missing_notebook_gives_zero_with_instructions(tmp_path, bundle, monkeypatch):
    root = _fake_root(tmp_path, bundle)
    monkeypatch.setattr(sandbox, "run_isolated", lambda *a, **k: pytest.fail("nothing to run"))
    assert gradescope.run(root) == 0
    results = json.loads((root / "results" / "results.json").read_text())
    validate(results)
    assert results["score"] == 0 and f"upload {NB}.ipynb" in results["output"]
    assert oct(root.stat().st_mode & 0o777) == "0o700"
    assert oct((root / "source" / "solutions").stat().st_mode & 0o777) == "0o700"
    assert oct((root / "source" / "build").stat().st_mode & 0o777) == "0o700"  # the reference results


def test_statuses_and_messages_reach_the_student(tmp_path, bundle, monkeypatch):
    root = _fake_root(tmp_path, bundle, nbformat.read(ROOT / "notebooks" / f"{NB}.ipynb", as_version=4),
                      filename="my_homework.ipynb")
    seen = {}

    def fake_grade(assignment, path, student, reference, limits, strong):
        seen.update(path=path, limits=limits, strong=strong)
        return Outcome(student, "timeout", {"ex0_1_visible": Verdict(True, "✓ right"),
                                            "ex0_1_hidden": Verdict(False, "✗ class_means: wrong values"),
                                            "ex0_2_extra": Verdict(False, "✗ not graded: timeout")},
                       seconds=3.0, note="cell(s) [12] ran past the per-cell time limit")

    monkeypatch.setattr("instructor.grading.grader.grade_notebook", fake_grade)
    monkeypatch.setenv("VAE_GRADESCOPE_ISOLATION", "weak")
    monkeypatch.setattr(sandbox, "can_drop_to_nobody", lambda: True)
    assert gradescope.run(root) == 0
    results = json.loads((root / "results" / "results.json").read_text())
    validate(results)
    parts = _parts(results)
    assert seen["path"].name == "my_homework.ipynb" and seen["strong"] is False
    assert seen["limits"] == sandbox.Limits()
    assert results["score"] == 1 and "status timeout" in results["output"] and "expected the file name" in \
        results["output"]
    assert parts["ex0_1_hidden"]["visibility"] == "after_due_date" and parts["ex0_1_visible"]["visibility"] == "visible"
    assert parts["ex0_1_hidden"]["output"] == "✗ class_means: wrong values"
    written = parts["grading"]
    assert "no answer, pending manual grading" in written["name"] and "status" not in written  # never "passed"
    assert "YOUR ANSWER HERE" in written["output"]
    # The summary counts only what the student may see now: the visible check, not the hidden tests' results.
    assert "Visible checks: 1 / 1 points, extra credit 0 / 1." in results["output"] and "Auto-graded" not in results["output"]
    assert "shown after the due date" in results["output"]


def test_a_written_answer_is_pending_and_all_visible_results_are_counted(tmp_path, bundle, monkeypatch):
    nb = nbformat.read(ROOT / "solutions" / f"{NB}.ipynb", as_version=4)
    root = _fake_root(tmp_path, bundle, nb)
    config = json.loads((root / "source" / "gradescope.json").read_text())
    (root / "source" / "gradescope.json").write_text(json.dumps(dict(config, hidden_visibility="visible")))
    right = {p.grade_id: Verdict(True, "✓ right") for p in load_assignment(NB).checks}
    monkeypatch.setattr("instructor.grading.grader.grade_notebook",
                        lambda assignment, path, student, *a, **k: Outcome(student, "ok", right, seconds=1.0))
    monkeypatch.setenv("VAE_GRADESCOPE_ISOLATION", "strong")
    assert gradescope.run(root) == 0
    results = json.loads((root / "results" / "results.json").read_text())
    validate(results)
    written = _parts(results)["grading"]
    assert written["name"].endswith("): pending manual grading") and "status" not in written
    assert written["output"].startswith("Pending: graded by the course staff. Your answer:")
    assert "Auto-graded: 2 / 2 points, extra credit 1 / 1." in results["output"]
    assert "pending manual grading" in results["output"]


def test_weak_isolation_that_cannot_change_user_refuses_unless_allowed(tmp_path, bundle, monkeypatch, capsys):
    root = _fake_root(tmp_path, bundle, nbformat.read(ROOT / "notebooks" / f"{NB}.ipynb", as_version=4))
    monkeypatch.setenv("VAE_GRADESCOPE_ISOLATION", "weak")
    monkeypatch.setattr(sandbox, "can_drop_to_nobody", lambda: False)
    monkeypatch.setattr("instructor.grading.grader.grade_notebook",
                        lambda assignment, path, student, *a, **k: Outcome(student, "ok", {}, seconds=1.0))
    assert gradescope.run(root) == 1
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 0 and "could not grade" in results["output"]
    assert "--allow-unsafe-isolation" in capsys.readouterr().err
    config = json.loads((root / "source" / "gradescope.json").read_text())
    (root / "source" / "gradescope.json").write_text(json.dumps(dict(config, allow_unsafe_isolation=True)))
    assert gradescope.run(root) == 0
    assert "isolation: UNSAFE" in capsys.readouterr().out


def test_an_autograder_error_still_writes_results(tmp_path, bundle):
    root = _fake_root(tmp_path, bundle)
    (root / "source" / "gradescope.json").write_text("{broken")
    assert gradescope.run(root) == 1
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 0 and results["tests"] == [] and "could not grade" in results["output"]


# ----------------------------------------------------------------------------- end to end: run_autograder for real

WEAK = ("weak_solution", "weak_student")  # graded with VAE_GRADESCOPE_ISOLATION=weak


def _run_autograder(root: Path) -> tuple[dict, str]:
    """results.json and the log (stdout, then stderr) of run_autograder; weak isolation for the WEAK cases."""
    env = {**os.environ, "GRADESCOPE_ROOT": str(root), "VAE_GRADESCOPE_PYTHON": sys.executable}
    if root.parent.name in WEAK:
        env["VAE_GRADESCOPE_ISOLATION"] = "weak"
    proc = subprocess.run([str(root / "source" / "run_autograder")], cwd=root, env=env, capture_output=True,
                          text=True, timeout=900)
    refused = "isolation: refused" in proc.stderr
    assert proc.returncode == (1 if refused else 0), proc.stdout + proc.stderr
    return json.loads((root / "results" / "results.json").read_text()), proc.stdout + proc.stderr


FORGE = '''
import json, os, subprocess, sys
forged = {{"score": 100.0, "tests": [{{"name": "forged", "score": 100.0, "max_score": 1.0}}]}}
for path in [{results!r}, "/autograder/results/results.json"]:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").write(json.dumps(forged))
    except OSError:
        pass
# ...and again after the grader has written its own results, from a process that tries to outlive the kernel.
subprocess.Popen([sys.executable, "-c", "import time, json; time.sleep(8); "
                  "open({results!r}, 'w').write(json.dumps({{'score': 100.0, 'tests': []}}))"],
                 start_new_session=True)
def class_means(images, labels, num_classes=10):
    return torch.zeros(num_classes, *images.shape[-2:])
'''


@pytest.fixture(scope="module")
def end_to_end(tmp_path_factory, bundle):
    """results.json and the log of run_autograder for four submissions, graded two at a time."""
    require_isolation()
    base = tmp_path_factory.mktemp("gradescope")
    roots = {}
    for case in ("solution", "student", "reads_solutions", "forges_results", *WEAK):
        roots[case] = base / case / "autograder"
    targets = {"solution": str(roots["reads_solutions"] / "source" / "solutions" / f"{NB}.ipynb"),
               "reference": str(roots["reads_solutions"] / "source" / "build" / "grading-reference" / f"{NB}.npz"),
               "other_submission": str(roots["solution"] / "submission" / f"{NB}.ipynb"),
               "canary": str(base / "canary"), "solution_copy": str(base / "copy")}
    notebooks = {
        "solution": nbformat.read(ROOT / "solutions" / f"{NB}.ipynb", as_version=4),
        "student": nbformat.read(ROOT / "notebooks" / f"{NB}.ipynb", as_version=4),
        "reads_solutions": exploits.corpus(targets, 9)["reads_solutions"],
        "forges_results": exploits.build(FORGE.format(results=str(roots["forges_results"] / "results" /
                                                                 "results.json"))),
        "weak_solution": nbformat.read(ROOT / "solutions" / f"{NB}.ipynb", as_version=4),
        "weak_student": nbformat.read(ROOT / "notebooks" / f"{NB}.ipynb", as_version=4),
    }
    for case, nb in notebooks.items():
        _fake_root(base / case, bundle, nb)
    config_path = roots["weak_solution"] / "source" / "gradescope.json"  # built with --allow-unsafe-isolation
    config_path.write_text(json.dumps(dict(json.loads(config_path.read_text()), allow_unsafe_isolation=True)))
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = dict(zip(roots, pool.map(_run_autograder, roots.values()), strict=True))
    import time

    time.sleep(10)  # give the forger's late writer its chance (it must have died with the sandbox)
    done["forges_results_later"] = (json.loads((roots["forges_results"] / "results" / "results.json").read_text()),
                                    "")
    GRADED["attacks"] += 2  # reads_solutions, forges_results
    GRADED["honest"] += 2  # solution, weak_solution
    artifacts = ROOT / "build" / "gradescope-results"  # for reviewers: each case's results.json
    artifacts.mkdir(parents=True, exist_ok=True)
    for case, (results, _) in done.items():
        (artifacts / f"{case}.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    return done


@pytest.mark.corpus
def test_solution_gets_full_marks(end_to_end):
    results, log = end_to_end["solution"]
    validate(results)
    assert all(t["status"] == "passed" for t in results["tests"] if "status" in t)
    assert results["score"] == 3.0 and "isolation: strong" in log


@pytest.mark.corpus
def test_unanswered_student_version_gets_zero(end_to_end):
    results, _ = end_to_end["student"]
    validate(results)
    assert results["score"] == 0 and all(t["status"] == "failed" for t in results["tests"] if "status" in t)
    assert "NotImplementedError" in _parts(results)["ex0_1_visible"]["output"]


@pytest.mark.corpus
def test_reading_the_hidden_tests_and_solution_scores_zero(end_to_end):
    results, _ = end_to_end["reads_solutions"]
    validate(results)
    parts = _parts(results)
    assert parts["ex0_1_visible"]["score"] == parts["ex0_1_hidden"]["score"] == 0
    # the exploit raises RuntimeError("could not steal the solution ..."): its type and line show, never its text
    assert "raised RuntimeError (line" in parts["ex0_1_visible"]["output"]
    assert "could not steal" not in json.dumps(results)


@pytest.mark.corpus
def test_forged_results_json_is_replaced_by_the_real_one(end_to_end):
    for key in ("forges_results", "forges_results_later"):
        results, _ = end_to_end[key]
        validate(results)
        parts = _parts(results)
        assert parts["ex0_1_visible"]["score"] == parts["ex0_1_hidden"]["score"] == 0
        assert results["score"] == 0 and "forged" not in json.dumps(results)


@pytest.mark.corpus
def test_weak_isolation_grades_for_real_where_allowed(end_to_end):
    """The weak path end to end: no namespaces, the real kernel and judge; the solution still gets full marks."""
    results, log = end_to_end["weak_solution"]
    validate(results)
    assert results["score"] == 3.0, results["output"]
    assert "isolation: weak" in log or "isolation: UNSAFE" in log


@pytest.mark.corpus
def test_weak_isolation_refuses_where_the_submission_cannot_change_user(end_to_end):
    results, log = end_to_end["weak_student"]
    if sandbox.can_drop_to_nobody():  # it runs as nobody, the hidden tests mode 700: grading is safe
        validate(results)
        assert results["score"] == 0 and "isolation: weak" in log
    else:
        assert results["score"] == 0 and results["tests"] == [] and "could not grade" in results["output"]
        assert "isolation: refused" in log and "--allow-unsafe-isolation" in log
