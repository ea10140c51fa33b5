"""The probes' setup leaves no trace a submission could read: not in IPython's history, not in the notebook's names.

Runs `instructor.grading.runner` for real (a Jupyter kernel, no sandbox: a few seconds) on a notebook whose function,
called by the probe, looks at ``In``, ``_ih``, ``Out`` and ``get_ipython().user_ns`` from inside the kernel.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat

from instructor.grading import runner
from instructor.grading.judge import load_result

PROBES = '''
import torch

MARKER = "a_probes_only_marker"


def probe_spy(ns):
    return ns["spy"]()


PROBES = {"spy": probe_spy}
'''

SPY = '''
import torch

def spy():
    shell = get_ipython()
    history = "\\n".join(list(shell.user_ns["In"]) + list(shell.user_ns["_ih"]))
    marker, harness = "a_probes_" + "only_marker", "kernel" + "_side"  # not spelled out: this cell is in the history
    names = [k for k, v in shell.user_ns.items() if "grade" in k.lower() or harness in repr(v)[:200]]
    return {"history_has_probes": marker in history or harness in history,
            "names_of_the_grader": len(names),
            "cells_in_history": len(shell.user_ns["In"])}
'''


def test_probe_setup_is_neither_in_history_nor_in_the_notebook_namespace(tmp_path):
    (tmp_path / "work").mkdir()
    (tmp_path / "out").mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SPY), nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(nb, tmp_path / "work" / "submission.ipynb")
    job = {"base": str(tmp_path), "notebook": "submission.ipynb", "out_dir": "out", "nonce": "n0nce",
           "probes_source": PROBES, "probes": ["spy"], "cell_seconds": 60, "probe_seconds": 30}
    subprocess.run([sys.executable, runner.__file__], input=json.dumps(job), text=True, check=True, timeout=120,
                   capture_output=True)
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["probes_ran"] and not status["errors"], status
    record = load_result(Path(tmp_path / "out" / "n0nce-spy.pt"))
    assert record["error"] == "", record
    values = {k: v.item() for k, v in record["values"].items()}
    # In holds "" plus the notebook's two cells: the setup and the probe's cell were not stored
    assert values == {"history_has_probes": False, "names_of_the_grader": 0, "cells_in_history": 3}, values
