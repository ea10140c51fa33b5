"""The class report as one self-contained HTML page: inline CSS, figures as data URIs, no script, no link out.

Accessibility: one h1, h2 per section, h3 per exercise; every table has a caption and header cells with a scope;
every figure has alt text (and the numbers are in a table next to it); text is near-black on white (contrast above
12:1). Student ids appear only in the per-student table, which is written only when asked for.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from instructor.classreport import figures, stats
from instructor.grading.gradeset import GradeSet

PER_STUDENT_MARK = '<meta name="vae-report-per-student" content="yes">'

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a; background: #fff;
       max-width: 72rem; margin: 0 auto; padding: 1.5rem; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 2px solid #0072B2; }
h3 { margin-top: 1.4rem; }
table { border-collapse: collapse; margin: .6rem 0 1.2rem; font-size: .92rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid #8a8a8a; padding: .25rem .55rem; text-align: left; vertical-align: top; }
thead th { background: #e3ecf5; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #404040; font-size: .9rem; }
.note { background: #fff4d6; border-left: 4px solid #8a5a00; padding: .5rem .8rem; }
.muted { color: #4d4d4d; } code { background: #f2f2f2; padding: 0 .2rem; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") if x != int(x) else f"{int(x)}"


def table(caption: str, header: Sequence[str], rows: Iterable[Sequence[object]], numeric: frozenset[int] | set[int] = frozenset(),
          row_header: bool = True) -> str:
    """A table with a caption, column headers and (by default) the first cell of each row as its header."""
    head = "".join(f'<th scope="col"{" class=num" if i in numeric else ""}>{_e(h)}</th>' for i, h in enumerate(header))
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            cls = ' class="num"' if i in numeric else ""
            cells.append(f'<th scope="row"{cls}>{_e(value)}</th>' if i == 0 and row_header else f"<td{cls}>{_e(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _figure(fig: figures.Embedded | None) -> str:
    if fig is None:
        return ""
    return (f'<figure><img src="{fig.data_uri}" alt="{_e(fig.alt)}">'
            f"<figcaption>{_e(fig.title)}. The numbers are in the table.</figcaption></figure>")


def _scores(grades: GradeSet) -> str:
    dists = stats.score_distributions(grades)
    exercises = [d for d in dists if d.label.startswith("Exercise")]
    totals = [d for d in dists if not d.label.startswith("Exercise")]
    rows = [(d.label + (" (extra credit)" if d.extra_credit and d in exercises else ""), _num(d.maximum), len(d.scores),
             _num(d.mean), _num(d.median), d.full_marks) for d in dists]
    parts = ["<h2 id=scores>Scores</h2>",
             '<p class="muted">Written answers count once graded by hand (the “scored” column says how many are).</p>',
             table("Points per exercise and in total", ["part", "points possible", "scored", "mean", "median",
                                                        "full marks"], rows, numeric={1, 2, 3, 4, 5}),
             _figure(figures.score_histograms([d for d in exercises if not d.extra_credit], "Regular exercises")),
             _figure(figures.score_histograms([d for d in exercises if d.extra_credit], "Extra-credit exercises")),
             _figure(figures.score_histograms(totals, "Totals: regular and extra credit apart"))]
    return "\n".join(parts)


def _mistakes(grades: GradeSet) -> str:
    ranked = stats.mistakes(grades)
    parts = ["<h2 id=mistakes>Mistakes by exercise</h2>",
             '<p class="muted">Students per mistake the checks and hidden tests diagnosed (a student counts once per '
             "mistake and exercise). “other”: failed parts without a named diagnosis, with one example message.</p>",
             _figure(figures.mistakes_chart(ranked, len(grades.students)))]
    extra = grades.extra_exercises()
    for exercise, found in ranked.items():
        parts.append(f"<h3>Exercise {_e(exercise)}{' (extra credit)' if exercise in extra else ''}</h3>")
        if not found:
            parts.append("<p>Every student passed every part.</p>")
            continue
        parts.append(table(f"Mistakes in exercise {exercise}, most common first",
                           ["mistake", "students", "parts", "example message"],
                           [(m.diagnosis, m.students, ", ".join(m.grade_ids), m.example) for m in found], numeric={1}))
    return "\n".join(parts)


def _statuses(grades: GradeSet) -> str:
    counts = stats.statuses(grades)
    timing = stats.grading_time(grades)
    return "\n".join([
        "<h2 id=statuses>Statuses and grading time</h2>",
        table("Submissions per status", ["status", "students"], counts.items(), numeric={1}),
        f"<p>{len(timing.seconds)} submissions ran: median {timing.median:.1f} s, longest {timing.longest:.1f} s, "
        f"{timing.total:.0f} s of grading in all (missing ones do not run).</p>",
        _figure(figures.status_chart(counts, timing))])


def _written(grades: GradeSet) -> str:
    pending = stats.written_pending(grades)
    if not pending:
        return "<h2 id=written>Written answers to grade</h2><p>This assignment has no written answers.</p>"
    rows = [(p.exercise + (" (extra credit)" if p.extra_credit else ""), _num(p.points), p.answered + p.unanswered,
             p.answered, p.unanswered, p.graded) for p in pending]
    return "\n".join([
        "<h2 id=written>Written answers to grade</h2>",
        table("Written answers per question", ["question", "points", "still to grade", "of which answered",
                                               "of which blank", "graded"], rows, numeric={1, 2, 3, 4, 5}),
        f"<p>Fill in <code>{_e(grades.folder.name)}/manual_grades.csv</code>, then "
        f"<code>python -m instructor.grade merge {_e(grades.folder)} {_e(grades.folder)}/manual_grades.csv</code> "
        "(the merge rebuilds this page).</p>"])


def _per_student(grades: GradeSet) -> str:
    exercises = list(grades.exercise_maxima())
    rows = []
    for s in grades.students:
        points = grades.exercise_points(s)
        rows.append([s.student, s.status, *["" if points[e] is None else _num(points[e]) for e in exercises],
                     _num(grades.total(s, False)), _num(grades.total(s, True)), " ".join(grades.pending(s)),
                     f"{s.seconds:.1f}"])
    header = ["student", "status", *[f"ex {e}" for e in exercises], "total", "extra credit", "to grade", "seconds"]
    numeric = set(range(2, 2 + len(exercises) + 2)) | {len(header) - 1}
    return "<h2 id=students>Per student</h2>" + table("Points per student", header, rows, numeric=numeric)


def render(grades: GradeSet, per_student: bool = False) -> str:
    """The whole page."""
    a = grades.assignment
    warnings = "".join(f'<p class="note" role="note">{_e(w)}</p>' for w in grades.warnings)
    nav = ["scores", "mistakes", "statuses", "written"] + (["students"] if per_student else [])
    sections = [_scores(grades), _mistakes(grades), _statuses(grades), _written(grades)]
    if per_student:
        sections.append(_per_student(grades))
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">",
        PER_STUDENT_MARK if per_student else "",
        f"<title>Class report: {_e(a.name)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>Class report: {_e(a.name)}</h1>",
        f'<p class="muted">{len(grades.students)} students, from <code>{_e(grades.folder / "grades.json")}</code>; '
        f"{_num(a.max_points(False))} regular points and {_num(a.max_points(True))} extra credit. "
        "No student is named outside the per-student table.</p>",
        warnings,
        "<nav aria-label=\"sections\"><ul>" + "".join(f'<li><a href="#{n}">{n.capitalize()}</a></li>' for n in nav)
        + "</ul></nav>",
        *sections, "</main></body></html>", ""])
