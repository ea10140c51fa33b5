"""Build the course website, in one of two editions.

    python -m instructor.site.build [--out build/site]                          # make site: the student edition
    python -m instructor.site.build --edition instructor --out build/site-instructor   # make site-instructor

* The **student** edition (the default, and what `make site` builds and what is published) shows the student
  notebooks (notebooks/): exercises unanswered, no hidden tests, no outputs.
* The **instructor** edition adds the executed solution notebooks (solutions/, with their stored outputs): every
  answer and every hidden test. It is for the course's staff only: each of its pages carries a banner saying so, the
  build ends by saying so, and its folder holds DO-NOT-PUBLISH.txt.

Every notebook is staged for the site (`site_notebook`), never changed in place: marker lines (`### BEGIN SOLUTION`,
...) are dropped, the Colab/Kaggle setup cell (tag `hosted-setup`) is removed, live-widget outputs (progress bars,
sliders) are replaced by a note or dropped, and a line under the title links the notebook's download and its
"Open in Colab" address (`instructor.hosted.colab_url`). Then Sphinx builds the staging folder (next to the output).
Prints the build time; exits non-zero when Sphinx reports an error. <out>/index.html works from the file system.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from instructor.hosted import SETUP_TAG, colab_url
from instructor.release import MARKER
from instructor.site.conf import DO_NOT_PUBLISH

ROOT = Path(__file__).resolve().parent.parent.parent
EDITIONS = {  # folder in the site: (source folder, caption in the navigation)
    "instructor": ("solutions", "Instructor edition: worked solutions with their outputs"),
    "student": ("notebooks", "Student edition: the exercises, as students get them"),
}
SITE_EDITIONS = {"student": ["student"], "instructor": ["instructor", "student"]}  # what each build holds
EDITION_VARIABLE = "VAE_COURSE_SITE_EDITION"  # read by conf.py; without it, conf.py builds the student edition
DOWNLOADS = "_notebooks"  # staged copies of the original notebooks, linked for download (not pages themselves)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PROGRESS_BAR = re.compile(r"\d+%\|.*\|\s*\d+/\d+")  # tqdm's text, e.g. 'epochs:   0%|          | 0/30 [...]'
WIDGET_NOTE = ("Interactive widget (sliders and the figure they redraw): it needs a running kernel. Open the "
               "notebook in JupyterLab or Colab to use it.")


def notebook_title(path: Path) -> str:
    """The notebook's first markdown heading, e.g. '00 · Course tour: your environment, ...'."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem


def index_page(names: list[str], edition: str) -> str:
    """The home page: what the course is, and the table of contents of each edition the site holds, in lecture order."""
    folders = SITE_EDITIONS[edition]
    header = "| notebook | " + " | ".join(f"{f} edition" for f in folders) + " |"
    label = {"instructor": "worked", "student": "exercises"}
    rows = "\n".join(f"| {notebook_title(ROOT / 'notebooks' / f'{n}.ipynb')} | "
                     + " | ".join(f"[{label[f]}]({f}/{n}.ipynb)" for f in folders) + " |" for n in names)
    toctrees = "\n".join(
        f"```{{toctree}}\n:caption: {EDITIONS[f][1]}\n:maxdepth: 1\n\n" + "\n".join(f"{f}/{n}" for n in names) + "\n```\n"
        for f in folders)
    warning = ""
    if edition == "instructor":
        warning = f"```{{danger}}\n{DO_NOT_PUBLISH}\n```\n\n"
        intro = ("The **instructor edition** shows every notebook with its answers and outputs; the **student edition** "
                 "is what students open, with the exercises to do.")
    else:
        intro = ("Each page is a notebook of the course, with the exercises to do: download it, or open it in Colab, "
                 "and run it yourself.")
    return f"""# Variational autoencoders, from the autoencoder to the reparameterization trick

{warning}A runnable Jupyter course on VAEs: from the plain autoencoder through latent-variable models, the ELBO, amortized
inference and gradient estimators to the reparameterized VAE on MNIST. {intro}

{header}
|---|{"---|" * len(folders)}
{rows}

{toctrees}"""


