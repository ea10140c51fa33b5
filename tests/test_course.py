"""The hosted-service setup cell (Colab, Kaggle) and the course's one repository address. No test uses the network:
the hosted path runs with a stand-in `git` that copies the course from this checkout."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from instructor import hosted
from utils import course

ROOT = Path(__file__).resolve().parent.parent
HOSTED_VARS = ("COLAB_RELEASE_TAG", "KAGGLE_KERNEL_RUN_TYPE")

# Runs the setup cell in a fresh Python that cannot import this checkout's utils (as on Colab), then says where
# utils came from. The venv's .pth file puts the course root on sys.path: take it off first.
DRIVER = textwrap.dedent("""
    import sys
    sys.path = [p for p in sys.path if p.rstrip("/") != {root!r}]
    if {shadow!r}:  # the service has another package called utils
        import types
        sys.modules["utils"] = types.ModuleType("utils")
    exec(compile(open({cell!r}).read(), "setup-cell", "exec"))
    import importlib.util
    spec = importlib.util.find_spec("utils")
    print("utils from:", spec.origin if spec else None)
""")

FAKE_GIT = """#!/usr/bin/env bash
# Stand-in for git: record the arguments, "clone" by copying the course from this checkout.
echo "$@" >> "$FAKE_GIT_LOG"
target="${@: -1}"
mkdir -p "$target"
cp -r "$FAKE_COURSE/utils" "$FAKE_COURSE/requirements.txt" "$target/"
"""


def _run_cell(tmp_path: Path, env_extra: dict[str, str], shadow: bool = False) -> tuple[subprocess.CompletedProcess, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "git").write_text(FAKE_GIT)
    (bin_dir / "git").chmod(0o755)
    cell = tmp_path / "cell.py"
    cell.write_text(hosted.setup_cell_source())
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(root=str(ROOT), cell=str(cell), shadow=shadow))
    env = {k: v for k, v in os.environ.items() if k not in HOSTED_VARS and k != "PYTHONPATH"}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", FAKE_GIT_LOG=str(tmp_path / "git.log"), FAKE_COURSE=str(ROOT),
               **env_extra)
    work = tmp_path / "content"
    work.mkdir(exist_ok=True)
    proc = subprocess.run([sys.executable, str(driver)], cwd=work, env=env, capture_output=True, text=True,
                          timeout=300)
    return proc, work


def test_the_setup_cell_does_nothing_on_a_local_install(tmp_path):
    proc, work = _run_cell(tmp_path, {})
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "git.log").exists() and not (work / hosted.CLONE_DIR).exists()
    assert "course ready" not in proc.stdout


@pytest.mark.parametrize("service,shadow", [({"COLAB_RELEASE_TAG": "release-colab_20261120"}, False),
                                            ({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, False),
                                            ({"KAGGLE_KERNEL_RUN_TYPE": "Batch"}, True)])
def test_the_setup_cell_fetches_the_course_on_a_hosted_service(tmp_path, service, shadow):
    proc, work = _run_cell(tmp_path, service, shadow)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    clone = work / hosted.CLONE_DIR
    assert (tmp_path / "git.log").read_text().split() == [
        "clone", "--quiet", "--depth", "1", "--branch", hosted.BRANCH, hosted.COURSE_REPO, hosted.CLONE_DIR]
    assert f"utils from: {clone / 'utils' / '__init__.py'}" in proc.stdout
    assert f"course ready: {clone}" in proc.stdout
    # Run again (the student re-runs the notebook): nothing is fetched twice.
    proc, _ = _run_cell(tmp_path, service, shadow)
    assert proc.returncode == 0 and len((tmp_path / "git.log").read_text().splitlines()) == 1


def test_the_setup_cell_does_nothing_when_the_course_is_importable(tmp_path):
    cell = hosted.setup_cell_source()
    proc = subprocess.run([sys.executable, "-c", cell], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLAB_RELEASE_TAG": "x", "PATH": "/nonexistent"})
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr


def test_prepare_hosted_installs_only_what_is_missing(tmp_path, monkeypatch):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# pinned\ntorch==2.13.0\nnumpy==2.4.6\nnot-a-real-module==1.0  # comment\npytest==9.2.0\n")
    monkeypatch.setattr(course, "ROOT", tmp_path)
    monkeypatch.setitem(course.RUNTIME_MODULES, "not-a-real-module", "not_a_real_module_xyz")
    calls = []
    installed = course.prepare_hosted(run=lambda argv, check: calls.append(argv))
    assert installed == ["not-a-real-module==1.0"]
    assert calls == [[sys.executable, "-m", "pip", "install", "--quiet", "not-a-real-module==1.0"]]
    monkeypatch.delitem(course.RUNTIME_MODULES, "not-a-real-module")
    calls.clear()
    assert course.prepare_hosted(run=lambda argv, check: calls.append(argv)) == [] and calls == []


def test_every_notebook_starts_with_the_setup_cell():
    for folder in ("solutions", "notebooks"):
        for path in sorted((ROOT / folder).glob("[0-9][0-9]_*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            first = next(c for c in nb.cells if c.cell_type == "code")
            assert first.source == hosted.setup_cell_source(), f"{folder}/{path.name}: run python -m instructor.hosted --update"
            assert hosted.SETUP_TAG in first.metadata.get("tags", [])
            assert "raises-exception" not in first.metadata.get("tags", [])
            assert first.metadata.get("jupyter", {}).get("source_hidden") is True, f"{folder}/{path.name}: collapse it"


def test_readme_links_every_notebook_to_colab_from_the_one_address():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\(https://colab\.research\.google\.com/[^)]*\)", readme)
    assert sorted(links) == sorted(f"({hosted.colab_url(n)})" for n in hosted.notebook_names())
    assert hosted.colab_url("05_vae") == (
        f"https://colab.research.google.com/github/{hosted.COURSE_REPO.removeprefix('https://github.com/')}"
        f"/blob/{hosted.BRANCH}/notebooks/05_vae.ipynb")
