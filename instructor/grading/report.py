"""What the grader writes: gradebook.csv, feedback/<student>.md, manual_grades.csv, grades.json, the summary."""

from __future__ import annotations

import csv
import hashlib
import json
import statistics
from collections import Counter
from pathlib import Path

from instructor.grading.grader import STATUSES, Outcome
from instructor.grading.judge import Verdict
from instructor.grading.spec import Assignment

MANUAL_COLUMNS = ["student", "exercise", "max_points", "points", "comment"]


def _num(x: float) -> str:
    return f"{x:g}"


def parts_fingerprint(assignment: Assignment) -> dict:
    """The graded parts and their points, and one hash of them: grades.json records it, and whoever reads a
    grades.json later (class report, LMS export, merge) refuses one made for another version of the assignment."""
    parts = [[p.grade_id, p.exercise, p.points, p.extra_credit, p.kind] for p in assignment.parts]
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return {"sha256": digest, "parts": parts}


def outcomes_to_json(assignment: Assignment, outcomes: list[Outcome], written: dict[str, dict[str, str]],
                     manual: dict[str, dict[str, float]] | None = None) -> dict:
    """Everything needed to rewrite the reports later (e.g. after manual grading), without regrading: per student
    the verdicts, the written answers and the hand-graded points merged so far; the assignment's parts fingerprint."""
    manual = manual or {}
    return {"assignment": assignment.name, "parts_fingerprint": parts_fingerprint(assignment), "students": [
        {"student": o.student, "status": o.status, "note": o.note, "seconds": round(o.seconds, 2),
         "verdicts": {gid: [v.passed, v.message, v.diagnosis] for gid, v in o.verdicts.items()},
         "written": written.get(o.student, {}), "manual": manual.get(o.student, {}), "usage": o.usage}
        for o in outcomes]}


def outcomes_from_json(data: dict) -> tuple[list[Outcome], dict[str, dict[str, str]]]:
    outcomes, written = [], {}
    for s in data["students"]:
        outcomes.append(Outcome(s["student"], s["status"], {g: Verdict(bool(v[0]), str(v[1]), str(v[2]) if len(v) > 2 else "")
                                                             for g, v in s["verdicts"].items()}, s["seconds"], s["note"],
                                usage=s.get("usage", {})))
        written[s["student"]] = s.get("written", {})
    return outcomes, written


def read_manual(path: Path, assignment: Assignment) -> dict[str, dict[str, float]]:
    """{student: {exercise: points}} from a filled-in manual_grades.csv; blank points are skipped.

    Raises ValueError naming the row for unknown exercises, non-numbers or points above the maximum.
    """
    maxima = {p.exercise: p.points for p in assignment.written}
    scores: dict[str, dict[str, float]] = {}
    with open(path, newline="") as handle:
        for row_number, row in enumerate(csv.DictReader(handle), start=2):
            if not (row.get("points") or "").strip():
                continue
            exercise, student = (row.get("exercise") or "").strip(), (row.get("student") or "").strip()
            if exercise not in maxima:
                raise ValueError(f"{path.name} row {row_number}: {exercise!r} is not a written answer of "
                                 f"{assignment.name} (those are {', '.join(maxima)})")
            try:
                points = float(row["points"])
            except ValueError:
                raise ValueError(f"{path.name} row {row_number}: points {row['points']!r} is not a number") from None
            if not 0 <= points <= maxima[exercise]:
                raise ValueError(f"{path.name} row {row_number}: {points:g} points for {exercise}, "
                                 f"which is worth {maxima[exercise]:g}")
            scores.setdefault(student, {})[exercise] = points
    return scores


