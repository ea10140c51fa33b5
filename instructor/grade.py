"""Grade a folder of submitted notebooks: gradebook, feedback per student, summary.

    python -m instructor.grade run 05_vae submissions/ --out grades/05      # grade (make grade NB=05 SUB=submissions)
    python -m instructor.grade merge grades/05 grades/05/manual_grades.csv  # add hand-graded written answers
    python -m instructor.grade reference 05_vae 04                        # rebuild the reference results now

Submissions layout (the only one accepted): one folder per student, named by the student's id, holding the
notebook under the assignment's file name: ``submissions/<student>/05_vae.ipynb``. A ``.zip`` of that layout works
too, as does ``submissions/<student>.zip`` holding ``05_vae.ipynb``. Submissions are read, never modified.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from instructor.grading import report, sandbox
from instructor.grading.grader import Outcome, grade_notebook, read_notebook
from instructor.grading.reference import build_reference, ensure_reference
from instructor.grading.spec import Assignment, AssignmentError, load_assignment, load_reference

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
MAX_ZIP_BYTES = 200 * 1024 * 1024


class SubmissionError(ValueError):
    """The submissions folder cannot be used as given; the message says what to do."""


def _extract_zip(archive: Path, into: Path) -> None:
    """Extract only .ipynb members, refusing absolute paths, '..', links and oversized archives."""
    try:
        with zipfile.ZipFile(archive) as z:
            members = [m for m in z.infolist() if not m.is_dir() and m.filename.endswith(".ipynb")
                       and "__MACOSX" not in m.filename]
            if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
                raise SubmissionError(f"{archive.name} unpacks to more than {MAX_ZIP_BYTES // 2**20} MB")
            for m in members:
                parts = Path(m.filename).parts
                if m.filename.startswith("/") or ".." in parts or (m.external_attr >> 16) & 0o170000 == 0o120000:
                    continue
                target = into.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(m) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile:
        raise SubmissionError(f"{archive.name} is not a valid zip file") from None


def _single_top_folder(folder: Path) -> Path:
    """A zip often wraps everything in one folder: look inside it."""
    entries = [e for e in folder.iterdir() if not e.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir() and not any(e.suffix == ".ipynb" for e in entries[0].iterdir()):
        return entries[0]
    return folder


def discover(submissions: Path, assignment: str, scratch: Path) -> tuple[dict[str, Path | None], list[str]]:
    """{student: notebook path or None when missing}, and messages about entries that do not follow the layout."""
    if not submissions.exists():
        raise SubmissionError(f"{submissions} does not exist")
    if submissions.is_file():
        if submissions.suffix != ".zip":
            raise SubmissionError(f"{submissions} is a file; give a folder of <student>/{assignment}.ipynb or a .zip")
        unpacked = scratch / "unzipped"
        _extract_zip(submissions, unpacked)
        submissions = _single_top_folder(unpacked)
    found: dict[str, Path | None] = {}
    problems = []
    expected = f"{assignment}.ipynb"
    for entry in sorted(submissions.iterdir()):
        if entry.name.startswith("."):
            continue
        student = entry.stem if entry.suffix == ".zip" else entry.name
        if entry.is_file() and entry.suffix != ".zip":
            problems.append(f"skipped {entry.name}: submissions must be <student>/{expected} (a folder per student)")
            continue
        if not STUDENT_ID.match(student):
            problems.append(f"skipped {entry.name!r}: a student id may use letters, digits and . _ @ + - only")
            continue
        folder = entry
        if entry.is_file():
            folder = scratch / "zips" / student
            try:
                _extract_zip(entry, folder)
            except SubmissionError as exc:
                problems.append(f"{student}: {exc}")
                found[student] = None
                continue
            if folder.is_dir() and not (folder / expected).is_file():  # e.g. dave.zip holding dave/<assignment>.ipynb
                inner = [d for d in folder.iterdir() if d.is_dir() and (d / expected).is_file()]
                folder = inner[0] if len(inner) == 1 else folder
        notebook = folder / expected
        if notebook.is_file() and not notebook.is_symlink():
            found[student] = notebook
        else:
            others = sorted(p.name for p in folder.glob("*.ipynb")) if folder.is_dir() else []
            found[student] = None
            problems.append(f"{student}: no {expected}" + (f" (found {', '.join(others)})" if others else ""))
    return found, problems


def written_answers(path: Path, assignment: Assignment) -> dict[str, str]:
    """The text of each written answer in a submission (for the feedback file and the TA)."""
    try:
        nb = read_notebook(path)
    except (OSError, ValueError):
        return {}
    answers = {}
    for i, cell in enumerate(nb.cells[:-1]):
        course = cell.get("metadata", {}).get("course", {})
        if "written-answer" in cell.get("metadata", {}).get("tags", []) and course.get("points"):
            answers[str(course["exercise"])] = nb.cells[i + 1].source[:5000]
    return answers


LIMIT_OPTIONS = {  # option: (Limits field, help); the defaults are Limits' own
    "--cell-timeout": ("cell_seconds", "seconds per cell or hidden test"),
    "--timeout": ("total_seconds", "seconds per notebook in all"),
    "--memory-mb": ("memory_mb", "memory of all of one submission's processes together, in MB"),
    "--max-processes": ("max_processes", "processes and threads of one submission"),
    "--cpus": ("cpus", "CPU cores one submission may use"),
    "--disk-mb": ("disk_mb", "disk space of one submission, in MB"),
}


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    """The options that set `sandbox.Limits` (shared with `instructor.gradescope build`)."""
    defaults = sandbox.Limits()
    for option, (name, text) in LIMIT_OPTIONS.items():
        default = getattr(defaults, name)
        parser.add_argument(option, dest=name, type=type(default), default=default, metavar="N",
                            help=f"{text} (default {default:g})")


def limits_from(args: argparse.Namespace) -> sandbox.Limits:
    """`sandbox.Limits` from the options of `add_limit_options`; ValueError when one is not positive."""
    values = {name: getattr(args, name) for name, _ in LIMIT_OPTIONS.values()}
    bad = [option for option, (name, _) in LIMIT_OPTIONS.items() if values[name] <= 0]
    if bad:
        raise ValueError(f"{', '.join(bad)} must be positive")
    return sandbox.Limits(**values)


def _isolation(args: argparse.Namespace) -> bool:
    """True for strong isolation; exit with advice when it is unavailable and weak was not allowed."""
    reason = sandbox.check_isolation()
    if reason is None:
        return True
    if args.allow_weak_isolation:
        print(f"WARNING: grading with weak isolation ({reason}). Submissions can read files the grading user can "
              "read (solutions included) and use the network. Grade on a Linux machine with unshare for real grades.",
              file=sys.stderr)
        return False
    sys.exit(f"error: strong isolation is not available here: {reason}\n"
             "Grade on Linux with util-linux (unshare) as root or with unprivileged user namespaces enabled, "
             "or pass --allow-weak-isolation to grade anyway (not safe against cheating).")


def grade_batch(assignment: Assignment, notebooks: dict[str, Path | None], limits: sandbox.Limits, strong: bool,
                workers: int, progress: bool = True) -> list[Outcome]:
    """Grade every submission, `workers` at a time; missing ones get status 'missing'."""
    reference = load_reference(assignment)
    outcomes = [Outcome(s, "missing", note="no notebook submitted") for s, p in notebooks.items() if p is None]
    todo = {s: p for s, p in notebooks.items() if p is not None}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"grading {assignment.name}", unit="notebook", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(grade_notebook, assignment, path, student, reference, limits, strong): student
                   for student, path in todo.items()}
        for future in as_completed(futures):
            outcomes.append(future.result())
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    return sorted(outcomes, key=lambda o: o.student)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m instructor.grade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="run|merge|reference")
    run = commands.add_parser("run", help="grade a folder (or .zip) of submissions")
    run.add_argument("assignment", help="e.g. 05_vae or 05")
    run.add_argument("submissions", type=Path, help="folder (or .zip) of <student>/<assignment>.ipynb")
    run.add_argument("--out", type=Path, required=True, help="folder for gradebook.csv, feedback/, grades.json")
    run.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="submissions graded in parallel")
    add_limit_options(run)
    run.add_argument("--manual", type=Path, help="filled-in manual_grades.csv to merge while grading")
    run.add_argument("--overwrite", action="store_true", help="replace the reports already in --out")
    run.add_argument("--allow-weak-isolation", action="store_true",
                     help="grade even where namespaces are unavailable (NOT safe against cheating)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--report", action="store_true",
                     help="also write report.html, the class report (python -m instructor.classreport)")
    run.set_defaults(handler=_grade)
    merge = commands.add_parser("merge", help="add hand-graded written answers to a graded folder")
    merge.add_argument("grades", type=Path, help="the folder a `run` wrote (holds grades.json)")
    merge.add_argument("manual", type=Path, help="the filled-in manual_grades.csv")
    merge.set_defaults(handler=_merge)
    reference = commands.add_parser("reference", help="build the reference results of assignments now")
    reference.add_argument("assignments", nargs="+", help="e.g. 05_vae 04")
    add_limit_options(reference)
    reference.set_defaults(handler=_reference)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except (AssignmentError, SubmissionError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _reference(args: argparse.Namespace) -> int:
    for name in args.assignments:
        start = time.monotonic()
        assignment = build_reference(name, limits_from(args))
        print(f"{assignment.name}: reference results written ({time.monotonic() - start:.1f} s)")
    return 0


def _grade(args: argparse.Namespace) -> int:
    limits = limits_from(args)
    assignment = load_assignment(args.assignment)
    submissions = args.submissions.resolve()
    out = args.out.resolve()
    if (out / "gradebook.csv").exists() and not args.overwrite:
        raise SubmissionError(f"{out} already holds a gradebook: choose another --out or pass --overwrite")
    if out == submissions or submissions in out.parents:
        raise SubmissionError("--out must not be inside the submissions folder (submissions are never modified)")
    if not submissions.exists():
        raise SubmissionError(f"{submissions} does not exist")
    manual = report.read_manual(args.manual, assignment) if args.manual else {}
    strong = _isolation(args)
    if (missing := sandbox.check_limits()) is not None:
        print(f"WARNING: no per-submission limits ({missing}): memory, processes and CPU are limited per process only, "
              "so one submission can slow down or starve the others. Grade as root on Linux for those limits.",
              file=sys.stderr)
    ensure_reference(assignment, limits)  # built once from the solution notebook, then reused
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vae-grade-batch-") as scratch:
        notebooks, problems = discover(submissions, assignment.name, Path(scratch))
        if not notebooks:
            raise SubmissionError(f"no submissions found in {submissions}: expected <student>/{assignment.name}.ipynb"
                                  + ("\n" + "\n".join(problems) if problems else ""))
        outcomes = grade_batch(assignment, notebooks, limits, strong, args.workers, not args.no_progress)
        written = {s: written_answers(p, assignment) for s, p in notebooks.items() if p is not None}
    report.write_reports(out, assignment, outcomes, written, manual)
    for line in problems:
        print(f"note: {line}", file=sys.stderr)
    print(report.summary(assignment, outcomes, time.monotonic() - start, args.workers))
    print(f"gradebook: {out / 'gradebook.csv'}; feedback: {out / 'feedback'}")
    if args.report:
        from instructor.classreport.build import build_report

        print(f"class report: {build_report(out)}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    import json

    out, manual_path = args.grades, args.manual
    data_path = out / "grades.json"
    if not data_path.is_file():
        raise SubmissionError(f"{data_path} not found: grade first, then merge manual scores into that folder")
    data = json.loads(data_path.read_text())
    assignment = load_assignment(data["assignment"])
    from instructor.classreport.build import rebuild_if_present
    from instructor.grading.gradeset import check_fingerprint

    check_fingerprint(data, assignment)  # points of another version of the notebook would be wrong
    outcomes, written = report.outcomes_from_json(data)
    report.write_reports(out, assignment, outcomes, written, report.read_manual(manual_path, assignment))
    print(f"merged {manual_path} into {out / 'gradebook.csv'} and {data_path}")
    if (rebuilt := rebuild_if_present(out)) is not None:
        print(f"class report rebuilt: {rebuilt}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
