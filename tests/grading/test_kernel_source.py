"""What enters the student's kernel: the runner's exact sources hold the probes and nothing of any judges file."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from instructor.grading import runner
from instructor.grading.spec import HIDDEN_TESTS, assignment_names, load_assignment

NAMES = assignment_names()


def _judge_only_names(name: str) -> set[str]:
    """Top-level names a judges file defines, except its aliases of the probes' own (``X = probes.X``) and the
    ``probes`` module itself: the names of reference implementations, expected values, wrong-answer tables, judges."""
    tree = ast.parse((HIDDEN_TESTS / name / "judges.py").read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            value = node.value
            alias = isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id == "probes"
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if not alias:
                names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names - {"probes"}


JUDGE_NAMES = {n: _judge_only_names(n) for n in NAMES}


def _unwrapped(source: str) -> str:
    """`source` and, recursively, every string constant in it that is Python code (the runner nests sources as
    literals: the cell execs the boot code, which execs kernel_side and passes the probes' source)."""
    texts = [source]
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "\n" in node.value:
            texts.append(_unwrapped(node.value))
    return "\n".join(texts)


def _sent(name: str) -> list[str]:
    """The exact sources the runner executes in the kernel for this assignment."""
    assignment = load_assignment(name)
    job = {"probes_source": assignment.probes_source, "out_dir": "out", "nonce": "0" * 32, "probe_seconds": 60,
           "probes": [p.grade_id for p in assignment.checks]}
    return runner.probe_cells(job, Path("/sandbox"))


def test_every_judges_file_defines_judges_and_names_to_look_for():
    assert all("JUDGES" in names and len(names) > 3 for names in JUDGE_NAMES.values()), JUDGE_NAMES


@pytest.mark.parametrize("name", NAMES)
def test_no_name_defined_in_any_judges_file_is_sent_to_the_kernel(name):
    sent = "\n".join(_unwrapped(source) for source in _sent(name))
    assert "def probe_" in sent and "def setup(" in sent  # the probes and kernel_side, decoded
    for judges_of, names in JUDGE_NAMES.items():
        found = sorted(n for n in names if re.search(rf"(?<![\w.]){re.escape(n)}\b", sent))
        assert not found, f"{judges_of}/judges.py names {found} reach the kernel of {name}"
    assert "Judges of the hidden tests" not in sent and "DIAGNOSES" not in sent and "from instructor" not in sent


@pytest.mark.parametrize("name", NAMES)
def test_the_probes_module_defines_none_of_the_judges_names(name):
    namespace: dict = {"__name__": "probes"}
    exec(compile(load_assignment(name).probes_source, "<probes>", "exec"), namespace)  # noqa: S102 - trusted file
    everywhere = set().union(*JUDGE_NAMES.values())
    assert not sorted(set(namespace) & everywhere)


@pytest.mark.parametrize("name", NAMES)
def test_every_cell_sent_is_one_exec_statement_that_binds_no_name_in_the_notebook(name):
    for source in _sent(name):
        tree = ast.parse(source)
        assert len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr), source[:80]
        call = tree.body[0].value
        assert isinstance(call, ast.Call) and getattr(call.func, "id", "") == "exec", source[:80]
        assert isinstance(call.args[1], ast.Dict) and not call.args[1].keys  # a fresh namespace of its own
