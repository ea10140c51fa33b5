"""Code the runner sends into the student's kernel after the notebook has run: it only produces data.

`setup(probes_source, out_dir, nonce, namespace, probe_seconds)` executes the assignment's ``probes.py`` (never its
judges) in a private namespace; `probe(grade_id)` calls one probe with the notebook's namespace and writes what it
returns, converted to plain CPU tensors, to `<out_dir>/<nonce>-<grade_id>.pt`. The runner loads this module into
``sys.modules`` (not the notebook's namespace) by cells that are not stored in IPython's history. Nothing here decides
a grade: a submission that tampers with this code (or with torch) can only spoil its own data, which the trusted
judge then marks wrong.

What a failed probe records is what the student may see about hidden inputs: the exception's type and the line of
the student's own cell, never the exception's text (it can show hidden inputs, seeds, probe names or source).
"""

from __future__ import annotations

import os
import signal
import traceback

_STATE: dict = {}
MAX_ELEMENTS = 20_000_000  # per probe: far above what any probe returns, far below a memory bomb


class ProbeTimeout(Exception):
    """A probe ran past its time limit."""


class WrongType(TypeError):
    """The student's code returned something other than tensors, arrays or numbers."""


MAX_NAME = 60  # characters of an exception's type name kept in the feedback


def setup(probes_source: str, out_dir: str, nonce: str, namespace: dict, probe_seconds: int) -> None:
    """Load the assignment's probes; `namespace` is the notebook's global namespace."""
    probes: dict = {"__name__": "probes"}
    exec(compile(probes_source, "<probes>", "exec"), probes)
    _STATE.update(probes=probes["PROBES"], out_dir=out_dir, nonce=nonce, namespace=namespace, seconds=probe_seconds)


def _plain(value, name: str, out: dict) -> None:
    """Flatten a probe's return value into {name: tensor}; only exact tensor, array and number types are accepted."""
    import numpy as np
    import torch

    kind = type(value)
    if kind in (torch.Tensor, torch.nn.Parameter):
        out[name] = torch.Tensor.detach(value).to("cpu").clone().contiguous()
    elif kind is np.ndarray and value.dtype.kind in "biuf":
        out[name] = torch.from_numpy(np.array(value, copy=True))
    elif kind in (bool, int, float) or isinstance(value, (np.bool_, np.integer, np.floating)) and kind.__module__ == "numpy":
        # float64: a Python float is a double, and float32 would lose digits a judge may compare
        out[name] = torch.tensor(bool(value)) if kind is bool else torch.tensor(float(value), dtype=torch.float64)
    elif kind in (dict,):
        for key in list(dict.keys(value)):
            _plain(dict.__getitem__(value, key), f"{name}.{key}" if name else str(key), out)
    elif kind in (list, tuple):
        for i, item in enumerate(list(value)):
            _plain(item, f"{name}.{i}" if name else str(i), out)
    else:
        raise WrongType(f"a {str(kind.__name__)[:MAX_NAME]} where a tensor or a number was expected")


def _alarm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise ProbeTimeout


MISSING = "the notebook lacks a name or a trained model this part needs: did all its cells run without errors?"


def describe_error(exc: BaseException) -> str:
    """The exception's type and the line of the student's cell it came from; never its text (hidden inputs).

    A LookupError raised by the probe itself (a function or a trained model missing from the notebook's namespace)
    gets one fixed explanation instead of a line.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    where = next((f"line {f.lineno} of your cell" for f in reversed(frames)
                  if f.filename.startswith(("/tmp/ipykernel", "<ipython"))), "")
    if not where and isinstance(exc, LookupError) and frames and frames[-1].filename.endswith(("<probes>", "probes.py")):
        where = MISSING
    return str(type(exc).__name__)[:MAX_NAME] + (f" ({where})" if where else "")


def probe(grade_id: str) -> None:
    """Run one probe and write its data (or the error it raised) for the judge."""
    import torch

    record: dict = {"error": "", "values": {}}
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(_STATE["seconds"])
    try:
        values: dict = {}
        _plain(_STATE["probes"][grade_id](_STATE["namespace"]), "", values)
        if sum(v.numel() for v in values.values()) > MAX_ELEMENTS:
            raise ValueError("the results are far larger than the exercise asks for")
        record["values"] = values
    except ProbeTimeout:
        record["error"] = f"timed out after {_STATE['seconds']} s (an endless loop?)"
    except WrongType as exc:
        record["error"] = f"returned the wrong type: {exc}"
    except BaseException as exc:  # noqa: BLE001 - anything the student's code raises is recorded, not re-raised
        record["error"] = describe_error(exc)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    path = os.path.join(_STATE["out_dir"], f"{_STATE['nonce']}-{grade_id}.pt")
    torch.save(record, path + ".part")
    os.replace(path + ".part", path)
