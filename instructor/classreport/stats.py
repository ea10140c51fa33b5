"""What the class report counts, from a `GradeSet`: no drawing, no HTML, so the tests assert the numbers.

* `score_distributions`: per exercise and for the totals, every student's points (written answers only once graded).
* `mistakes`: per exercise, the diagnosed mistakes ranked by the number of students who made them. A student counts
  once per mistake and exercise, however many of the exercise's parts named it; a failed part without a diagnosis
  counts as "other", with an example message.
* `statuses`, `grading_time`, `written_pending`.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass

from instructor.grading.grader import STATUSES
from instructor.grading.gradeset import GradeSet
from instructor.release import STUB_MARKDOWN

OTHER = "other"


@dataclass(frozen=True)
class Distribution:
    """The points of every student (who has a score) in one exercise or total, out of `maximum`."""

    label: str
    maximum: float
    extra_credit: bool
    scores: list[float]

    @property
    def mean(self) -> float:
        return statistics.mean(self.scores) if self.scores else 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.scores) if self.scores else 0.0

    @property
    def full_marks(self) -> int:
        return sum(1 for s in self.scores if s >= self.maximum)


@dataclass(frozen=True)
class Mistake:
    """A named mistake (or "other") in one exercise: how many students made it, in which parts, one message."""

    exercise: str
    diagnosis: str
    students: int
    grade_ids: tuple[str, ...]
    example: str


@dataclass(frozen=True)
class Pending:
    """A written question: how many students still await a grade (with an answer / with none), how many graded."""

    exercise: str
    points: float
    extra_credit: bool
    answered: int
    unanswered: int
    graded: int


@dataclass(frozen=True)
class Timing:
    """Grading time of the submissions that ran (status other than missing)."""

    seconds: list[float]

    @property
    def total(self) -> float:
        return sum(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else 0.0

    @property
    def longest(self) -> float:
        return max(self.seconds, default=0.0)


def score_distributions(grades: GradeSet) -> list[Distribution]:
    """One distribution per exercise (notebook order), then the regular total and the extra-credit total."""
    extra = grades.extra_exercises()
    maxima = grades.exercise_maxima()
    per_student = [grades.exercise_points(s) for s in grades.students]
    result = [Distribution(f"Exercise {e}", m, e in extra, [p[e] for p in per_student if p[e] is not None])
              for e, m in maxima.items()]
    for flag, label in ((False, "Total"), (True, "Extra credit total")):
        result.append(Distribution(label, grades.assignment.max_points(flag), flag,
                                   [grades.total(s, flag) for s in grades.students]))
    return result


def mistakes(grades: GradeSet) -> dict[str, list[Mistake]]:
    """{exercise: mistakes ranked by students (most first, then by id)} for the auto-graded exercises."""
    exercise_of = {p.grade_id: p.exercise for p in grades.assignment.checks}
    students: dict[tuple[str, str], set[str]] = {}
    parts: dict[tuple[str, str], set[str]] = {}
    examples: dict[tuple[str, str], str] = {}
    for s in grades.students:  # sorted by student: the example message is the first student's, stable
        for gid, verdict in s.verdicts.items():
            if verdict.passed or gid not in exercise_of:
                continue
            key = (exercise_of[gid], verdict.diagnosis or OTHER)
            students.setdefault(key, set()).add(s.student)
            parts.setdefault(key, set()).add(gid)
            examples.setdefault(key, verdict.message)
    ranked: dict[str, list[Mistake]] = {e: [] for e in dict.fromkeys(exercise_of.values())}
    for (exercise, diagnosis), who in students.items():
        ranked[exercise].append(Mistake(exercise, diagnosis, len(who), tuple(sorted(parts[exercise, diagnosis])),
                                        examples[exercise, diagnosis]))
    for found in ranked.values():
        found.sort(key=lambda m: (-m.students, m.diagnosis == OTHER, m.diagnosis))
    return ranked


def statuses(grades: GradeSet) -> dict[str, int]:
    """{status: students} for every status, in the grader's order (zeros included)."""
    counts = Counter(s.status for s in grades.students)
    return {status: counts[status] for status in STATUSES}


def grading_time(grades: GradeSet) -> Timing:
    return Timing([s.seconds for s in grades.students if s.status != "missing"])


def written_pending(grades: GradeSet) -> list[Pending]:
    """Per written question, in notebook order; an answer left as the release's placeholder counts as none."""
    result = []
    for p in grades.assignment.written:
        waiting = [s for s in grades.students if p.exercise not in s.manual]
        answered = sum(1 for s in waiting if s.written.get(p.exercise, "").strip() not in ("", STUB_MARKDOWN))
        result.append(Pending(p.exercise, p.points, p.extra_credit, answered, len(waiting) - answered,
                              len(grades.students) - len(waiting)))
    return result
