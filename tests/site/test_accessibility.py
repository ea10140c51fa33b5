"""WCAG 2.1 AA on the course website (issue #23): build the site into a temporary folder, open every page in
headless Chromium and audit it with axe-core: no violation of impact serious or critical; every <img> has a non-empty
alt text; MathJax adds its assistive MathML (what a screen reader reads) to every formula. Everything axe finds is
written to build/site-artifacts/accessibility/site.{json,md} (beside the browser suite's, which empties its own folder).

A page with a figure without alt text shows that both checks catch it. Needs requirements-site.txt (make test-site)
and Debian's Chromium (as the browser suite).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("myst_nb", reason="the site's packages are not installed: make test-site installs them")
pytest.importorskip("axe_playwright_python", reason="requirements-dev.txt is not installed")

from tests.browser import a11y  # noqa: E402
from tests.browser.lab import CHROMIUM, CHROMIUM_ARGS, ROOT  # noqa: E402

ARTIFACTS = ROOT / "build" / "site-artifacts"

BROKEN_PAGE = """<!doctype html><html lang="en"><head><title>fixture</title></head><body><main><h1>Figure</h1>
<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==">
<img src="figure.png" alt="  "><img src="../_images/3f2a.png" alt="../_images/3f2a.png"></main></body></html>"""


def site_commands(out: Path) -> list[list[str]]:
    """The commands `make site` (and `make site-instructor`, where the Makefile has it) run, writing under `out`."""
    commands = []
    for target in ("site", "site-instructor"):
        dry = subprocess.run(["make", "-n", "--no-print-directory", target, f"OUT={out / target}"], cwd=ROOT,
                             capture_output=True, text=True)
        lines = [line for line in dry.stdout.splitlines() if "instructor.site.build" in line]
        if dry.returncode == 0 and lines:
            commands.append([sys.executable, *shlex.split(lines[0])[1:]])  # the interpreter running the tests
    assert commands, "`make -n site` runs no instructor.site.build"
    return commands


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A folder holding every edition of the site that the Makefile builds, each in its own subfolder."""
    out = tmp_path_factory.mktemp("site")
    for command in site_commands(out):
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def pages(site: Path) -> list[Path]:
    """Every HTML page of the site (the index, every notebook of each edition, search and index pages)."""
    found = sorted(p for p in site.rglob("*.html") if "_static" not in p.parts)
    assert len(found) >= 7, found
    return found


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: the site audit uses Debian's Chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))


def images_without_alt(html: str) -> list[str]:
    """The <img> tags without a text alternative (their src, shortened): no alt, a blank one, or only the image's
    file name (what Sphinx writes when a figure has no alt text, and what axe accepts)."""
    parser = _Images()
    parser.feed(html)

    def says_nothing(alt: str, src: str) -> bool:
        return not alt.strip() or alt.strip() == src or re.fullmatch(r"[\w./-]+\.(png|jpe?g|svg|gif)", alt.strip()) is not None

    return [str(img.get("src"))[:80] for img in parser.images if says_nothing(img.get("alt") or "", str(img.get("src")))]


def test_the_alt_check_catches_a_missing_a_blank_and_a_file_name_alt():
    assert images_without_alt(BROKEN_PAGE) == [BROKEN_PAGE.split('src="')[1].split('"')[0][:80], "figure.png",
                                               "../_images/3f2a.png"]
    assert images_without_alt('<img src="a.png" alt="A line plot of the loss against the epoch">') == []


def test_every_image_has_a_text_alternative(site):
    missing = {str(p.relative_to(site)): bad for p in pages(site) if (bad := images_without_alt(p.read_text()))}
    assert missing == {}, f"images without alt text: {missing}"
    instructor_05 = next(site.rglob("instructor/05_vae.html"))
    figures = re.findall(r'<img src="data:image/png;base64,[^"]+" alt="([^"]+)"', instructor_05.read_text())
    assert len(figures) >= 7, "notebook 05's figures are not on its page as <img alt> (plot.show)"


def test_the_audit_catches_a_missing_alt(chromium):
    page = chromium.new_page()
    try:
        page.set_content(BROKEN_PAGE)
        found = a11y.counts(a11y.blocking(a11y.audit(page)))
    finally:
        page.close()
    assert found.get("image-alt (critical)") == 2, found


def test_every_page_passes_the_audit(site, chromium):
    found: dict[str, list[dict]] = {}
    page = chromium.new_page()
    try:
        for path in pages(site):
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            # Audit the page as a reader gets it: after MathJax has typeset the formulas.
            page.evaluate("async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }")
            found[str(path.relative_to(site))] = a11y.audit(page)
    finally:
        page.close()
        if found:
            a11y.write_report(ARTIFACTS / "accessibility", "site", found, split_course=False)
    bad = {name: a11y.blocking(v) for name, v in found.items() if a11y.blocking(v)}
    assert bad == {}, "serious or critical violations:\n" + "\n".join(f"{name}:\n{a11y.describe(v)}" for name, v in bad.items())


def test_maths_carries_assistive_mathml(site, chromium):
    path = next(site.rglob("*/02_latent_variables_elbo.html"))
    assert '"enableAssistiveMml": true' in path.read_text()
    page = chromium.new_page()
    try:
        page.goto(path.as_uri())
        page.evaluate("async () => { await MathJax.startup.promise; }")
        formulas, assistive = page.evaluate("""() => [document.querySelectorAll('mjx-container').length,
            document.querySelectorAll('mjx-container > mjx-assistive-mml > math').length]""")
    finally:
        page.close()
    assert formulas > 50 and assistive == formulas, (formulas, assistive)
