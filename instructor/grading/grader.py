"""Grade one submission: run it isolated, then judge its probes' data in this (trusted) process."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from instructor.grading import sandbox
from instructor.grading.judge import MAX_SUBMISSION_ELEMENTS, UnreadableResult, Verdict, load_result, read_untrusted, truncate
from instructor.grading.spec import ROOT, Assignment

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
MAX_STATUS_BYTES = 100_000
MAX_MESSAGE_CHARS = 1000  # any message a student or the gradebook sees
STATUSES = ("ok", "timeout", "memory", "crashed", "invalid", "missing")


@dataclass
class Outcome:
    """The graded result of one submission."""

    student: str
    status: str
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""
    values: dict = field(default_factory=dict, repr=False)  # grade_id -> {name: tensor}, kept for references
    usage: dict = field(default_factory=dict)  # what the sandbox used (cgroup counters), for the instructor

    def points(self, assignment: Assignment, extra_credit: bool) -> float:
        return sum(p.points for p in assignment.checks
                   if p.extra_credit == extra_credit and self.verdicts.get(p.grade_id, Verdict(False, "")).passed)

    def exercise_points(self, assignment: Assignment) -> dict[str, float]:
        scores: dict[str, float] = {}
        for p in assignment.checks:
            passed = self.verdicts.get(p.grade_id, Verdict(False, "")).passed
            scores[p.exercise] = scores.get(p.exercise, 0.0) + (p.points if passed else 0.0)
        return scores


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Parse a submission; ValueError with a readable reason when it is not a valid notebook."""
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"the file is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB")
    try:
        nb = nbformat.reads(path.read_bytes().decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - whatever is wrong, the file is not a usable notebook
        raise ValueError(f"not a valid Jupyter notebook ({type(exc).__name__}: {str(exc)[:200]})") from None
    return nb


def _clean_env(base: str) -> dict[str, str]:
    """The only environment the submission sees: nothing of the grader's (no tokens, no proxies, no paths)."""
    home = f"{base}/home"
    return {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home, "TMPDIR": "/tmp", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "PYTHONPATH": f"{base}/work", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        "VAE_COURSE_THREADS": "1", "VAE_COURSE_DEVICE": "cpu", "VAE_COURSE_DATA": f"{home}/data",
        "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{home}/.matplotlib", "IPYTHONDIR": f"{home}/.ipython",
        "JUPYTER_RUNTIME_DIR": f"{home}/.jupyter-runtime", "JUPYTER_PLATFORM_DIRS": "1",
        "TQDM_DISABLE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }


def _prepare(workdir: Path, nb: nbformat.NotebookNode) -> None:
    """Lay out the submission's folder: work/ (notebook, course utils), runner/, out/ (probe data), home/."""
    work, home = workdir / "work", workdir / "home"
    for d in (work, workdir / "out", home / "data", home / ".matplotlib", home / ".jupyter-runtime"):
        d.mkdir(parents=True, exist_ok=True)
    for cell in nb.cells:  # outputs are not graded and can be large
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, work / "submission.ipynb")
    shutil.copytree(ROOT / "utils", work / "utils", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    runner = workdir / "runner"  # the in-sandbox half of the grader: plain files, no access to the instructor package
    runner.mkdir()
    for name in ("runner.py", "kernel_side.py"):
        shutil.copy(Path(__file__).with_name(name), runner / name)
    try:  # reuse matplotlib's font list (it only names font files) so each kernel does not rebuild it
        import matplotlib

        for cached in Path(matplotlib.get_cachedir()).glob("fontlist-*.json"):
            shutil.copy(cached, home / ".matplotlib" / cached.name)
    except Exception:  # noqa: BLE001, S110 - only a speed-up
        pass


def grade_notebook(assignment: Assignment, path: Path, student: str, reference: dict | None,
                   limits: sandbox.Limits, strong: bool = True, scratch: Path | None = None) -> Outcome:
    """Run and judge one submission. With reference=None, only collect the probes' data (to build a reference)."""
    try:
        nb = read_notebook(path)
    except (OSError, ValueError) as exc:
        return Outcome(student, "invalid", note=str(exc))
    parent = Path(tempfile.mkdtemp(prefix="vae-grade-", dir=scratch))
    mounted = sandbox.mount_scratch(parent, limits)  # the whole folder: notebook, results, log; size-capped
    try:
        workdir = parent / "box"
        _prepare(workdir, nb)
        base = sandbox.SANDBOX_MOUNT if strong else str(workdir)
        nonce = secrets.token_hex(16)
        job = {"base": base, "notebook": "submission.ipynb", "out_dir": "out", "nonce": nonce,
               "probes_source": assignment.probes_source, "probes": [p.grade_id for p in assignment.checks],
               "cell_seconds": limits.cell_seconds, "probe_seconds": min(limits.cell_seconds, 120)}
        run = sandbox.run_isolated([sys.executable, f"{base}/runner/runner.py"], workdir, _clean_env(base),
                                   json.dumps(job), limits, strong=strong)
        outcome = Outcome(student, "ok", seconds=run.seconds, usage=run.usage.as_dict() if run.usage else {})
        status = _read_status(workdir / "status.json")
        outcome.status, outcome.note = _status(run, status, nb)
        out_dir = workdir / "out"
        if out_dir.is_symlink() or not out_dir.is_dir():  # replaced by the submission: trust nothing in it
            out_dir = workdir / "missing"
        budget = [MAX_SUBMISSION_ELEMENTS]
        for part in assignment.checks:
            try:
                result = load_result(out_dir / f"{nonce}-{part.grade_id}.pt", budget)
            except UnreadableResult as exc:
                reason = str(exc) if outcome.status == "ok" or "no results" not in str(exc) else outcome.note
                outcome.verdicts[part.grade_id] = Verdict(False, truncate(f"✗ not graded: {reason}", MAX_MESSAGE_CHARS))
                continue
            if result["error"]:
                error = truncate(result["error"], MAX_MESSAGE_CHARS)
                own = error.startswith(("returned", "timed out"))  # the harness's words, not an exception's
                said = f"your code {error}" if own else f"calling your code raised {error}"
                outcome.verdicts[part.grade_id] = Verdict(False, truncate(f"✗ {said}", MAX_MESSAGE_CHARS))
                continue
            outcome.values[part.grade_id] = result["values"]
            if reference is not None:
                outcome.verdicts[part.grade_id] = _judge(assignment, part.grade_id, result["values"],
                                                         reference.get(part.grade_id, {}))
        return outcome
    finally:
        if os.environ.get("VAE_GRADE_KEEP"):  # debugging the grader: keep the folder and its log
            print(f"kept {parent}", file=sys.stderr)
        else:
            if mounted:
                sandbox.release_scratch(parent)
            shutil.rmtree(parent, ignore_errors=True)


def _judge(assignment: Assignment, grade_id: str, got: dict, want: dict) -> Verdict:
    try:
        verdict = assignment.judges[grade_id](got, want)
    except Exception as exc:  # noqa: BLE001 - a judge must never crash the batch on odd data
        verdict = Verdict(False, f"✗ your results could not be judged ({type(exc).__name__})")
    if len(verdict.message) > MAX_MESSAGE_CHARS:
        verdict = Verdict(verdict.passed, truncate(verdict.message, MAX_MESSAGE_CHARS), verdict.diagnosis)
    return verdict


def _read_status(path: Path) -> dict:
    """The runner's status (untrusted, informational); {} when absent, not a regular file (e.g. a FIFO planted to
    block the grader) or unreadable."""
    try:
        data = json.loads(read_untrusted(path, MAX_STATUS_BYTES))
    except (UnreadableResult, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def describe_cell(nb: nbformat.NotebookNode, index: object) -> str:
    """How a student finds cell `index` of their notebook: "code cell 7 (`while True:`)", or a hidden test."""
    if type(index) is not int or index < 0:
        return "a cell"
    if index >= len(nb.cells):
        return "a hidden test (your function ran out of time)"
    number = sum(1 for c in nb.cells[:index + 1] if c.cell_type == "code")
    first = next((line.strip() for line in nb.cells[index].source.splitlines() if line.strip()), "")
    return f"code cell {number} (`{truncate(first, 60)}`)"


def _status(run: sandbox.SandboxResult, status: dict, nb: nbformat.NotebookNode) -> tuple[str, str]:
    """(status, note) from what the trusted side saw (the sandbox's counters first), refined by the runner's report."""
    errors = status.get("errors") if isinstance(status.get("errors"), list) else []
    names = {str(e[1]) for e in errors if isinstance(e, list) and len(e) == 2}
    if (run.usage is not None and run.usage.oom_kills) or status.get("memory_errors") or \
            names & {"MemoryError", "OutOfMemoryError"}:
        return "memory", "the notebook hit the memory limit"
    if status.get("kernel_died"):
        return "crashed", "the kernel died (or the notebook ended it) before grading finished"
    if run.timed_out:
        return "timeout", "the notebook ran past the total time limit"
    timeouts = status.get("timeouts") if isinstance(status.get("timeouts"), list) else []
    if timeouts:
        cells = "; ".join(describe_cell(nb, i) for i in timeouts[:3])
        restarted = isinstance(status.get("restarts"), int) and status["restarts"] > 0
        after = ("the kernel was restarted, the cells before it run again and the rest graded" if restarted else
                 "it was interrupted and the rest graded")
        return "timeout", truncate(f"ran past the per-cell time limit: {cells}; {after}", MAX_MESSAGE_CHARS)
    if not status:
        return "crashed", "the notebook stopped the grader before it finished"
    if status.get("runner_error"):
        return "crashed", f"the notebook could not be run: {str(status['runner_error'])[:200]}"
    return "ok", ""
