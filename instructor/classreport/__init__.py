"""The class report: what a class got wrong in one assignment, as one self-contained HTML page (never regrades).

    python -m instructor.classreport grades/05 [--per-student] [--out grades/05/report.html]

`stats` counts (scores, diagnosed mistakes, statuses, written answers to grade), `figures` draws them as embedded
PNGs, `page` writes the HTML.
"""
