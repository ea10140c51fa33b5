"""The trusted judge: load a probe's data without executing anything, compare it with the reference, say why.

Judges are small callables built here and used by the hidden tests (`solutions/grading/<assignment>.py`):
``judge(student_values, reference_values) -> Verdict``. Values are ``{name: torch.Tensor}``. Messages on hidden
inputs say what is wrong (shape, dtype, wrong values, a likely cause) but never print the expected values.
"""

from __future__ import annotations

import io
import math
import os
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

MAX_RESULT_BYTES = 64 * 1024 * 1024  # one probe's file, on disk and unpacked
MAX_PART_ELEMENTS = 20_000_000  # numbers in one probe's results (kernel_side refuses more before writing)
MAX_SUBMISSION_ELEMENTS = 50_000_000  # numbers in all of one submission's results together
MAX_VALUES = 10_000  # named values in one probe's results
MAX_NAME_CHARS = 200
MAX_ERROR_CHARS = 1000
ALLOWED_DTYPES = {torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.int16, torch.int32,
                  torch.int64, torch.uint8, torch.bool}


@dataclass(frozen=True)
class Verdict:
    """Whether a graded part passed, the message the student sees, and the named mistake it diagnosed.

    diagnosis: a stable identifier of the mistake (e.g. "sigma_for_variance"; "unanswered", "upstream_failed"), or ""
    when the failure was not diagnosed (or the part passed). The class report counts students by it.
    """

    passed: bool
    message: str
    diagnosis: str = ""


Judge = Callable[[dict, dict], Verdict]


class UnreadableResult(ValueError):
    """A results file that is missing, too large, not a regular file or not plain tensors."""


def read_untrusted(path: Path, max_bytes: int) -> bytes:
    """The bytes of a file a submission could have replaced: a regular file only (no symlink, FIFO, device or
    folder: `lstat` first, then opened with O_NOFOLLOW|O_NONBLOCK, so nothing can block), read up to `max_bytes`.

    Raises UnreadableResult saying what is wrong.
    """
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise UnreadableResult("results file is not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise UnreadableResult(f"no results ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):  # replaced between lstat and open
            raise UnreadableResult("results file is not a regular file")
        if info.st_size > max_bytes:
            raise UnreadableResult(f"results file is larger than {max_bytes // 2**20} MB")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnreadableResult(f"results file is larger than {max_bytes // 2**20} MB")
    return data


