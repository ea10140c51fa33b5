"""A Gradescope autograder for one notebook: the same isolated grader and trusted judge as `python -m instructor.grade`.

    python -m instructor.gradescope build 05_vae --out build/autograder-05_vae.zip  # the bundle (make gradescope NB=05)
    python -m instructor.gradescope run                              # inside Gradescope: grade, write results.json

The bundle follows Gradescope's autograder specification (https://gradescope-autograders.readthedocs.io/en/latest/
specs/): ``setup.sh`` and ``run_autograder`` at the root of the zip, which Gradescope unpacks into
``/autograder/source``. It holds the course's ``utils``, the assignment's solution notebook (points and exercise ids
come from its metadata, as for the command-line grader), its hidden tests and reference results, and
``gradescope.json`` (the assignment's name, limits and the visibility of hidden-test results).

``run_autograder`` grades the notebook found under ``/autograder/submission`` and writes
``/autograder/results/results.json``: one test per graded part (name, score, max_score, status, output = the check's
message, visibility), extra credit as tests of max_score 0 (Gradescope adds their score on top), and each written
answer as a 0-point test marked *pending manual grading* (never "passed"; an unanswered one says so) that shows the
answer. The top-level ``output`` counts only the results a student may see now: with hidden tests shown after the
due date, it totals the visible checks. The root folder is ``$GRADESCOPE_ROOT`` (default ``/autograder``), so tests
can use a fake one.

Keeping the answers away from the submission: with namespaces (strong isolation) the submission's root folder holds
only the system and Python folders, so ``/autograder`` does not exist for it. Where the container forbids namespaces,
the submission runs as ``nobody`` with the limits, and ``run_autograder`` first makes ``/autograder`` and the folders
with the hidden tests (``solutions/``) and references (``build/grading-reference/``) readable by root only (mode 700).
Where it cannot even run as another user (not root, or Python not readable by others), the submission could read the
hidden tests: the autograder refuses to grade (results.json says so) unless the bundle was built with
``--allow-unsafe-isolation``. Which isolation was used is printed to the instructor-only stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import stat
import sys
import time
import zipfile
from pathlib import Path

from instructor.grading.sandbox import Limits

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = "/autograder"
VENV = "/opt/vae-course-venv"
CONFIG = "gradescope.json"
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
# Test and development tools the grading container does not need.
GRADER_PACKAGES = {"nbformat", "nbclient"}  # from requirements-dev.txt
MAX_OUTPUT = 4000

SETUP_SH = f"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu; apt-get update has run).
set -euxo pipefail
export DEBIAN_FRONTEND=noninteractive
# The grader needs Python 3.11 or newer and util-linux (unshare, setpriv, chroot), present on Ubuntu images.
PY=""
for candidate in python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null; then PY="$candidate"; break; fi
done
if [ -z "$PY" ]; then  # e.g. Ubuntu 22.04 (Python 3.10): its universe has 3.11
    apt-get install -y python3.11 python3.11-venv
    PY=python3.11
elif ! "$PY" -c "import ensurepip" 2>/dev/null; then  # Ubuntu ships venv support separately
    apt-get install -y "$PY-venv"
fi
command -v unshare setpriv chroot || apt-get install -y util-linux coreutils
# The venv lives outside /autograder and is readable by everyone, so the sandbox user `nobody` can run it.
"$PY" -m venv {VENV}
{VENV}/bin/pip install --disable-pip-version-check -q --upgrade pip
# torch as the CPU build (the same version as requirements.txt), then the other pinned requirements.
{VENV}/bin/pip install --disable-pip-version-check -q "$(grep -E '^torch==' /autograder/source/requirements.txt)" \\
    --index-url https://download.pytorch.org/whl/cpu
{VENV}/bin/pip install --disable-pip-version-check -q -r /autograder/source/requirements.txt
chmod -R a+rX {VENV}
# Build matplotlib's font cache once (the grader copies it into each sandbox).
MPLBACKEND=Agg {VENV}/bin/python -c "import matplotlib.pyplot"
"""

RUN_AUTOGRADER = f"""#!/usr/bin/env bash
# Gradescope runs this for every submission, as root. $GRADESCOPE_ROOT replaces /autograder (tests use a fake root);
# $VAE_GRADESCOPE_PYTHON replaces the Python that setup.sh installed.
set -uo pipefail
ROOT="${{GRADESCOPE_ROOT:-{DEFAULT_ROOT}}}"
PY="${{VAE_GRADESCOPE_PYTHON:-{VENV}/bin/python}}"
cd "$ROOT/source" || exit 1
exec "$PY" -m instructor.gradescope run --root "$ROOT"
"""


