"""The course website: build both editions into a temporary folder and check every page (`make test-site`).

The student edition is built with the very command `make site` runs (read from `make -n site`), so what is checked
is what gets published. Slow (about 2 minutes): not part of `make unit`. Needs requirements-site.txt installed.
Screenshots of two pages (student 05 and instructor 02) land in build/site-artifacts/ for reviewers.
"""

from __future__ import annotations

import html
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest

from instructor.hosted import colab_url
from instructor.release import find_regions
from instructor.site.build import DO_NOT_PUBLISH, WIDGET_NOTE

pytest.importorskip("myst_nb", reason="the site's packages are not installed: make test-site installs them")

ROOT = Path(__file__).resolve().parent.parent.parent
NAMES = sorted(p.stem for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
EDITIONS = {"instructor": "solutions", "student": "notebooks"}
ARTIFACTS = ROOT / "build" / "site-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
MARKERS = re.compile(r"(BEGIN|END) (SOLUTION|HIDDEN TESTS)")
# What a live widget's text looks like once frozen into a page: tqdm's bar, an ipywidgets repr.
WIDGET_REPRS = re.compile(r"\d+%\|[^|<]*\|\s*\d+/\d+|(?:HBox|VBox)\(children=|FloatSlider\(|IntSlider\(")


def make_command(target: str, out: Path) -> list[str]:
    """The site-building command `make TARGET` runs (from `make -n`), with its output folder set to `out`."""
    dry = subprocess.run(["make", "-n", "--no-print-directory", target, f"OUT={out}"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    (line,) = [line for line in dry.splitlines() if "instructor.site.build" in line]
    command = shlex.split(line)
    return [sys.executable, *command[1:]]  # the same interpreter that runs the tests (make's .venv/bin/python)


def _build(target: str, out: Path) -> dict:
    command = make_command(target, out)
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    return {"out": out, "proc": proc, "command": command}


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> dict[str, dict]:
    """{"student": what `make site` builds, "instructor": what `make site-instructor` builds}."""
    base = tmp_path_factory.mktemp("site")
    return {"student": _build("site", base / "site"), "instructor": _build("site-instructor", base / "site-instructor")}


def _main(page: str) -> str:
    """The page's article (without the navigation, which lists every page)."""
    match = re.search(r'<article[^>]*role="main"[^>]*>(.*)</article>', page, re.S)
    assert match, "no main article"
    return match.group(1)


def _text(fragment: str) -> str:
    """What a reader sees of an HTML fragment: tags removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def _pages(site: dict) -> list[Path]:
    return sorted(site["out"].rglob("*.html"))


def _image_outputs(path: Path) -> int:
    nb = nbformat.read(path, as_version=4)
    return sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
               if "image/png" in o.get("data", {}) or "image/svg+xml" in o.get("data", {}))


def instructor_only_lines(name: str) -> set[str]:
    """Lines inside the solution and hidden-test regions of solutions/<name>.ipynb that appear nowhere else in it
    (at least 12 characters, not comments): none of them may reach the student edition."""
    inside, outside = set(), set()
    for cell in nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4).cells:
        covered = {i for r in find_regions(cell.source, name) for i in range(r.start + 1, r.end)}
        for i, line in enumerate(cell.source.split("\n")):
            (inside if i in covered else outside).add(line.strip())
    return {t for t in inside - outside if len(t) >= 12 and not t.startswith("#")}


@pytest.mark.parametrize("edition", ["student", "instructor"])
def test_the_build_succeeds_without_errors(sites, edition):
    proc = sites[edition]["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ERROR" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "WARNING" not in proc.stderr, proc.stderr[-3000:]
    assert f"site ({edition} edition) built in" in proc.stdout


def test_make_site_publishes_the_student_edition_only(sites):
    site = sites["student"]
    assert "--edition" in site["command"] and site["command"][site["command"].index("--edition") + 1] == "student"
    out = site["out"]
    assert sorted(p.name for p in (out / "student").glob("*.html")) == [f"{n}.html" for n in NAMES]
    assert not (out / "instructor").exists() and not (out / "DO-NOT-PUBLISH.txt").exists()
    for page in _pages(site):
        text = page.read_text()
        assert "instructor/" not in text and DO_NOT_PUBLISH not in text, page
    index = _main((out / "index.html").read_text())
    assert list(dict.fromkeys(re.findall(r'href="student/(\d\d_\w+)\.html"', index))) == NAMES
    downloads = sorted(p.name for p in (out / "_downloads").rglob("*.ipynb"))
    assert downloads == sorted(f"{n}.ipynb" for n in NAMES)  # the student notebooks, nothing else


def test_the_instructor_edition_says_on_every_page_and_at_the_end_that_it_must_not_be_published(sites):
    site = sites["instructor"]
    assert site["command"][site["command"].index("--edition") + 1] == "instructor"
    assert DO_NOT_PUBLISH in site["proc"].stdout.strip().splitlines()[-1]
    assert (site["out"] / "DO-NOT-PUBLISH.txt").read_text().strip() == DO_NOT_PUBLISH
    pages = _pages(site)
    assert len(pages) >= 2 * len(NAMES)
    for page in pages:
        banner = re.search(r'<div class="announcement[^"]*">(.*?)</div>', page.read_text(), re.S)
        assert banner and DO_NOT_PUBLISH in _text(banner.group(1)), f"{page}: no do-not-publish banner"


def test_navigation_lists_each_edition_in_lecture_order(sites):
    for edition, folders in {"student": ["student"], "instructor": ["instructor", "student"]}.items():
        index = _main((sites[edition]["out"] / "index.html").read_text())
        for folder in folders:
            links = re.findall(rf'href="{folder}/(\d\d_\w+)\.html"', index)
            assert list(dict.fromkeys(links)) == NAMES, (edition, folder, links)
        page = (sites[edition]["out"] / "search.html").read_text()  # the sidebar, as on every page
        assert list(dict.fromkeys(re.findall(r'href="student/(\d\d_\w+)\.html"', page))) == NAMES


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("name", NAMES)
def test_every_notebook_page_has_its_figures_and_no_error(sites, edition, name):
    page = sites[edition]["out"] / edition / f"{name}.html"
    assert page.is_file(), f"missing page {page}"
    main = _main(page.read_text())
    source = ROOT / EDITIONS[edition] / f"{name}.ipynb"
    title = nbformat.read(source, as_version=4).cells[0].source.splitlines()[0].lstrip("# ").split(":")[0]
    assert title.split("·")[-1].strip()[:20] in main.replace("&#8217;", "’")
    images = re.findall(r'<img[^>]*src="([^"]+)"', main)
    assert len(images) >= _image_outputs(source), f"{edition}/{name}: {len(images)} images on the page"
    for src in images:
        assert not src.startswith(("http:", "https:", "//")), src
        if src.startswith("data:image/png;base64,"):
            continue  # a figure shown by plot.show: an <img alt> with the PNG inline (tests/site/test_accessibility.py)
        assert (page.parent / unquote(src)).resolve().is_file(), f"{edition}/{name}: {src} does not exist"
    assert "traceback" not in main.lower() and 'class="output error' not in main
    if edition == "instructor":
        assert _image_outputs(source) > 0 and len(images) > 0


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("name", NAMES)
def test_every_page_links_its_notebook_download_and_colab(sites, edition, name):
    page = sites[edition]["out"] / edition / f"{name}.html"
    main = _main(page.read_text())
    download = re.findall(r'<a class="course-download[^"]*"[^>]*href="([^"]+)"', main)
    assert len(download) == 1, f"{edition}/{name}: download links {download}"
    target = (page.parent / unquote(download[0])).resolve()
    assert target.name == f"{name}.ipynb"
    assert target.read_bytes() == (ROOT / EDITIONS[edition] / f"{name}.ipynb").read_bytes()  # the notebook itself
    colab = re.findall(r'<a class="course-colab[^"]*"[^>]*href="([^"]+)"', main)
    assert colab == [colab_url(name)], f"{edition}/{name}: Colab links {colab}"


def test_no_marker_and_no_hidden_test_or_solution_text_on_any_student_page(sites):
    secrets = {name: instructor_only_lines(name) for name in NAMES}
    assert all(len(lines) > 10 for lines in secrets.values())  # the check has something to look for
    every_secret = set().union(*secrets.values())
    for page in _pages(sites["student"]):
        raw = page.read_text()
        text = _text(raw)
        assert not MARKERS.search(raw) and not MARKERS.search(text), f"{page}: marker text"
        lines = {line.strip() for line in text.splitlines()}
        # A notebook's page: none of its own secret lines; any page: no long secret line of any notebook.
        leaked = sorted(secrets.get(page.stem, set()) & lines) + sorted(
            line for line in every_secret if len(line) >= 40 and line in text)
        assert not leaked, f"{page}: instructor-only text {leaked[:3]}"
    searchable = (sites["student"]["out"] / "searchindex.js").read_text()
    assert not MARKERS.search(searchable)


def test_no_marker_reaches_an_instructor_page_or_its_table_of_contents(sites):
    pages = _pages(sites["instructor"])
    for page in pages:
        assert not MARKERS.search(_text(page.read_text())), f"{page}: marker text"
        assert not re.search(r'id="(begin|end)-(solution|hidden-tests)', page.read_text())  # no heading, no TOC entry


@pytest.mark.parametrize("edition", EDITIONS)
def test_no_raw_widget_repr_and_a_note_where_a_widget_stands(sites, edition):
    for page in _pages(sites[edition]):
        text = _text(page.read_text())
        found = WIDGET_REPRS.search(text)
        assert not found, f"{page}: raw widget text {found.group(0)!r}"
    if edition == "instructor":  # the Jensen and ELBO-gap sliders (02) and the latent explorer (05)
        for name, widgets in [("02_latent_variables_elbo", 2), ("05_vae", 1)]:
            text = _text(_main((sites[edition]["out"] / edition / f"{name}.html").read_text()))
            assert text.count(WIDGET_NOTE) == widgets, name


@pytest.mark.parametrize("edition", EDITIONS)
def test_the_hosted_setup_cell_is_not_on_the_site(sites, edition):
    for name in NAMES:
        text = _text(_main((sites[edition]["out"] / edition / f"{name}.html").read_text()))
        assert "Colab or Kaggle only" not in text and "COURSE_REPO" not in text, name


def test_maths_is_rendered_offline(sites):
    page = (sites["instructor"]["out"] / "instructor" / "02_latent_variables_elbo.html").read_text()
    assert page.count('class="math notranslate nohighlight"') > 50  # $...$ and $$...$$ became MathJax maths
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert "../_static/mathjax/tex-chtml.js" in scripts
    assert not [s for s in scripts if s.startswith(("http:", "https:", "//"))], scripts
    assert (sites["student"]["out"] / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_screenshots_of_two_pages(sites):
    """Kept for reviewers in build/site-artifacts/: the published student page of 05 and the instructor page of 02
    (its top, with the banner, and where its first slider widget stands)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium): no screenshots")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    instructor_page = sites["instructor"]["out"] / "instructor" / "02_latent_variables_elbo.html"
    shots = {"student-05_vae.png": sites["student"]["out"] / "student" / "05_vae.html",
             "instructor-02_latent_variables_elbo.png": instructor_page}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            for filename, path in shots.items():
                page.goto(path.as_uri())
                page.wait_for_load_state("load")
                assert page.locator("a.course-colab").count() == 1
                assert page.locator("a.course-download").count() == 1
                page.screenshot(path=str(ARTIFACTS / filename))
                assert (ARTIFACTS / filename).stat().st_size > 10_000
            # Where the Jensen slider stands on the instructor page of 02: the note and the figures around it.
            page.goto(instructor_page.as_uri())
            note = page.locator(".admonition.note", has_text="Interactive widget").first
            note.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "instructor-02-widget-note.png"))
        finally:
            browser.close()
