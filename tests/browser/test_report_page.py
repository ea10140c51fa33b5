"""The class report of notebook 05 in headless Chromium: it opens from disk without a single network request, every
figure decodes, and every text passes WCAG AA contrast. A full-page screenshot is kept in build/report-artifacts/.

Runs with the browser suite (`make test-browser`); needs no JupyterLab server.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from instructor.classreport.build import build_report
from tests.browser.lab import ROOT
from tests.classreport.corpus import write_class

REPORT_ARTIFACTS = ROOT / "build" / "report-artifacts"

# The contrast ratio (WCAG 2) of every element that holds text, against the first opaque background behind it.
CONTRAST = """() => {
  const lum = (c) => { const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => v / 255)
    .map((v) => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const opaque = (c) => !c.startsWith('rgba') || Number(c.match(/[\\d.]+/g)[3]) === 1;
  const background = (el) => { for (; el; el = el.parentElement) { const c = getComputedStyle(el).backgroundColor;
    if (opaque(c)) return c; } return 'rgb(255, 255, 255)'; };
  const worst = [];
  for (const el of document.querySelectorAll('body *')) {
    if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const a = lum(getComputedStyle(el).color), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) worst.push(`${el.tagName} ${ratio.toFixed(2)}: ${el.textContent.slice(0, 40)}`);
  }
  return worst;
}"""


@pytest.fixture(scope="module")
def report_05(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """report.html of the notebook-05 corpus (solutions, blanks, typical mistakes, every status)."""
    folder = write_class(tmp_path_factory.mktemp("grades") / "05", "05_vae")
    return build_report(folder)


def test_report_opens_offline_with_no_request_and_keeps_a_screenshot(browser, report_05: Path) -> None:
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto(report_05.as_uri(), wait_until="load")
        page.wait_for_load_state("networkidle")
        assert [u for u in requests if not u.startswith("data:")] == [report_05.as_uri()], requests
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete && e.naturalWidth > 0, e.alt])")
        assert len(images) == 5 and all(ok and len(alt) > 40 for ok, alt in images)
        assert page.locator("h1").inner_text() == "Class report: 05_vae"
        headings = page.eval_on_selector_all("h2", "els => els.map(e => e.textContent)")
        assert headings == ["Scores", "Mistakes by exercise", "Statuses and grading time", "Written answers to grade"]
        row = page.locator("table", has_text="Mistakes in exercise 5.2").locator("tr", has_text="mean_over_pixels")
        assert row.locator("td").first.inner_text() == "4"
        assert page.evaluate(CONTRAST) == []
        shutil.rmtree(REPORT_ARTIFACTS, ignore_errors=True)
        REPORT_ARTIFACTS.mkdir(parents=True)
        page.screenshot(path=str(REPORT_ARTIFACTS / "report-05.png"), full_page=True)
        shutil.copy(report_05, REPORT_ARTIFACTS / "report-05.html")
    finally:
        page.close()
