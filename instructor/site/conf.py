"""Sphinx configuration of the course website (`make site`; the pages are written by instructor/site/build.py).

Offline by design: MyST-NB shows the outputs stored in the notebooks (nothing is executed), the Furo theme and
MathJax come from pip packages, and no page loads anything from the internet.
"""

import os

# The edition (instructor.site.build sets it): "student" unless told otherwise, so a bare sphinx-build is safe to publish.
site_edition = os.environ.get("VAE_COURSE_SITE_EDITION", "student")
DO_NOT_PUBLISH = ("INSTRUCTOR EDITION: DO NOT PUBLISH. It shows every solution and every hidden test; "
                  "publish the student edition (make site) instead.")

project = "Variational autoencoders, from the autoencoder to the reparameterization trick"
author = "the course staff"
copyright = "the course staff"  # noqa: A001 - Sphinx's name for it

extensions = ["myst_nb", "sphinx-mathjax-offline"]  # sphinx-mathjax-offline: MathJax 3 copied into _static/
html_theme = "furo"
html_title = "VAE course"
html_static_path = ["_static"]
html_css_files = ["course.css"]
if site_edition == "instructor":  # Furo's banner, at the top of every page
    html_title = "VAE course: instructor edition, do not publish"
    html_theme_options = {"announcement": f"<strong>{DO_NOT_PUBLISH}</strong>",
                          "light_css_variables": {"color-announcement-background": "#b00020",
                                                  "color-announcement-text": "#ffffff"},
                          "dark_css_variables": {"color-announcement-background": "#b00020",
                                                 "color-announcement-text": "#ffffff"}}
html_show_sourcelink = False
html_copy_source = False
exclude_patterns = ["_build", "**/.ipynb_checkpoints", "*/_notebooks"]  # _notebooks: the downloads, not pages

myst_enable_extensions = ["dollarmath", "amsmath", "attrs_inline"]  # attrs_inline: {.class} on the launch links
myst_heading_anchors = 3
nb_execution_mode = "off"  # the instructor notebooks are stored executed; the student ones have no outputs
nb_merge_streams = True
nb_render_markdown_format = "myst"  # text/markdown outputs may hold directives: the note where a widget stands
# Widget views (progress bars, sliders) need a live kernel: build.py drops progress bars and puts a note where a
# slider stands; nothing loads widget JavaScript.
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None),
                              ("html", "application/vnd.jupyter.widget-state+json", None)]
nb_ipywidgets_js: dict = {}
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]
# Maths a screen reader can read: MathJax 3 puts a hidden MathML copy beside each formula (assistive MathML), on in
# its options and in its menu's saved settings (which would otherwise override the options).
mathjax3_config = {"options": {"enableAssistiveMml": True, "menuOptions": {"settings": {"assistiveMml": True}}}}

# Two fixes for the axe-core audit (tests/site/test_accessibility.py), applied to every page after Furo has built it:
# - Sphinx gives a table of contents' caption role="heading" without the aria-level that role requires (critical):
#   it is a level-2 heading.
# - A code cell or output wider than the page scrolls sideways in a <pre> that the keyboard cannot reach (serious):
#   long lines wrap instead, as they do in the course's JupyterLab.
_CAPTION = 'class="caption" role="heading">'
_WRAP_CODE = "<style>pre { white-space: pre-wrap; overflow-wrap: anywhere; }</style>"


def _accessible_page(app, pagename, templatename, context, doctree) -> None:
    for key in ("body", "furo_navigation_tree"):
        if isinstance(context.get(key), str):
            context[key] = context[key].replace(_CAPTION, 'class="caption" role="heading" aria-level="2">')
    context["metatags"] = context.get("metatags", "") + _WRAP_CODE


def setup(app) -> None:
    app.connect("html-page-context", _accessible_page, priority=900)  # after Furo's handler (priority 500)
