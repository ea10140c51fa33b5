"""Attacks on the answers themselves, for any notebook: submissions that implement nothing and try to score anyway.

* ``steals_references``: every exercise function delegates to any function it can reach from the kernel whose name
  mentions ref, kl, elbo, sf or pw: through the caller's frames (``sys._getframe``, ``inspect.stack()``), the
  notebook's namespace (``get_ipython().user_ns``), IPython's history (``In``, ``_ih``: a hidden-tests source found
  there is executed), loaded modules and ``gc.get_objects()``. Only code the grader brought into the kernel is tried
  (its source name mentions probes, grader, hidden tests, judges or solutions): library functions hold no answer,
  calling them at random can block, and the notebook's own are stubs.
* ``forges_results``: ``torch.save`` is replaced so that every probe's record carries no error and forged data: the
  flags a kernel could compute (``is_number``, ``same_seed_equal``, ``has_graph``, ...) set True, seeded-call pairs
  equal, and N(4, 8.7) draws (the 4.1 estimator's mean and per-sample variance over n = 10) under every name the
  probes' code mentions.

Both are built from the student version of a notebook (its stubs raise NotImplementedError) with one cell appended.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent.parent

THIEF = '''
import gc, inspect, sys

_WORDS = ("ref", "kl", "elbo", "sf", "pw")
_MINE: set = set()
_BUSY = [False]


def _is_graders(obj) -> bool:
    """Code the grader brought into the kernel (hidden tests or harness, compiled from a string or read from a file of
    the grading tools); not the notebook's own cells, not torch, numpy, IPython or their generated code."""
    code = getattr(obj, "__code__", None)
    name = getattr(code, "co_filename", "") or ""
    if code is None or name.startswith(("/tmp/ipykernel", "<ipython")):
        return False
    words = ("probe", "grader", "grading", "hidden", "judge", "solution", "instructor", "kernel_side")
    return any(word in name for word in words)


_RECENT = [-1e9, []]  # (when, candidates): a scan of every object takes a while; reuse it for 20 s


def _candidates() -> list:
    """Functions reachable from the kernel whose name mentions ref/kl/elbo/sf/pw, except libraries' and the notebook's."""
    import time
    if time.monotonic() - _RECENT[0] < 20:
        return _RECENT[1]
    seen, found = set(), []

    def consider(name, obj):
        if (callable(obj) and id(obj) not in seen and id(obj) not in _MINE and _is_graders(obj)
                and any(w in str(name).lower() for w in _WORDS)):
            seen.add(id(obj))
            found.append(obj)

    def scan(namespace, depth=0):
        for key, value in list(namespace.items()):
            consider(key, value)
            if isinstance(value, dict) and depth < 2:
                scan(value, depth + 1)

    frame = sys._getframe()
    while frame is not None:
        scan(frame.f_locals)
        scan(frame.f_globals)
        frame = frame.f_back
    for info in inspect.stack(0):
        scan(info.frame.f_locals)
        scan(info.frame.f_globals)
    shell = get_ipython()
    scan(shell.user_ns)
    for source in list(shell.user_ns.get("In", [])) + list(shell.user_ns.get("_ih", [])):
        if "PROBES" in source or "JUDGES" in source or "def _ref" in source:  # hidden tests in the history
            stolen: dict = {}
            try:
                exec(source, stolen)
            except Exception:
                pass
            scan(stolen)
    for module in list(sys.modules.values()):
        if any(w in getattr(module, "__name__", "") for w in ("grade", "hidden", "probe", "judge", "solution")):
            scan(vars(module))
    for obj in gc.get_objects():
        if inspect.isfunction(obj) or inspect.ismethod(obj):
            consider(obj.__name__, obj)
    _RECENT[:] = [time.monotonic(), found]
    return found


def _delegate(name, *args, **kwargs):
    if _BUSY[0]:
        raise NotImplementedError(name)
    _BUSY[0] = True
    try:
        for candidate in _candidates():
            try:
                return candidate(*args, **kwargs)
            except Exception as exc:
                if type(exc).__name__ == "ProbeTimeout":  # let the grader's time limit end this probe
                    raise
                continue
    finally:
        _BUSY[0] = False
    raise NotImplementedError(name)
'''

DELEGATOR = '''
def {name}(*args, **kwargs):
    return _delegate({name!r}, *args, **kwargs)
_MINE.add(id({name}))
'''

FORGER = '''
import sys
import torch

_FLAGS = ("is_number", "same_seed_equal", "has_graph", "pathwise_has_graph", "y_has_graph", "input_unchanged",
          "inputs_unchanged", "init_unchanged", "reproducible", "mlp_reproducible", "floats", "attached", "has_mu_grad",
          "has_logvar_grad", "is_tensor", "is_float", "is_tuple", "is_dict", "numbers", "triple", "tensors")
_real_save = torch.save


def _probe_names() -> set:
    """Every string constant in the probes' code: the names their records use."""
    names: set = set()
    for module in list(sys.modules.values()):
        state = getattr(module, "_STATE", None)
        if isinstance(state, dict) and isinstance(state.get("probes"), dict):
            pending = [f.__code__ for f in state["probes"].values() if hasattr(f, "__code__")]
            while pending:
                code = pending.pop()
                for const in code.co_consts:
                    if isinstance(const, str) and 0 < len(const) < 40:
                        names.add(const)
                    elif hasattr(const, "co_consts"):
                        pending.append(const)
    return names


def _forged_save(obj, f, *args, **kwargs):
    if isinstance(obj, dict) and "values" in obj and "error" in obj:
        gen = torch.Generator().manual_seed(0)
        values = {name: 4 + 8.7 ** 0.5 * torch.randn(3000, generator=gen, dtype=torch.float64) for name in _probe_names()}
        values.update({flag: torch.tensor(True) for flag in _FLAGS})
        for pair in ("same_seed.0", "same_seed.1", "same0", "same1"):  # equal seeded calls
            values[pair] = torch.tensor(4.0, dtype=torch.float64)
        values["estimates"] = 4 + 8.7 ** 0.5 * torch.randn(3000, generator=gen, dtype=torch.float64)
        obj = {"error": "", "values": values}
    return _real_save(obj, f, *args, **kwargs)


torch.save = _forged_save
'''


def exercise_functions(nb: nbformat.NotebookNode) -> list[str]:
    """Names of the functions the student must write: top-level defs in cells whose body raises NotImplementedError."""
    names = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "raise NotImplementedError" not in cell.source:
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        names += [node.name for node in tree.body if isinstance(node, ast.FunctionDef)
                  and "NotImplementedError" in ast.unparse(node)]
    return names


def student_notebook(name: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)


def steals_references(name: str) -> nbformat.NotebookNode:
    """The student notebook, with every exercise function replaced by a delegate to whatever it can steal."""
    nb = student_notebook(name)
    functions = exercise_functions(nb)
    assert functions, f"no exercise functions found in the student version of {name}"
    source = textwrap.dedent(THIEF) + "".join(DELEGATOR.format(name=f) for f in functions)
    nb.cells.append(nbformat.v4.new_code_cell(source.strip()))
    return nb


def forges_results(name: str) -> nbformat.NotebookNode:
    """The student notebook (nothing implemented), with torch.save rewritten to emit forged records."""
    nb = student_notebook(name)
    nb.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(FORGER).strip()))
    return nb


ATTACKS = {"steals_references": steals_references, "forges_results": forges_results}