# ------------------------------------------------------------------------------------------------ building the bundle

def _runtime_requirements() -> str:
    """requirements.txt (what the notebooks need) plus what the grader runs them with (nbformat, nbclient)."""
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    for line in (ROOT / "requirements-dev.txt").read_text().splitlines():
        if line.split("==")[0].strip().lower() in GRADER_PACKAGES:
            lines.append(line)
    return "\n".join(lines) + "\n"


def bundle_files(name: str) -> dict[str, Path]:
    """{path in the zip: file on disk}: the assignment's grading material, the course's utils (with the offline data)
    and the grader (instructor/grading, grade.py, this module)."""
    from instructor.grading import spec

    files: dict[str, Path] = {}
    grader = [ROOT / "instructor" / n for n in ("__init__.py", "grade.py", "gradescope.py")]
    for path in sorted([*(ROOT / "utils").rglob("*"), *(ROOT / "instructor" / "grading").glob("*.py"), *grader]):
        if path.is_file() and "__pycache__" not in path.parts:
            files[str(path.relative_to(ROOT))] = path
    npz, meta = spec.reference_paths(name)
    tests = spec.HIDDEN_TESTS / name
    for path in (spec.SOLUTIONS / f"{name}.ipynb", tests / "probes.py", tests / "judges.py", npz, meta):
        files[str(path.relative_to(spec.ROOT))] = path
    return files


def build_bundle(assignment_name: str, out: Path, hidden_visibility: str = "after_due_date",
                 limits: Limits | None = None, allow_unsafe_isolation: bool = False) -> Path:
    """Write Gradescope's autograder zip for one assignment (grading `limits`, default `Limits()`); returns its path.

    Fails (AssignmentError) when the assignment has no hidden tests; builds its reference results first when they
    are missing or stale, so a bundle always grades like `python -m instructor.grade` on this checkout.
    """
    from instructor.grading.reference import ensure_reference
    from instructor.grading.spec import load_assignment

    if hidden_visibility not in VISIBILITIES:
        raise ValueError(f"hidden_visibility must be one of {', '.join(VISIBILITIES)}")
    assignment = load_assignment(assignment_name)
    ensure_reference(assignment)
    config = {"assignment": assignment.name, "hidden_visibility": hidden_visibility,
              "limits": dataclasses.asdict(limits or Limits()), "allow_unsafe_isolation": allow_unsafe_isolation}
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    stamp = (2020, 1, 1, 0, 0, 0)  # fixed timestamps: the same checkout gives the same zip

    def add(z: zipfile.ZipFile, arcname: str, data: bytes, executable: bool = False) -> None:
        info = zipfile.ZipInfo(arcname, stamp)
        info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, data)

    with zipfile.ZipFile(partial, "w") as z:
        add(z, "setup.sh", SETUP_SH.encode(), executable=True)
        add(z, "run_autograder", RUN_AUTOGRADER.encode(), executable=True)
        add(z, "requirements.txt", _runtime_requirements().encode())
        add(z, CONFIG, (json.dumps(config, indent=1) + "\n").encode())
        for arcname, path in bundle_files(assignment.name).items():
            add(z, arcname, path.read_bytes())
    partial.replace(out)
    return out


# ------------------------------------------------------------------------------------------------- grading a submission

def find_submission(folder: Path, name: str) -> tuple[Path | None, str]:
    """The notebook to grade under Gradescope's submission folder, and a note for the student when there is doubt.

    Prefers a file named `<assignment>.ipynb` (at any depth), else the only notebook submitted.
    """
    notebooks = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
                       and "__MACOSX" not in p.parts and p.is_file() and not p.is_symlink())
    exact = [p for p in notebooks if p.name == f"{name}.ipynb"]
    if exact:
        return min(exact, key=lambda p: len(p.parts)), ""
    if len(notebooks) == 1:
        return notebooks[0], f"graded {notebooks[0].name} (expected the file name {name}.ipynb)"
    found = ", ".join(p.name for p in notebooks[:10]) or "none"
    return None, f"no notebook named {name}.ipynb was submitted (notebooks found: {found}); upload {name}.ipynb"


def hidden_grade_ids(solution: Path) -> set[str]:
    """Grade ids of the check cells whose tests are hidden from students (marked ### BEGIN HIDDEN TESTS)."""
    import nbformat

    nb = nbformat.read(solution, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
            if c.cell_type == "code" and c.get("metadata", {}).get("nbgrader", {}).get("grade")
            and "### BEGIN HIDDEN TESTS" in c.source}


def _num(x: float) -> str:
    return f"{x:g}"


UNANSWERED = ("", "YOUR ANSWER HERE")


