"""Build the course website: the executed instructor notebooks and the student notebooks, in lecture order.

    python -m instructor.site.build [--out build/site]      # make site

Copies conf.py (beside this file), an index page and the notebooks (solutions/ as the instructor edition, notebooks/ as the
student edition) into a staging folder next to the output, then runs Sphinx there. Prints the build time; exits
non-zero when Sphinx reports an error. Open <out>/index.html in a browser (it works from the file system).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent.parent
EDITIONS = {  # folder in the site: (source folder, caption in the navigation)
    "instructor": ("solutions", "Instructor edition: worked solutions with their outputs"),
    "student": ("notebooks", "Student edition: the exercises, as students get them"),
}


def notebook_title(path: Path) -> str:
    """The notebook's first markdown heading, e.g. '00 · Course tour: your environment, ...'."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem


def index_page(names: list[str]) -> str:
    """The home page: what the course is, and one table of contents per edition in lecture order."""
    rows = "\n".join(f"| {notebook_title(ROOT / 'solutions' / f'{n}.ipynb')} | [worked](instructor/{n}.ipynb) | "
                     f"[exercises](student/{n}.ipynb) |" for n in names)
    toctrees = "\n".join(
        f"```{{toctree}}\n:caption: {caption}\n:maxdepth: 1\n\n" + "\n".join(f"{folder}/{n}" for n in names) + "\n```\n"
        for folder, (_, caption) in EDITIONS.items())
    return f"""# Variational autoencoders, from the autoencoder to the reparameterization trick

A runnable Jupyter course on VAEs: from the plain autoencoder through latent-variable models, the ELBO, amortized
inference and gradient estimators to the reparameterized VAE on MNIST. The **instructor edition** shows every
notebook with its answers and outputs; the **student edition** is what students open, with the exercises to do.

| notebook | instructor edition | student edition |
|---|---|---|
{rows}

{toctrees}"""


def stage(src: Path) -> list[str]:
    """Lay out the Sphinx source folder; returns the notebook names in lecture order."""
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("conf.py"), src / "conf.py")
    names = sorted(p.stem for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    for folder, (source, _) in EDITIONS.items():
        (src / folder).mkdir()
        for name in names:
            shutil.copy(ROOT / source / f"{name}.ipynb", src / folder / f"{name}.ipynb")
    (src / "index.md").write_text(index_page(names))
    return names


def build(out: Path, jobs: str = "1") -> float:
    """Build the site into `out`; returns the seconds it took. Raises CalledProcessError when Sphinx fails."""
    start = time.monotonic()
    out = out.resolve()
    src = out.with_name(out.name + "-src")
    stage(src)
    if out.exists():
        shutil.rmtree(out)
    subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", jobs, "-d", str(src / ".doctrees"),
                    str(src), str(out)], check=True)
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site", help="output folder (default build/site)")
    parser.add_argument("--jobs", default="1", help="Sphinx's parallel reading jobs (default 1)")
    args = parser.parse_args(argv)
    try:
        seconds = build(args.out, args.jobs)
    except subprocess.CalledProcessError as exc:
        print(f"error: Sphinx failed (exit {exc.returncode})", file=sys.stderr)
        return 1
    print(f"site built in {seconds:.0f} s: {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
