"""Code the runner sends into the student's kernel after the notebook has run: it only produces data.

`setup(spec_source, out_dir, nonce)` executes the hidden tests' module (its probes) in a private namespace;
`probe(grade_id)` calls one probe with the notebook's namespace and writes what it returns, converted to plain CPU
tensors, to `<out_dir>/<nonce>-<grade_id>.pt`. Nothing here decides a grade: a submission that tampers with this
code (or with torch) can only spoil its own data, which the trusted judge then marks wrong.
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


def setup(spec_source: str, out_dir: str, nonce: str, namespace: dict, probe_seconds: int) -> None:
    """Load the hidden tests' probes; `namespace` is the notebook's global namespace."""
    spec: dict = {"__name__": "hidden_tests"}
    exec(compile(spec_source, "<hidden tests>", "exec"), spec)
    _STATE.update(probes=spec["PROBES"], out_dir=out_dir, nonce=nonce, namespace=namespace, seconds=probe_seconds)


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
        raise WrongType(f"{name or 'the result'} is a {kind.__name__}, where a tensor was expected")


def _alarm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise ProbeTimeout


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
        frames = traceback.extract_tb(exc.__traceback__)
        where = next((f"line {f.lineno} of your cell" for f in reversed(frames) if f.filename.startswith("/tmp/ipykernel")
                      or f.filename.startswith("<ipython")), "")
        record["error"] = f"{type(exc).__name__}: {str(exc)[:300]}" + (f" ({where})" if where else "")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    path = os.path.join(_STATE["out_dir"], f"{_STATE['nonce']}-{grade_id}.pt")
    torch.save(record, path + ".part")
    os.replace(path + ".part", path)
