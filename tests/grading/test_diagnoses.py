"""The diagnosis ids each judges file lists (DIAGNOSES): stable snake_case names, unique, each one actually used.

The class report counts students by these ids; `gradetools.judge` checks at run time that every verdict's diagnosis
is listed, and the hidden-test tests (test_hidden_*.py) name the ids their typical mistakes must produce.
"""

from __future__ import annotations

import re

import pytest

from instructor.grading.spec import HIDDEN_TESTS, assignment_names, load_assignment


@pytest.mark.parametrize("name", assignment_names())
def test_diagnoses_are_unique_snake_case_and_each_used_in_its_judges(name):
    listed = load_assignment(name).diagnoses
    assert listed and len(set(listed)) == len(listed), listed
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", d) for d in listed), listed
    source = (HIDDEN_TESTS / name / "judges.py").read_text()
    body = source[source.index("DIAGNOSES = (") + len("DIAGNOSES = ("):]
    body = body[body.index("\n)\n"):]
    unused = [d for d in listed if f'"{d}"' not in body]
    assert not unused, f"listed but never produced: {unused}"
