"""Accessibility audits with axe-core, the standard engine (WCAG 2.1 A and AA rules), shared by the browser suite
(JupyterLab with a course notebook open) and the site suite (every page of the built website).

axe-core's script comes from the `axe-playwright-python` package (requirements-dev.txt), which ships it, so the
audit needs no network. `audit(page)` runs it on a Playwright page and returns its violations; the rest is plain
Python: sort violations into what the course controls and the rest, count them, and write the report.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

# The WCAG 2.1 A and AA rules (axe's tags); best practices are not WCAG and are left out.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")
# In JupyterLab the course controls a notebook's content: its outputs (figures, text, widgets) and its rendered
# markdown. The rest of the page (menus, side bars, the code editor, the status bar) is JupyterLab's own.
COURSE_SELECTOR = ".jp-OutputArea-output, .jp-RenderedMarkdown"


def axe_script() -> str:
    """axe-core's JavaScript (axe.min.js as shipped by axe-playwright-python)."""
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")


def audit(page, course_selector: str | None = None) -> list[dict]:
    """Run axe-core's WCAG 2.1 A/AA rules on the whole page; returns its violations, one dict per rule:
    {id, impact, help, helpUrl, nodes: [{target, html, impact, summary, course}]}.

    course_selector: a node counts as the course's (`course: True`) when it lies inside an element matching it
    (None: every node is the course's, as on the website).
    """
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_script())
    results = page.evaluate(
        """async ([tags, courseSelector]) => {
          const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
          const inCourse = (target) => {
            if (!courseSelector) return true;
            if (target.length !== 1) return false;  // inside an iframe or a shadow root: not course content
            const el = document.querySelector(target[0]);
            return !!(el && el.closest(courseSelector));
          };
          return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
            nodes: v.nodes.map(n => ({target: n.target, html: n.html.slice(0, 300), impact: n.impact,
                                      summary: (n.failureSummary || '').slice(0, 500), course: inCourse(n.target)}))}));
        }""", [WCAG_TAGS, course_selector])
    return results


def split(violations: Iterable[dict]) -> tuple[list[dict], list[dict]]:
    """(the course's violations, the rest), each a list of violations holding only its nodes."""
    course, chrome = [], []
    for v in violations:
        for side, keep in ((course, True), (chrome, False)):
            nodes = [n for n in v["nodes"] if n["course"] is keep]
            if nodes:
                side.append({**v, "nodes": nodes})
    return course, chrome


def blocking(violations: Iterable[dict]) -> list[dict]:
    """The violations of impact 'serious' or 'critical' (a node's impact when it has one, else the rule's)."""
    found = []
    for v in violations:
        nodes = [n for n in v["nodes"] if (n.get("impact") or v["impact"]) in BLOCKING]
        if nodes:
            found.append({**v, "nodes": nodes})
    return found


def counts(violations: Iterable[dict]) -> dict[str, int]:
    """Nodes per 'rule (impact)', e.g. {'image-alt (critical)': 3}."""
    tally: Counter[str] = Counter()
    for v in violations:
        for n in v["nodes"]:
            tally[f"{v['id']} ({n.get('impact') or v['impact']})"] += 1
    return dict(sorted(tally.items()))


def describe(violations: Sequence[dict], limit: int = 5) -> str:
    """One line per violated rule with up to `limit` of its nodes, for an assertion message."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} — {len(v['nodes'])} node(s), {v['helpUrl']}")
        lines += [f"    {n['target']}: {n['html'][:160]}" for n in v["nodes"][:limit]]
    return "\n".join(lines)


def write_report(folder: Path, name: str, pages: dict[str, list[dict]], split_course: bool) -> Path:
    """Write folder/name.json (every violation of every page) and folder/name.md (counts by rule and impact, the
    course's part and the rest apart when `split_course`); returns the markdown's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(pages, indent=1, ensure_ascii=False))
    lines = [f"# Accessibility audit: {name}", "", "axe-core, WCAG 2.1 A and AA rules; nodes per rule (impact).", ""]
    for page, violations in pages.items():
        lines.append(f"## {page}")
        parts = zip(("the course's content", "JupyterLab's own interface"), split(violations), strict=True) \
            if split_course else [("the page", violations)]
        for title, part in parts:
            found = counts(part)
            lines.append(f"- {title}: " + (", ".join(f"{k}: {n}" for k, n in found.items()) if found else "no violation"))
        lines.append("")
    path = folder / f"{name}.md"
    path.write_text("\n".join(lines))
    return path
