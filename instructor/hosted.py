"""Where the course lives, and the setup cell that lets a notebook opened alone on Colab or Kaggle find it.

Every notebook's first code cell is `setup_cell_source()`: on Colab or Kaggle, when the course's `utils` cannot be
imported (the student opened one notebook, not the course), it clones the course from `COURSE_REPO`, puts it on
`sys.path` and calls `utils.course.prepare_hosted()`, which installs the course's requirements that are missing;
everywhere else it does nothing. `COURSE_REPO` is the only place the course's address is written: after changing it, run

    python -m instructor.hosted --update     # rewrite the setup cell of solutions/*.ipynb and the README's Colab links
    python -m instructor.release             # ... and the student notebooks

`tests/test_course.py` fails while a notebook or the README disagrees with this file.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

COURSE_REPO = "https://github.com/vae-course/vae-course"
BRANCH = "main"
CLONE_DIR = "vae-course"  # made in the notebook's working folder (/content on Colab, /kaggle/working on Kaggle)
SETUP_TAG = "hosted-setup"
ROOT = Path(__file__).resolve().parent.parent

SETUP_CELL = '''\
# Colab or Kaggle only: fetch the course and install what is missing. Locally it does nothing.
import os
import sys

COURSE_REPO = "{repo}"  # set in instructor/hosted.py
HOSTED = ("google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ
          or "KAGGLE_KERNEL_RUN_TYPE" in os.environ)
if HOSTED:
    try:
        import utils.checks  # noqa: F401 (the course is already here)
    except ImportError:
        import subprocess

        if not os.path.isdir("{clone_dir}"):
            subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", "{branch}",
                            COURSE_REPO, "{clone_dir}"], check=True)
        sys.path.insert(0, os.path.abspath("{clone_dir}"))
        sys.modules.pop("utils", None)  # another package's `utils`, if the service has one
        from utils import course

        course.prepare_hosted()'''


def setup_cell_source(repo: str = COURSE_REPO) -> str:
    """The source of every notebook's first code cell (see the module docstring)."""
    return SETUP_CELL.format(repo=repo, branch=BRANCH, clone_dir=CLONE_DIR)


def colab_url(notebook: str, repo: str = COURSE_REPO) -> str:
    """The 'Open in Colab' address of a student notebook, e.g. colab_url('05_vae')."""
    path = re.sub(r"^https://github\.com/", "", repo.rstrip("/"))
    return f"https://colab.research.google.com/github/{path}/blob/{BRANCH}/notebooks/{notebook}.ipynb"


def notebook_names() -> list[str]:
    """The student notebooks in lecture order, e.g. ['00_course_tour', ...]."""
    return sorted(p.stem for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


def colab_badge(notebook: str) -> str:
    """Markdown for the README's link to a notebook on Colab."""
    return f"[Open in Colab]({colab_url(notebook)})"


# --------------------------------------------------------------------------------------------------- keeping it in sync

def _setup_cell(nb) -> int | None:
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            return index if SETUP_TAG in cell.get("metadata", {}).get("tags", []) else None
    return None


def update_notebook(path: Path) -> bool:
    """Insert the setup cell as the first code cell (right after the title cell), or refresh it; True if changed."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    source = setup_cell_source()
    index = _setup_cell(nb)
    if index is not None:
        if nb.cells[index].source == source:
            return False
        nb.cells[index].source = source
    else:
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": [SETUP_TAG]})
        cell.metadata["jupyter"] = {"source_hidden": True}  # collapsed: it does nothing on the student's own machine
        if "id" in cell:
            cell.id = SETUP_TAG  # a stable id: the same in every notebook and every release
        nb.cells.insert(1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0, cell)
    nbformat.write(nb, path)
    return True


def update_readme(readme: Path | None = None) -> bool:
    """Rewrite the README's Colab links (one per row of the notebooks table) from COURSE_REPO; True if changed."""
    readme = readme or ROOT / "README.md"
    text = readme.read_text()
    new = re.sub(r"\[Open in Colab\]\(https://colab\.research\.google\.com/github/[^)]*/notebooks/(\w+)\.ipynb\)",
                 lambda m: colab_badge(m.group(1)), text)
    if new != text:
        readme.write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: --update rewrites the setup cells and the README's links."""
    parser = argparse.ArgumentParser(prog="python -m instructor.hosted", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update", action="store_true", help="rewrite solutions' setup cells and the README links")
    args = parser.parse_args(argv)
    if not args.update:
        print(f"course repository: {COURSE_REPO} (branch {BRANCH})")
        for name in notebook_names():
            print(f"  {name}: {colab_url(name)}")
        return 0
    for path in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")):
        if update_notebook(path):
            print(f"updated {path.relative_to(ROOT)}")
    if update_readme():
        print("updated README.md")
    print("now run `python -m instructor.release` to regenerate notebooks/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
