"""The trusted judge: load a probe's data without executing anything, compare it with the reference, say why.

One way to write a judge (``solutions/grading/<assignment>/judges.py``): a check function decorated with
``@criteria(label)`` takes ``(got, want)`` (the student's values and the reference's, ``{name: torch.Tensor}``), raises
`Fail` at the first unmet criterion and returns a short success detail. A `Fail` carries the problem, an optional
hint and, where it names a typical mistake, a stable ``diagnosis`` id (snake_case, unique per assignment and listed
in that judges file's ``DIAGNOSES``) that the class report counts. Messages have one shape, the one
`utils.checks` prints in the notebooks::

    ✗ kl_normal_std: wrong values; the sign is flipped. Hint: KL(q ‖ p) = E_q[log q − log p] ≥ 0.

Messages on hidden inputs say what is wrong (shape, dtype, wrong values, a likely cause) but never the expected values.
"""

from __future__ import annotations

import io
import math
import os
import stat
import zipfile
from collections.abc import Callable, Mapping
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


class Fail(Exception):
    """One unmet criterion: `problem` is what the student sees, then `hint`; `diagnosis` names a typical mistake."""

    def __init__(self, problem: str, hint: str = "", diagnosis: str = "") -> None:
        if hint and not problem.rstrip().endswith((".", "?", "!", ":")):
            problem = problem.rstrip() + "."
        super().__init__(problem + (f" Hint: {hint}" if hint else ""))
        self.problem, self.hint, self.diagnosis = problem, hint, diagnosis


def flag(got: dict, name: str) -> bool:
    """A boolean the probe recorded under `name`; False when it is missing or not a single value."""
    value = got.get(name)
    return value is not None and value.numel() == 1 and bool(value.item())


def require(condition: bool, problem: str, hint: str = "", diagnosis: str = "") -> None:
    """Raise `Fail(problem, hint, diagnosis)` unless `condition` holds."""
    if not condition:
        raise Fail(problem, hint, diagnosis)


Check = Callable[[dict, dict], "str | None"]


def criteria(label: str, check: Check | None = None) -> Judge | Callable[[Check], Judge]:
    """Judge from `check(got, want) -> success detail` that raises `Fail` on the first unmet criterion.

    Use as ``criteria("label", check)`` or as a decorator ``@criteria("label")``. Any other exception (values of
    the wrong form, missing names) is a failed part too, named by its type only, never a crash of the batch.
    """

    def wrap(fn: Check) -> Judge:
        def judge(got: dict, want: dict) -> Verdict:
            try:
                detail = fn(got, want)
            except Fail as exc:
                return Verdict(False, f"✗ {label}: {exc}", exc.diagnosis)
            except Exception as exc:  # noqa: BLE001 - malformed student data is a failed part, with the reason
                return Verdict(False, f"✗ {label}: your results have the wrong form ({type(exc).__name__})")
            return Verdict(True, f"✓ {label}" + (f": {detail}" if detail else ""))

        judge.__name__ = getattr(fn, "__name__", "judge")
        return judge

    return wrap(check) if check is not None else wrap


def get_value(got: dict, name: str, shape: tuple | None = None, what: str = "", *, hint: str = "",
              finite: bool = True) -> torch.Tensor:
    """The student's value `name`: present, of `shape` when given, finite; floats as float64.

    Raises `Fail` naming the problem as `what` (default: the name), with `hint` after a wrong shape. Pass
    ``finite=False`` where the judge diagnoses NaN or inf itself (e.g. "exp underflows: use logsumexp").
    """
    label = what or name
    found = got.get(name)
    if found is None:
        raise Fail(f"{label} is missing from the results (did the function return a tensor or a number?)")
    if shape is not None and tuple(found.shape) != tuple(shape):
        raise Fail(f"{label} has shape {tuple(found.shape)} but should have shape {tuple(shape)}", hint)
    if finite and found.is_floating_point() and not torch.isfinite(found).all():
        raise Fail(f"{label} contains NaN or inf")
    return found.double() if found.is_floating_point() else found


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


def require_close(name: str, got: dict, want: torch.Tensor, rtol: float, atol: float, hidden: bool,
                  hint: str = "", diagnosis: str = "") -> None:
    """Raise `Fail` with `compare`'s message (and `hint`, `diagnosis`) unless the student's `name` matches `want`."""
    message = compare(name, got.get(name), want, rtol, atol, hidden)
    if message:
        raise Fail(message, hint, diagnosis)


def require_all_close(got: dict, want: dict, rtol: float, atol: float, hidden: bool,
                      hints: Mapping[str, str] | None = None) -> None:
    """`require_close` for every value of the reference `want`, in its order (`hints`: name -> hint)."""
    for name, reference in want.items():
        require_close(name, got, reference, rtol, atol, hidden, (hints or {}).get(name, ""))


def match_mistake(got: torch.Tensor, mistakes: Mapping[str, tuple[str, torch.Tensor | float]], rtol: float,
                  atol: float = 1e-8) -> tuple[str, str] | None:
    """(diagnosis, hint) of the first typical mistake that `got` reproduces, or None.

    `mistakes` maps a diagnosis id to (hint, the mistake's value on the same input), as ``utils.checks.match_variant``
    does in the notebooks' checks.
    """
    for diagnosis, (hint, value) in mistakes.items():
        value = torch.as_tensor(value, dtype=torch.float64)
        if got.shape == value.shape and torch.allclose(got.double(), value, rtol=rtol, atol=atol):
            return diagnosis, hint
    return None