def _without_markers(source: str) -> str:
    """The source without its marker lines (`### BEGIN SOLUTION`, `### END HIDDEN TESTS`, ...)."""
    return "\n".join(line for line in source.split("\n") if not MARKER.match(line))


def _site_outputs(outputs: list) -> list:
    """Outputs as a static page can show them: a progress bar dropped, another widget replaced by a note."""
    shown = []
    for output in outputs:
        data = output.get("data", {})
        if WIDGET_VIEW not in data:
            shown.append(output)
        elif not PROGRESS_BAR.search(data.get("text/plain", "")):
            shown.append(nbformat.v4.new_output("display_data", data={
                "text/markdown": f"```{{note}}\n{WIDGET_NOTE}\n```", "text/plain": WIDGET_NOTE}))
    return shown


def launch_line(name: str, download: str) -> str:
    """The markdown under a page's title: download the notebook, open it in Colab."""
    return (f"[Download the notebook ({name}.ipynb)](path:{download}){{.course-download}}"
            f" · [Open in Colab]({colab_url(name)}){{.course-colab}}")


def site_notebook(nb: nbformat.NotebookNode, name: str, download: str) -> nbformat.NotebookNode:
    """The notebook as its page shows it (a copy; see the module docstring)."""
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        if SETUP_TAG in cell.metadata.get("tags", []):
            continue
        cell.source = _without_markers(cell.source)
        if cell.cell_type == "code":
            cell.outputs = _site_outputs(cell.get("outputs", []))
        cells.append(cell)
    title = next((i for i, c in enumerate(cells) if c.cell_type == "markdown"), 0)
    cells.insert(title + 1, nbformat.v4.new_markdown_cell(launch_line(name, download)))
    nb.cells = cells
    nb.metadata.pop("widgets", None)
    return nb


def stage(src: Path, edition: str = "student") -> list[str]:
    """Lay out the Sphinx source folder of one edition; returns the notebook names in lecture order."""
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("conf.py"), src / "conf.py")
    shutil.copytree(Path(__file__).with_name("_static"), src / "_static")
    names = sorted(p.stem for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    for folder in SITE_EDITIONS[edition]:
        source = ROOT / EDITIONS[folder][0]
        (src / folder / DOWNLOADS).mkdir(parents=True)
        for name in names:
            shutil.copy(source / f"{name}.ipynb", src / folder / DOWNLOADS / f"{name}.ipynb")
            page = site_notebook(nbformat.read(source / f"{name}.ipynb", as_version=4), name, f"{DOWNLOADS}/{name}.ipynb")
            nbformat.write(page, src / folder / f"{name}.ipynb")
    (src / "index.md").write_text(index_page(names, edition))
    return names


def build(out: Path, jobs: str = "1", edition: str = "student") -> float:
    """Build one edition of the site into `out`; returns the seconds it took. Raises CalledProcessError when Sphinx
    fails."""
    start = time.monotonic()
    out = out.resolve()
    src = out.with_name(out.name + "-src")
    stage(src, edition)
    if out.exists():
        shutil.rmtree(out)
    subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", jobs, "-d", str(src / ".doctrees"),
                    str(src), str(out)], check=True, env={**os.environ, EDITION_VARIABLE: edition})
    if edition == "instructor":
        (out / "DO-NOT-PUBLISH.txt").write_text(DO_NOT_PUBLISH + "\n")
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site", help="output folder (default build/site)")
    parser.add_argument("--edition", choices=sorted(SITE_EDITIONS), default="student",
                        help="student (default: what is published) or instructor (course staff only)")
    parser.add_argument("--jobs", default="1", help="Sphinx's parallel reading jobs (default 1)")
    args = parser.parse_args(argv)
    try:
        seconds = build(args.out, args.jobs, args.edition)
    except subprocess.CalledProcessError as exc:
        print(f"error: Sphinx failed (exit {exc.returncode})", file=sys.stderr)
        return 1
    print(f"site ({args.edition} edition) built in {seconds:.0f} s: {args.out / 'index.html'}")
    if args.edition == "instructor":
        print(f"*** {DO_NOT_PUBLISH} ***")
    return 0


if __name__ == "__main__":
    sys.exit(main())
