"""What the corpus tests need from the machine, and what they report at the end of the run.

`require_isolation()` skips a test that needs the real sandbox (namespaces and per-submission limits) where it is
unavailable, except under `make test-grading` (VAE_REQUIRE_ISOLATION=1), where that is a failure: CI must never go
green without grading the exploit corpus. `GRADED` counts what was graded; tests/conftest.py prints it.
"""

from __future__ import annotations

import os

import pytest

from instructor.grading import sandbox

GRADED: dict[str, int] = {"attacks": 0, "honest": 0}
REQUIRE_VARIABLE = "VAE_REQUIRE_ISOLATION"


def require_isolation() -> None:
    """Skip (or fail, when $VAE_REQUIRE_ISOLATION is set) unless strong isolation and per-submission limits work."""
    reason = sandbox.check_isolation() or sandbox.check_limits()
    if reason is None:
        return
    message = f"the grading sandbox is unavailable here: {reason}"
    if os.environ.get(REQUIRE_VARIABLE):
        pytest.fail(f"{message} (make test-grading needs Linux with unshare, run as root)", pytrace=False)
    pytest.skip(message)


def summary_line() -> str | None:
    """The line printed after the tests, or None when no corpus was graded."""
    if not GRADED["attacks"] and not GRADED["honest"]:
        return None
    return (f"exploit corpus: {GRADED['attacks']} attacks graded in the sandbox, next to {GRADED['honest']} honest "
            "submissions")
