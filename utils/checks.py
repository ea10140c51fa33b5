"""Helpers that the notebooks' check cells call.

Every check either prints one line starting with ✓ or raises an AssertionError whose message starts
with ✗, names the check, says what is wrong and, where it can, the likely cause::

    ✓ class_means: worst error 2.1e-08 (allowed 1.2e-05: rtol 1e-05, atol 1e-08)
    ✗ class_means: expected shape (10, 28, 28), got (10, 784). Hint: keep the image dimensions.

No helper here knows an exercise's answer: the notebook computes the expected value and passes it in.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence

import numpy as np
import torch

ArrayLike = torch.Tensor | np.ndarray | float | int | Sequence[float]


class CheckFailed(AssertionError):
    """A failed check; its message says what is wrong and what to try.

    In a notebook the one ✗ line is all that shows: IPython renders `_render_traceback_` instead of a traceback
    (the cell still ends in an error, so nbval and the grader see the failure).
    """

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


def _as_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def rel_error(got: ArrayLike, expected: ArrayLike, eps: float = 1e-8) -> float:
    """Largest elementwise relative error max |got - expected| / max(eps, |got| + |expected|)."""
    a, b = _as_numpy(got), _as_numpy(expected)
    return float(np.max(np.abs(a - b) / np.maximum(eps, np.abs(a) + np.abs(b)), initial=0.0))


def passed(name: str, detail: str = "") -> None:
    """Print the one-line success message."""
    print(f"✓ {name}" + (f": {detail}" if detail else ""))


def fail(name: str, problem: str, hint: str = "") -> None:
    """Raise the one-line failure message."""
    raise CheckFailed(f"✗ {name}: {problem}" + (f" Hint: {hint}" if hint else ""))


def check_type(name: str, got: object, expected_type: type | tuple[type, ...], hint: str = "") -> None:
    """Fail unless `got` is an instance of `expected_type`."""
    if not isinstance(got, expected_type):
        names = expected_type.__name__ if isinstance(expected_type, type) else " or ".join(t.__name__ for t in expected_type)
        fail(name, f"expected a {names}, got {type(got).__name__}.", hint or "did the function return the right object?")


def check_shape(name: str, got: torch.Tensor | np.ndarray, expected_shape: Sequence[int], hint: str = "") -> None:
    """Fail unless `got.shape == expected_shape`; the default hint spots sum-vs-mean and flatten mistakes."""
    check_type(name, got, (torch.Tensor, np.ndarray))
    got_shape, expected_shape = tuple(got.shape), tuple(expected_shape)
    if got_shape == expected_shape:
        return
    if not hint:
        if np.prod(got_shape) == np.prod(expected_shape):
            hint = "same number of elements: reshape or keep the original dimensions."
        elif len(got_shape) < len(expected_shape):
            hint = "a dimension is missing: did you reduce (sum/mean) over one dimension too many?"
        elif len(got_shape) > len(expected_shape):
            hint = "an extra dimension: did you forget to reduce (sum/mean) over one dimension?"
    fail(name, f"expected shape {expected_shape}, got {got_shape}.", hint)


def check_dtype(name: str, got: torch.Tensor, expected: torch.dtype, hint: str = "") -> None:
    """Fail unless the tensor has dtype `expected`."""
    if got.dtype != expected:
        fail(name, f"expected dtype {expected}, got {got.dtype}.", hint or f"convert with .to({expected}).")


def check_finite(name: str, got: ArrayLike, hint: str = "") -> None:
    """Fail if any element is NaN or infinite."""
    arr = _as_numpy(got)
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        fail(name, f"{bad} value(s) are NaN or infinite.", hint or "a log of 0, a division by 0, or an exp that overflowed?")


def _diagnose_scale(got: np.ndarray, expected: np.ndarray) -> str:
    """Guess the usual reason two arrays of the same shape differ: sign, a constant factor, a constant offset.

    Least-squares fits got ≈ r·expected and got ≈ expected + c; a fit whose residual is tiny names the cause.
    """
    a, b = got.ravel(), expected.ravel()
    norm = float(np.linalg.norm(b))
    if norm == 0:
        return ""
    r = float(a @ b) / norm**2
    if np.linalg.norm(a - r * b) < 1e-3 * norm:
        if abs(r + 1) < 1e-3:
            return "the sign is flipped."
        if abs(r - 1) > 1e-3:
            return f"off by a constant factor of {r:.4g}: a sum where a mean was meant (or the reverse), or a missing ½?"
    c = float(np.mean(a - b))
    if a.size > 1 and np.linalg.norm(a - b - c) < 1e-3 * np.linalg.norm(a - b) and abs(c) > 1e-6:
        return f"off by a constant {c:.4g}: a missing or extra constant term?"
    return ""


def check_close(
    name: str,
    got: ArrayLike,
    expected: ArrayLike,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    hint: str = "",
    show_expected: bool = True,
) -> None:
    """Fail unless every element satisfies |got - expected| <= atol + rtol * |expected| (numpy's allclose).

    Both messages report that tested measure at the worst element: its error and what was allowed there, e.g.
    ``✓ kl: worst error 3.1e-09 (allowed 1.0e-05: rtol 1e-05, atol 1e-08)``. A failure reports shape mismatches
    first, then a diagnosis (sign, constant factor, offset). show_expected=False hides the expected values (hidden
    tests must not reveal answers).
    """
    if isinstance(expected, (torch.Tensor, np.ndarray)) and np.ndim(expected) > 0:
        check_type(name, got, (torch.Tensor, np.ndarray), hint)
        check_shape(name, got, tuple(expected.shape))
    a, b = _as_numpy(got), _as_numpy(expected)
    check_finite(name, a)
    a, b = np.broadcast_arrays(a, b)
    error, allowed = np.abs(a - b), atol + rtol * np.abs(b)
    worst = int(np.argmax(error / allowed)) if a.size else 0
    measure = (f"worst error {error.flat[worst]:.1e} (allowed {allowed.flat[worst]:.1e}: rtol {rtol:.0e}, atol {atol:.0e})"
               if a.size else "nothing to compare")
    if np.all(error <= allowed):
        passed(name, measure)
        return
    detail = measure.replace("worst error", "error", 1) + " is too large"
    if show_expected:
        detail += f" (at flat index {worst}: got {a.flat[worst]:.6g}, expected {b.flat[worst]:.6g})"
    diagnosis = _diagnose_scale(a, b)
    fail(name, detail + ".", " ".join(s for s in (diagnosis, hint) if s))


def check_between(name: str, value: float, low: float, high: float, hint: str = "") -> None:
    """Fail unless low <= value <= high (e.g. a loss bound measured with a margin)."""
    value = float(value)
    if not np.isfinite(value):
        fail(name, f"value is {value}.", hint or "a NaN loss usually means log(0) or a learning rate too high.")
    if not low <= value <= high:
        fail(name, f"{value:.4g} is outside [{low:.4g}, {high:.4g}].", hint)
    passed(name, f"{value:.4g} in [{low:.4g}, {high:.4g}]")


def match_variant(got: ArrayLike, variants: Mapping[str, ArrayLike], rtol: float = 1e-4) -> str | None:
    """Name the first entry of `variants` (typical wrong answers computed on the same input) that `got` matches.

    Used by checks to say *which* mistake was made, e.g. {"KL sign flipped": -kl, "mean over pixels": ...}.
    """
    a = _as_numpy(got)
    for label, value in variants.items():
        b = _as_numpy(value)
        if a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=1e-8):
            return label
    return None


# ------------------------------------------------------------------------------------------------ unanswered exercises
STUB = re.compile(r"^Exercise ([\w.]+)$")  # the message of every stub: raise NotImplementedError("Exercise 1.1")


class _Unanswered:
    """What a notebook shows while exercises are unanswered: one ✗ line where an exercise is first needed, and a
    one-line note (no error output) in every later cell that needs it or a value such a cell could not compute."""

    def __init__(self) -> None:
        self.reported: set[str] = set()
        self.pending: dict[str, str] = {}  # name a failed cell would have assigned -> the exercise it waits for

    def __call__(self, shell, etype, value, tb, tb_offset=None) -> None:
        match = STUB.match(str(value)) if issubclass(etype, NotImplementedError) else None
        name = getattr(value, "name", None) if issubclass(etype, NameError) else None
        exercise = match.group(1) if match else self.pending.get(name or "")
        if exercise:  # what this cell would have assigned is missing now, for the same reason
            for assigned in _assigned_names(shell.user_ns.get("_ih", [""])[-1]):
                self.pending[assigned] = exercise
        if match:
            if exercise in self.reported:
                print(f"⏸ This cell waits for Exercise {exercise}, which is not answered yet.")
                return
            self.reported.add(exercise)
            shell._showtraceback(etype, value, [f"✗ Exercise {exercise} is not answered yet: write your code under "
                                                "'# YOUR CODE HERE' (and delete the raise NotImplementedError line)."])
        elif exercise:
            print(f"⏸ This cell needs `{name}`, which an earlier cell could not compute: it waits for "
                  f"Exercise {exercise}, which is not answered yet.")
        else:
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset)


def _assigned_names(source: str) -> set[str]:
    """Names a cell assigns at its top level (the values a later cell may miss when this cell fails)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for target in targets:
            names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)} if target is not None else set()
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.For, ast.With)):
            names |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return names


def _install_notebook_messages() -> None:
    """In IPython, show unanswered exercises and the cells that wait for them in one line each (see _Unanswered)."""
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: nothing to install
        return
    shell = get_ipython()
    if shell is not None and not getattr(shell, "_course_messages", False):
        shell.set_custom_exc((NotImplementedError, NameError), _Unanswered())
        shell._course_messages = True


_install_notebook_messages()
