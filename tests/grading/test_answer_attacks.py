"""Answer attacks against 02, 04 and 05, graded for real in the sandbox: each scores 0, the honest neighbour full marks.

One batch per notebook: the solution (honest), a submission that delegates every exercise to whatever hidden-test
function it can reach from the kernel (frames, user namespace, history, modules, gc) and one that forges the probes'
records by replacing ``torch.save`` (`tests/grading/answer_attacks.py`). About 8 minutes on 2 cores (05's solution
trains its models); the gradebooks land in ``build/grading-answer-attacks/``.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from instructor import grade
from instructor.grading import kernel_side, sandbox
from instructor.grading.spec import load_assignment
from tests.grading import answer_attacks

ROOT = Path(__file__).resolve().parent.parent.parent
NOTEBOOKS = ("02_latent_variables_elbo", "04_gradient_estimators", "05_vae")

pytestmark = [pytest.mark.corpus,
              pytest.mark.skipif(sandbox.check_isolation() is not None,
                                 reason=f"strong isolation unavailable: {sandbox.check_isolation()}")]


@pytest.fixture(scope="module", params=NOTEBOOKS)
def graded(request, tmp_path_factory) -> dict:
    name = request.param
    tmp = tmp_path_factory.mktemp(name)
    subs, out = tmp / "submissions", tmp / "grades"
    (subs / "honest").mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / f"{name}.ipynb", subs / "honest" / f"{name}.ipynb")
    for student, build in answer_attacks.ATTACKS.items():
        (subs / student).mkdir()
        nbformat.write(build(name), subs / student / f"{name}.ipynb")
    start = time.monotonic()
    status = grade.main(["run", name, str(subs), "--out", str(out), "--workers", "2", "--no-progress"])
    seconds = time.monotonic() - start
    artifacts = ROOT / "build" / "grading-answer-attacks" / name  # for reviewers: gradebook and feedback
    shutil.rmtree(artifacts, ignore_errors=True)
    shutil.copytree(out, artifacts)
    students = {s["student"]: s for s in json.loads((out / "grades.json").read_text())["students"]}
    print(f"{name}: batch graded in {seconds:.0f} s; parts passed: "
          + ", ".join(f"{s}: {sum(v[0] for v in r['verdicts'].values())}/{len(r['verdicts'])}" for s, r in students.items()))
    return {"name": name, "status": status, "students": students}


def test_the_batch_finishes_and_the_honest_neighbour_gets_full_marks(graded):
    assert graded["status"] == 0
    honest = graded["students"]["honest"]
    ids = {p.grade_id for p in load_assignment(graded["name"]).checks}
    assert honest["status"] == "ok", honest["note"]
    assert {gid for gid, verdict in honest["verdicts"].items() if verdict[0]} == ids, honest["verdicts"]


@pytest.mark.parametrize("student", sorted(answer_attacks.ATTACKS))
def test_the_attack_scores_zero(graded, student):
    record = graded["students"][student]
    passed = sorted(gid for gid, verdict in record["verdicts"].items() if verdict[0])
    assert record["verdicts"] and not passed, passed


def test_hidden_feedback_shows_no_exception_text(graded):
    """The thief's delegates raise NotImplementedError(<its name>), the stubs NotImplementedError("Exercise ..."): the
    feedback names the exception's type and the student's line (or a missing model), never the exception's text."""
    raised = [v[1] for v in graded["students"]["steals_references"]["verdicts"].values() if "raised" in v[1]]
    assert raised
    for message in raised:
        where = rf"line \d+ of your cell|{re.escape(kernel_side.MISSING)}"
        assert re.fullmatch(rf"✗ calling your code raised \w+ \(({where})\)", message), message
