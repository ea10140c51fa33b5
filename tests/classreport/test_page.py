"""The class report's page: self-contained, accessible markup, no student named unless asked, the CLI."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from instructor.classreport import page
from instructor.classreport.build import main
from instructor.grading.gradeset import load_grades
from tests.classreport.conftest import NB02, NB05
from tests.classreport.corpus import CLASSES


class _Markup(HTMLParser):
    """The tags and attributes of a page, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Markup:
    markup = _Markup()
    markup.feed(html)
    return markup


def test_the_page_is_self_contained_and_refers_to_nothing_outside(pages):
    html = pages[NB05]
    markup = _parse(html)
    sources = [a.get("src") or "" for t, a in markup.tags if t == "img"]
    assert len(sources) == 5 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not [t for t, a in markup.tags if t in ("script", "link", "iframe", "object", "embed")]
    assert not re.search(r"(?:https?:)?//[\w.-]+\.\w", html.replace("data:image/png;base64,", ""))
    hrefs = [a["href"] for t, a in markup.tags if t == "a"]
    assert hrefs and all(h.startswith("#") for h in hrefs)
    assert {f"#{a['id']}" for t, a in markup.tags if "id" in a} >= set(hrefs)


def test_the_page_has_headings_table_headers_captions_and_alt_text(pages):
    markup = _parse(pages[NB02])
    tags = [t for t, _ in markup.tags]
    assert tags.count("h1") == 1 and tags.count("h2") == 4 and tags.count("h3") == 6  # exercises 2.1-2.6
    assert tags.count("table") == tags.count("caption") and tags.count("table") >= 8
    assert all(a.get("scope") in ("col", "row") for t, a in markup.tags if t == "th")
    alts = [a.get("alt") or "" for t, a in markup.tags if t == "img"]
    assert alts and all(len(alt) > 40 for alt in alts)
    assert any("2.3, sigma_for_variance: 3 students" in alt for alt in alts)
    html_tag = next(a for t, a in markup.tags if t == "html")
    assert html_tag.get("lang") == "en"


def test_no_student_is_named_unless_the_per_student_table_is_asked_for(graded, pages, fresh, capsys):
    students = [s[0] for s in CLASSES[NB05](load_grades(graded[NB05]).assignment)]
    assert not [s for s in students if s in pages[NB05]]
    folder = fresh(NB05)
    assert main([str(folder), "--per-student"]) == 0
    detailed = (folder / "report.html").read_text()
    assert all(s in detailed for s in students) and page.PER_STUDENT_MARK in detailed
    assert "<caption>Points per student</caption>" in detailed
    assert main([str(folder), "--assignment", "02", "--out", str(folder / "copy.html")]) == 2
    assert "holds grades of 05_vae, not of 02_latent_variables_elbo" in capsys.readouterr().err
    assert not (folder / "copy.html").exists()