def _written_test(part, label: str, written: dict[str, str]) -> dict:
    """A written answer: 0 of 0 points, pending manual grading (no "passed" status), showing the answer."""
    answer = written.get(part.exercise, "").strip()
    worth = f"{_num(part.points)} point{'' if part.points == 1 else 's'}"
    if answer.upper() in UNANSWERED:
        name = f"{label}: written answer ({worth}, graded by hand): no answer, pending manual grading"
        output = ("No answer was found: the cell below the question is empty or still says YOUR ANSWER HERE. "
                  "The course staff grades written answers by hand.")
    else:
        name = f"{label}: written answer ({worth}, graded by hand): pending manual grading"
        output = f"Pending: graded by the course staff. Your answer:\n\n{answer[:MAX_OUTPUT]}"
    return {"name": name, "number": part.exercise, "score": 0.0, "max_score": 0.0, "visibility": "visible",
            "tags": ["manual grading"], "output": output}


def results_json(assignment, outcome, hidden: set[str], hidden_visibility: str, written: dict[str, str],
                 note: str = "") -> dict:
    """Gradescope's results.json for one graded submission (see the module docstring)."""
    from instructor.grading.judge import Verdict

    tests = []
    for part in assignment.parts:
        label = f"{'Extra credit' if part.extra_credit else 'Exercise'} {part.exercise}"
        if part.kind == "written":
            tests.append(_written_test(part, label, written))
            continue
        verdict = outcome.verdicts.get(part.grade_id, Verdict(False, "✗ not graded"))
        is_hidden = part.grade_id in hidden
        kind = "hidden tests" if is_hidden else "check"
        earned = part.points if verdict.passed else 0.0
        tests.append({
            "name": f"{label}: {kind} {part.grade_id}",
            "number": part.exercise,
            "score": float(earned),
            # Extra credit: max_score 0, so the autograder's total is the regular points and a pass adds on top.
            "max_score": 0.0 if part.extra_credit else float(part.points),
            "status": "passed" if verdict.passed else "failed",
            "output": verdict.message[:MAX_OUTPUT],
            "visibility": hidden_visibility if is_hidden else "visible",
        })
    regular = sum(t["score"] for t, p in zip(tests, assignment.parts, strict=True) if not p.extra_credit)
    extra = sum(t["score"] for t, p in zip(tests, assignment.parts, strict=True) if p.extra_credit)
    data = {"score": float(regular + extra), "execution_time": round(outcome.seconds, 1),
            "output": _summary(assignment, outcome, tests, hidden, hidden_visibility, note),
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}
    return data


def _summary(assignment, outcome, tests: list[dict], hidden: set[str], hidden_visibility: str, note: str) -> str:
    """The top-level output: status and the points of the results a student may see now (hidden ones left out)."""
    shown = [(t, p) for t, p in zip(tests, assignment.parts, strict=True)
             if p.kind != "written" and (hidden_visibility == "visible" or p.grade_id not in hidden)]
    regular = sum(t["score"] for t, p in shown if not p.extra_credit)
    regular_max = sum(p.points for _, p in shown if not p.extra_credit)
    extra = sum(t["score"] for t, p in shown if p.extra_credit)
    extra_max = sum(p.points for _, p in shown if p.extra_credit)
    which = "Auto-graded" if len(shown) == len(assignment.checks) else "Visible checks"
    lines = [f"{assignment.name}: status {outcome.status}" + (f" ({outcome.note})" if outcome.note else "") + ".",
             f"{which}: {_num(regular)} / {_num(regular_max)} points"
             + (f", extra credit {_num(extra)} / {_num(extra_max)}." if extra_max else ".")]
    written_points = sum(p.points for p in assignment.written)
    if written_points:
        lines.append(f"Written answers ({_num(written_points)} point{'' if written_points == 1 else 's'}) are pending "
                     "manual grading.")
    if hidden and hidden_visibility != "visible":
        lines.append("Results of the hidden tests are shown " + {
            "after_due_date": "after the due date.", "after_published": "once grades are published.",
            "hidden": "to the course staff only."}[hidden_visibility])
    if note:
        lines.append(note)
    return "\n".join(lines)


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    partial.replace(path)


def _protect(root: Path, source: Path) -> None:
    """Make the Gradescope folder and the hidden tests/references unreadable for other users (root only)."""
    for folder in (root, source / "solutions", source / "build"):
        if folder.is_dir():
            os.chmod(folder, 0o700)


class UnsafeIsolation(RuntimeError):
    """Neither namespaces nor another user: the submission could read the hidden tests."""


