"""`python -m instructor.grade run ... --report` writes the class report at the end of a batch (grading replaced by the
corpus's outcomes: nothing runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

from instructor import grade
from tests.classreport.conftest import NB02
from tests.classreport.corpus import outcomes

ROOT = Path(__file__).resolve().parents[2]


def test_grade_with_report_writes_report_html_after_the_batch(tmp_path, monkeypatch, capsys):
    from instructor.grading.spec import load_assignment

    graded, _ = outcomes(load_assignment(NB02))
    subs = tmp_path / "subs"
    for o in graded:
        (subs / o.student).mkdir(parents=True)
        if o.status != "missing":
            shutil.copy(ROOT / "notebooks" / f"{NB02}.ipynb", subs / o.student / f"{NB02}.ipynb")
    monkeypatch.setattr(grade, "_isolation", lambda args: True)
    monkeypatch.setattr(grade, "ensure_reference", lambda *a, **k: None)
    monkeypatch.setattr(grade, "grade_batch", lambda *a, **k: graded)
    out = tmp_path / "grades"
    assert grade.main(["run", "02", str(subs), "--out", str(out), "--no-progress", "--report"]) == 0
    assert f"class report: {out / 'report.html'}" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    assert "<h1>Class report: 02_latent_variables_elbo</h1>" in page and "sol-a" not in page
    assert "responsibilities_not_normalised" in page