def _check_archive(data: bytes) -> None:
    """A torch.save file is a zip of *stored* members: refuse compressed ones (a zip bomb) and oversized contents."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise UnreadableResult("results are not a file written by torch.save") from None
    if any(m.compress_type != zipfile.ZIP_STORED or m.file_size != m.compress_size for m in members):
        raise UnreadableResult("results file holds compressed members (torch.save never compresses)")
    if sum(m.file_size for m in members) > MAX_RESULT_BYTES or len(members) > MAX_VALUES + 10:
        raise UnreadableResult(f"results unpack to more than {MAX_RESULT_BYTES // 2**20} MB")


def _check_tensor(name: str, value: object) -> torch.Tensor:
    """A plain dense CPU tensor of an allowed dtype with no repeated elements (no 0-stride or overlapping views)."""
    if type(name) is not str or len(name) > MAX_NAME_CHARS:
        raise UnreadableResult("results contain a value with a malformed name")
    if not isinstance(value, torch.Tensor) or value.dtype not in ALLOWED_DTYPES or value.layout != torch.strided \
            or value.device.type != "cpu":
        raise UnreadableResult("results contain something other than plain tensors")
    if value.numel() > MAX_PART_ELEMENTS:
        raise UnreadableResult(f"results hold more than {MAX_PART_ELEMENTS:,} numbers")
    if value.numel() > 1 and (any(st == 0 and sz > 1 for st, sz in zip(value.stride(), value.shape, strict=True))
                              or torch._debug_has_internal_overlap(value) != 0):
        raise UnreadableResult("results hold an expanded or overlapping tensor (entries sharing memory)")
    return torch.Tensor(value.detach()) if type(value) is not torch.Tensor else value


def load_result(path: Path, budget: list[int] | None = None) -> dict:
    """{"error": str, "values": {name: tensor}} from a probe's file, read with weights_only=True and checked.

    Refuses symlinks and non-regular files (a submission could plant them, or a FIFO that blocks), files or contents
    over MAX_RESULT_BYTES, compressed zip members, more than MAX_PART_ELEMENTS numbers, expanded or overlapping
    tensors and any content other than plain tensors of the usual dtypes; truncates the error message.
    `budget` ([numbers left]) is shared by all of one submission's parts: it is decreased, and the part refused once
    it would go below 0 (MAX_SUBMISSION_ELEMENTS in all).
    """
    data = read_untrusted(path, MAX_RESULT_BYTES)
    _check_archive(data)
    try:
        record = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read plain data is the submission's problem
        raise UnreadableResult(f"results could not be read as plain tensors ({type(exc).__name__})") from None
    if type(record) is not dict or type(record.get("error")) is not str or type(record.get("values")) is not dict:
        raise UnreadableResult("results have the wrong structure")
    if len(record["values"]) > MAX_VALUES:
        raise UnreadableResult(f"results hold more than {MAX_VALUES:,} values")
    values = {name: _check_tensor(name, value) for name, value in record["values"].items()}
    numbers = sum(v.numel() for v in values.values())
    if numbers > MAX_PART_ELEMENTS:
        raise UnreadableResult(f"results hold more than {MAX_PART_ELEMENTS:,} numbers")
    if budget is not None:
        if numbers > budget[0]:
            raise UnreadableResult(f"all results together hold more than {MAX_SUBMISSION_ELEMENTS:,} numbers")
        budget[0] -= numbers
    return {"error": truncate(record["error"], MAX_ERROR_CHARS), "values": values}


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when it was longer."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _fmt_shape(t: torch.Tensor) -> str:
    return str(tuple(t.shape))


def compare(name: str, got: torch.Tensor | None, want: torch.Tensor, rtol: float, atol: float, hidden: bool,
            exact_dtype: bool = False) -> str | None:
    """None when `got` matches `want` within the tolerances, else a message that names the mistake."""
    if got is None:
        return f"{name}: missing from the results"
    if got.shape != want.shape:
        if got.numel() == want.numel():
            return f"{name} has shape {_fmt_shape(got)} but should have shape {_fmt_shape(want)} (same numbers, reshape?)"
        return f"{name} has shape {_fmt_shape(got)} but should have shape {_fmt_shape(want)}"
    if exact_dtype and got.dtype != want.dtype:
        return f"{name} has dtype {got.dtype} but should have dtype {want.dtype}"
    if want.dtype == torch.bool or not want.is_floating_point():
        if torch.equal(got.to(want.dtype), want):
            return None
        wrong = (got.to(want.dtype) != want).float().mean().item()
        return f"{name}: {wrong:.0%} of the entries are wrong"
    g, w = got.double(), want.double()
    if not torch.isfinite(g).all():
        return f"{name} contains NaN or inf"
    if torch.allclose(g, w, rtol=rtol, atol=atol):
        return None
    hint = _diagnose(g, w, rtol, atol)
    detail = "" if hidden else f" (largest difference {(g - w).abs().max().item():.3g})"
    return f"{name}: wrong values{detail}" + (f"; {hint}" if hint else "")


def _diagnose(got: torch.Tensor, want: torch.Tensor, rtol: float, atol: float) -> str:
    """A likely cause for common mistakes: a sign flip, a constant factor, a constant offset, a transpose."""
    if torch.allclose(-got, want, rtol=rtol, atol=atol):
        return "the sign is flipped"
    denom = (want * want).sum()
    if denom > 0:
        factor = ((got * want).sum() / denom).item()
        if abs(factor - 1) > 1e-3 and math.isfinite(factor) and torch.allclose(got, factor * want, rtol=rtol * 10,
                                                                                  atol=atol * 10):
            return f"off by a constant factor of about {factor:.3g}"
    offset = (got - want).mean()
    if abs(offset.item()) > atol and torch.allclose(got - offset, want, rtol=rtol * 10, atol=atol * 10):
        return "off by a constant"
    if got.dim() == 2 and got.shape[0] == got.shape[1] and torch.allclose(got.T, want, rtol=rtol, atol=atol):
        return "transposed"
    return ""


def close(rtol: float = 1e-5, atol: float = 1e-6, hidden: bool = True, hints: dict[str, str] | None = None,
          exact_dtype: bool = False, label: str = "") -> Judge:
    """Judge: every reference value has a matching student value within rtol/atol (ints and bools: exactly).

    `hints` maps a value's name to a sentence added when that value is wrong (e.g. a likely misconception).
    """
    hints = hints or {}

    def judge(got: dict, want: dict) -> Verdict:
        problems = []
        for name, reference in want.items():
            message = compare(name, got.get(name), reference, rtol, atol, hidden, exact_dtype)
            if message:
                problems.append(message + (f" — hint: {hints[name]}" if name in hints else ""))
        where = "on the hidden inputs" if hidden else "on the visible example"
        if problems:
            return Verdict(False, f"✗ {label + ': ' if label else ''}" + "; ".join(problems[:3]))
        return Verdict(True, f"✓ {label + ': ' if label else ''}right {where}")

    return judge


def agree(name: str, min_fraction: float, label: str = "") -> Judge:
    """Judge for labels/decisions: at least `min_fraction` of the entries of `name` equal the reference's."""

    def judge(got: dict, want: dict) -> Verdict:
        g, w = got.get(name), want[name]
        if g is None or g.shape != w.shape:
            shape = "missing" if g is None else f"shape {_fmt_shape(g)}"
            return Verdict(False, f"✗ {label or name}: {shape}, expected shape {_fmt_shape(w)}")
        fraction = (g.to(w.dtype) == w).double().mean().item()
        if fraction >= min_fraction:
            return Verdict(True, f"✓ {label or name}: agrees with the reference on {fraction:.1%} of the inputs")
        return Verdict(False, f"✗ {label or name}: agrees with the reference on only {fraction:.1%} of the inputs "
                              f"(at least {min_fraction:.0%} needed)")

    return judge