def _isolation(allow_unsafe: bool) -> tuple[bool, str]:
    """(strong?, a line for the instructor-only log). VAE_GRADESCOPE_ISOLATION=strong|weak forces one (tests).

    Raises UnsafeIsolation when weak isolation cannot run the submission as another user, unless `allow_unsafe`.
    """
    from instructor.grading import sandbox

    forced = os.environ.get("VAE_GRADESCOPE_ISOLATION", "auto")
    reason = None if forced == "strong" else ("forced by VAE_GRADESCOPE_ISOLATION" if forced == "weak"
                                              else sandbox.check_isolation())
    if reason is None:
        return True, "isolation: strong (namespaces; /autograder is not visible to the submission)"
    if sandbox.can_drop_to_nobody():
        return False, f"isolation: weak ({reason}); the submission runs as nobody; /autograder and the hidden tests " \
                      "are mode 700"
    if not allow_unsafe:
        raise UnsafeIsolation(f"isolation: refused ({reason}), and the submission cannot run as another user, so it "
                              "could read the hidden tests; build the bundle with --allow-unsafe-isolation to grade "
                              "anyway")
    return False, f"isolation: UNSAFE ({reason}); the submission runs as the grading user and could read the hidden tests"


def run(root: Path) -> int:
    """Grade the submission under `root`/submission and write `root`/results/results.json; 0 when graded."""
    from instructor.grade import written_answers
    from instructor.grading import sandbox
    from instructor.grading.grader import Outcome, grade_notebook
    from instructor.grading.spec import load_assignment, load_reference

    source, results = root / "source", root / "results" / "results.json"
    start = time.monotonic()
    try:
        config = json.loads((source / CONFIG).read_text())
        assignment = load_assignment(config["assignment"])
        reference = load_reference(assignment)
        hidden = hidden_grade_ids(assignment.solution)
        _protect(root, source)
        strong, log_line = _isolation(bool(config.get("allow_unsafe_isolation")))
        print(log_line, flush=True)
        missing = sandbox.check_limits()
        print("limits: " + ("per submission (its own cgroup and tmpfs)" if missing is None else
                            f"per process only ({missing})"), flush=True)
        path, note = find_submission(root / "submission", assignment.name)
        if path is None:
            outcome = Outcome("submission", "missing", note="no notebook")
            written: dict[str, str] = {}
        else:
            limits = sandbox.Limits(**config["limits"])
            outcome = grade_notebook(assignment, path, "submission", reference, limits, strong)
            written = written_answers(path, assignment)
        data = results_json(assignment, outcome, hidden, config["hidden_visibility"], written, note)
        data["execution_time"] = round(time.monotonic() - start, 1)
        _write_json(results, data)
        print(f"{path}: status {outcome.status}, score {data['score']:g}", flush=True)
        return 0
    except Exception as exc:  # noqa: BLE001 - Gradescope must always get a results.json
        _write_json(results, {"score": 0.0, "output": "The autograder could not grade this submission; the course "
                              "staff has been shown why. Please contact them.", "stdout_visibility": "hidden",
                              "tests": []})
        print(f"autograder error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1


# ------------------------------------------------------------------------------------------------------ command line

def _parser() -> argparse.ArgumentParser:
    from instructor.grade import add_limit_options

    parser = argparse.ArgumentParser(prog="python -m instructor.gradescope", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="build|run")
    build = commands.add_parser("build", help="write the autograder zip for one assignment")
    build.add_argument("assignment", help="e.g. 05_vae or 05")
    build.add_argument("--out", type=Path, help="the zip to write (default build/autograder-<assignment>.zip)")
    build.add_argument("--hidden-visibility", default="after_due_date", choices=VISIBILITIES,
                       help="when students see the hidden tests' results (default after_due_date)")
    build.add_argument("--allow-unsafe-isolation", action="store_true",
                       help="grade even where the submission can neither be isolated nor run as another user "
                            "(it could read the hidden tests)")
    add_limit_options(build)
    run_ = commands.add_parser("run", help="inside Gradescope: grade the submission, write results.json")
    run_.add_argument("--root", type=Path, default=Path(os.environ.get("GRADESCOPE_ROOT", DEFAULT_ROOT)))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    from instructor.grade import limits_from
    from instructor.grading.spec import AssignmentError, resolve_name

    args = _parser().parse_args(argv)
    if args.command == "run":
        return run(args.root.resolve())
    try:
        name = resolve_name(args.assignment)
        out = args.out or ROOT / "build" / f"autograder-{name}.zip"
        build_bundle(name, out, args.hidden_visibility, limits_from(args), args.allow_unsafe_isolation)
    except (AssignmentError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{out}: upload it as the autograder of {name} on Gradescope (see README, 'Grading on Gradescope')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