def gradebook_rows(assignment: Assignment, outcomes: list[Outcome],
                   manual: dict[str, dict[str, float]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: each exercise's points, regular total, extra credit, status."""
    exercises = assignment.exercises
    extra = {p.exercise for p in assignment.parts if p.extra_credit}
    header = ["student", "status", *[f"ex {e}" + (" (extra)" if e in extra else "") for e in exercises],
              f"total (of {_num(assignment.max_points(False))})", f"extra credit (of {_num(assignment.max_points(True))})",
              "written answers", "seconds", "note"]
    rows = []
    for o in sorted(outcomes, key=lambda o: o.student):
        auto = o.exercise_points(assignment)
        hand = manual.get(o.student, {})
        cells, total, bonus = [], 0.0, 0.0
        for e in exercises:
            written_part = next((p for p in assignment.written if p.exercise == e), None)
            if written_part is not None:
                score = hand.get(e)
                cells.append("" if score is None else _num(score))
            else:
                score = auto.get(e, 0.0)
                cells.append(_num(score))
            if score is not None:
                if e in extra:
                    bonus += score
                else:
                    total += score
        pending = [p.exercise for p in assignment.written if p.exercise not in hand]
        rows.append([o.student, o.status, *cells, _num(total), _num(bonus),
                     "to grade: " + " ".join(pending) if pending else "graded", f"{o.seconds:.1f}", o.note])
    return header, rows


def write_reports(out: Path, assignment: Assignment, outcomes: list[Outcome], written: dict[str, dict[str, str]],
                  manual: dict[str, dict[str, float]]) -> None:
    """Write gradebook.csv, feedback/*.md, manual_grades.csv (template; never overwritten) and grades.json (with the
    manual points, so the class report and the LMS export read the merged grades)."""
    out.mkdir(parents=True, exist_ok=True)
    header, rows = gradebook_rows(assignment, outcomes, manual)
    with open(out / "gradebook.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    (out / "grades.json").write_text(json.dumps(outcomes_to_json(assignment, outcomes, written, manual), indent=1))
    feedback = out / "feedback"
    feedback.mkdir(exist_ok=True)
    for o in outcomes:
        (feedback / f"{o.student}.md").write_text(feedback_markdown(assignment, o, written.get(o.student, {}),
                                                                    manual.get(o.student, {})))
    template = out / "manual_grades.csv"
    if assignment.written and not template.exists():
        with open(template, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(MANUAL_COLUMNS)
            for o in sorted(outcomes, key=lambda o: o.student):
                for p in assignment.written:
                    writer.writerow([o.student, p.exercise, _num(p.points), "", ""])


def feedback_markdown(assignment: Assignment, o: Outcome, written: dict[str, str], manual: dict[str, float]) -> str:
    """One student's feedback: status, totals, every graded part with its points and the check's message."""
    lines = [f"# Feedback: {assignment.name} — {o.student}", ""]
    lines.append(f"Status: **{o.status}**" + (f" ({o.note})" if o.note else ""))
    auto_regular, auto_extra = o.points(assignment, False), o.points(assignment, True)
    hand_regular = sum(v for e, v in manual.items() if not _is_extra(assignment, e))
    hand_extra = sum(v for e, v in manual.items() if _is_extra(assignment, e))
    lines += ["", f"Total: **{_num(auto_regular + hand_regular)} / {_num(assignment.max_points(False))}**, "
                  f"extra credit {_num(auto_extra + hand_extra)} / {_num(assignment.max_points(True))}", ""]
    lines += ["| exercise | part | points | message |", "|---|---|---|---|"]
    for p in assignment.parts:
        tag = " (extra)" if p.extra_credit else ""
        if p.kind == "written":
            score = manual.get(p.exercise)
            shown = "to be graded by hand" if score is None else f"{_num(score)} / {_num(p.points)}"
            lines.append(f"| {p.exercise}{tag} | written answer | {shown} | graded by the course staff |")
            continue
        v = o.verdicts.get(p.grade_id, Verdict(False, "✗ not graded"))
        earned = p.points if v.passed else 0
        message = v.message.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {p.exercise}{tag} | {p.grade_id} | {_num(earned)} / {_num(p.points)} | {message} |")
    if written:
        lines += ["", "## Your written answers", ""]
        for exercise, text in written.items():
            lines += [f"**{exercise}**", "", "> " + text.strip().replace("\n", "\n> "), ""]
    return "\n".join(lines) + "\n"


def _is_extra(assignment: Assignment, exercise: str) -> bool:
    return any(p.extra_credit for p in assignment.parts if p.exercise == exercise)


def summary(assignment: Assignment, outcomes: list[Outcome], seconds: float, workers: int) -> str:
    """Counts per status, mean/median points per exercise, time taken."""
    counts = Counter(o.status for o in outcomes)
    lines = [f"{assignment.name}: {len(outcomes)} submission(s) graded in {seconds:.1f} s with {workers} worker(s)",
             "status: " + ", ".join(f"{s} {counts[s]}" for s in STATUSES if counts[s])]
    maxima: dict[str, float] = {}
    for p in assignment.checks:
        maxima[p.exercise] = maxima.get(p.exercise, 0) + p.points
    for exercise, maximum in maxima.items():
        scores = [o.exercise_points(assignment).get(exercise, 0.0) for o in outcomes]
        if scores:
            lines.append(f"  ex {exercise:>5}: mean {statistics.mean(scores):5.2f}  median "
                         f"{statistics.median(scores):5.2f}  of {_num(maximum)}")
    totals = [o.points(assignment, False) for o in outcomes]
    if totals:
        lines.append(f"  auto-graded total: mean {statistics.mean(totals):.2f}, median {statistics.median(totals):.2f} "
                     f"(written answers: {_num(sum(p.points for p in assignment.written))} points by hand)")
    return "\n".join(lines)
