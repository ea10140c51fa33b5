"""Grades folders of the corpus (tests/classreport/corpus.py), written once per session; tests that change a
folder copy it first (`fresh`)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.classreport.corpus import write_class

NB05, NB02 = "05_vae", "02_latent_variables_elbo"


@pytest.fixture(scope="session")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{assignment: grades folder} for notebooks 05 and 02 (read-only by convention)."""
    root = tmp_path_factory.mktemp("graded")
    return {name: write_class(root / name, name) for name in (NB05, NB02)}


@pytest.fixture
def fresh(graded: dict[str, Path], tmp_path: Path) -> Callable[[str], Path]:
    """A copy of a corpus folder that the test may change."""
    def copy(name: str) -> Path:
        return Path(shutil.copytree(graded[name], tmp_path / name))
    return copy


@pytest.fixture(scope="session")
def pages(graded: dict[str, Path]) -> dict[str, str]:
    """The rendered report of each corpus class (no per-student table)."""
    from instructor.classreport import page
    from instructor.grading.gradeset import load_grades

    return {name: page.render(load_grades(folder)) for name, folder in graded.items()}
