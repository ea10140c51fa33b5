"""The course website (make site): build it into a temporary folder and check every notebook's page.

Slow (about a minute): run by `make test-site`, not by `make unit`. Needs requirements-site.txt installed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest

pytest.importorskip("myst_nb", reason="the site's packages are not installed: make test-site installs them")

ROOT = Path(__file__).resolve().parent.parent.parent
NAMES = sorted(p.stem for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
EDITIONS = {"instructor": "solutions", "student": "notebooks"}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("site") / "html"
    proc = subprocess.run([sys.executable, "-m", "instructor.site.build", "--out", str(out)], capture_output=True,
                          text=True, timeout=1200)
    return {"out": out, "proc": proc}


def _main(html: str) -> str:
    """The page's article (without the navigation, which lists every page)."""
    match = re.search(r'<article[^>]*role="main"[^>]*>(.*)</article>', html, re.S)
    assert match, "no main article"
    return match.group(1)


def _image_outputs(path: Path) -> int:
    nb = nbformat.read(path, as_version=4)
    return sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
               if "image/png" in o.get("data", {}) or "image/svg+xml" in o.get("data", {}))


def test_the_build_succeeds_without_errors(site):
    proc = site["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ERROR" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "site built in" in proc.stdout


def test_navigation_lists_both_editions_in_lecture_order(site):
    index = (site["out"] / "index.html").read_text()
    for edition in EDITIONS:
        links = re.findall(rf'href="{edition}/(\d\d_\w+)\.html"', _main(index))
        assert list(dict.fromkeys(links)) == NAMES, (edition, links)
    page = (site["out"] / "instructor" / f"{NAMES[-1]}.html").read_text()  # the sidebar on every page
    assert list(dict.fromkeys(re.findall(r'href="(?:\.\./)?student/(\d\d_\w+)\.html"', page))) == NAMES


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("name", NAMES)
def test_every_notebook_page_has_its_figures_and_no_error(site, edition, name):
    page = site["out"] / edition / f"{name}.html"
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


def test_maths_is_rendered_offline(site):
    page = (site["out"] / "instructor" / "02_latent_variables_elbo.html").read_text()
    assert page.count('class="math notranslate nohighlight"') > 50  # $...$ and $$...$$ became MathJax maths
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert "../_static/mathjax/tex-chtml.js" in scripts
    assert not [s for s in scripts if s.startswith(("http:", "https:", "//"))], scripts
    assert (site["out"] / "_static" / "mathjax" / "tex-chtml.js").is_file()
