"""What a failed probe records (the feedback of hidden parts): the exception's type and the student's line, no text."""

from __future__ import annotations

import torch

from instructor.grading import kernel_side

PROBES = '''
import torch

HIDDEN_SEED = 91237


def probe_raises(ns):
    return ns["f"](torch.full((3,), float(HIDDEN_SEED)))


def probe_wrong_type(ns):
    return {"secret_name": "a string"}


PROBES = {"raises": probe_raises, "wrong_type": probe_wrong_type}
'''


def _record(tmp_path, grade_id: str, namespace: dict) -> dict:
    kernel_side.setup(PROBES, str(tmp_path), "n0nce", namespace, 10)
    kernel_side.probe(grade_id)
    return torch.load(tmp_path / f"n0nce-{grade_id}.pt", weights_only=True)


def test_an_exception_is_recorded_by_type_and_line_without_its_text(tmp_path):
    namespace: dict = {}
    exec(compile("def f(x):\n    y = x + 1\n    raise ValueError(f'bad input {x.tolist()} from probe_raises')\n",
                 "/tmp/ipykernel_1/123.py", "exec"), namespace)
    record = _record(tmp_path, "raises", namespace)
    assert record == {"error": "ValueError (line 3 of your cell)", "values": {}}


def test_a_wrong_return_type_names_the_type_not_the_probes_key(tmp_path):
    record = _record(tmp_path, "wrong_type", {})
    assert record["error"] == "returned the wrong type: a str where a tensor or a number was expected"
    assert "secret_name" not in record["error"]


def test_a_name_missing_from_the_notebook_gets_one_fixed_explanation(tmp_path):
    record = _record(tmp_path, "raises", {})  # no `f` in the notebook: the probe's own lookup fails
    assert record["error"] == f"KeyError ({kernel_side.MISSING})"