def statistic(compute: Callable[[dict], float], low: float, high: float, label: str, hint: str = "") -> Judge:
    """Judge on a number the trusted side computes from the student's values (no reference needed).

    Used for stochastic exercises (a Monte Carlo estimate within its statistical tolerance) and for trained
    models evaluated here, e.g. `compute` rebuilds the model from the returned weights and measures a test loss.
    """

    def judge(got: dict, want: dict) -> Verdict:  # noqa: ARG001 - same signature as the other judges
        try:
            value = float(compute(got))
        except Exception as exc:  # noqa: BLE001 - malformed student data is a failed check, with the reason
            return Verdict(False, f"✗ {label}: could not be evaluated ({type(exc).__name__}: {str(exc)[:200]})")
        if math.isfinite(value) and low <= value <= high:
            return Verdict(True, f"✓ {label} = {value:.4g}")
        return Verdict(False, f"✗ {label} = {value:.4g}, outside the accepted range [{low:.4g}, {high:.4g}]"
                              + (f"; hint: {hint}" if hint else ""))

    return judge


def all_of(*judges: Judge) -> Judge:
    """Judge that passes when every judge passes; its message is the first failure's (or all successes')."""

    def judge(got: dict, want: dict) -> Verdict:
        verdicts = [j(got, want) for j in judges]
        failed = [v for v in verdicts if not v.passed]
        if failed:
            return failed[0]
        return Verdict(True, "; ".join(v.message for v in verdicts))

    return judge


class Fail(Exception):
    """Raised by a `criteria` check: one criterion failed; the message is what the student sees."""


def get_value(got: dict, name: str, shape: tuple | None = None, what: str = "", *, hint: str = "",
              finite: bool = True) -> torch.Tensor:
    """The student's value `name` for a `criteria` check: present, of `shape` when given, finite; floats as float64.

    Raises `Fail` naming the problem as `what` (default: the name), with `hint` after a wrong shape. Pass
    ``finite=False`` where the judge diagnoses NaN or inf itself (e.g. "exp underflows: use logsumexp").
    """
    label = what or name
    found = got.get(name)
    if found is None:
        raise Fail(f"{label} is missing from the results (did the function return a tensor or a number?)")
    if shape is not None and tuple(found.shape) != tuple(shape):
        raise Fail(f"{label} has shape {tuple(found.shape)} but should have shape {tuple(shape)}"
                   + (f" — hint: {hint}" if hint else ""))
    if finite and found.is_floating_point() and not torch.isfinite(found).all():
        raise Fail(f"{label} contains NaN or inf")
    return found.double() if found.is_floating_point() else found


def require_close(name: str, got: dict, want: torch.Tensor, rtol: float, atol: float, hidden: bool,
                  hint: str = "") -> None:
    """Raise `Fail` with `compare`'s message (and `hint`) unless the student's `name` matches `want`."""
    message = compare(name, got.get(name), want, rtol, atol, hidden)
    if message:
        raise Fail(message + (f" — hint: {hint}" if hint else ""))


def criteria(label: str, check: Callable[[dict, dict], str | None] | None = None):
    """Judge from `check(got, want) -> success detail` that raises `Fail` on the first unmet criterion.

    Use as ``criteria("label", check)`` or as a decorator ``@criteria("label")``. Any other exception (values of
    the wrong form, missing names) is a failed part too, with its reason, never a crash of the batch.
    """

    def wrap(fn: Callable[[dict, dict], str | None]) -> Judge:
        def judge(got: dict, want: dict) -> Verdict:
            try:
                detail = fn(got, want)
            except Fail as exc:
                return Verdict(False, f"✗ {label}: {exc}")
            except Exception as exc:  # noqa: BLE001 - malformed student data is a failed part, with the reason
                return Verdict(False, f"✗ {label}: your results have the wrong form ({type(exc).__name__}: "
                                      f"{str(exc)[:200]})")
            return Verdict(True, f"✓ {label}" + (f": {detail}" if detail else ""))

        judge.__name__ = getattr(fn, "__name__", "judge")
        return judge

    return wrap(check) if check is not None else wrap
