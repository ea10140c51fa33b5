"""The judges' shared value helpers: what a student sees for a missing, misshapen, non-finite or wrong value."""

from __future__ import annotations

import pytest
import torch

from instructor.grading.judge import Fail, criteria, get_value, require_close


def test_get_value_returns_floats_as_float64_and_keeps_integers():
    got = {"x": torch.ones(2, 3), "n": torch.tensor([4, 5])}
    assert get_value(got, "x", (2, 3)).dtype == torch.float64
    assert get_value(got, "n").dtype == torch.int64


@pytest.mark.parametrize(("got", "says"), [
    ({}, "elbo is missing from the results (did the function return a tensor or a number?)"),
    ({"elbo": torch.ones(3, 1)}, "elbo has shape (3, 1) but should have shape (3,) — hint: sum over the last dimension"),
    ({"elbo": torch.tensor([1.0, float("nan"), 2.0])}, "elbo contains NaN or inf"),
])
def test_get_value_names_what_is_wrong(got, says):
    with pytest.raises(Fail) as exc:
        get_value(got, "elbo", (3,), hint="sum over the last dimension")
    assert str(exc.value) == says


def test_get_value_uses_the_label_given():
    with pytest.raises(Fail, match=r"^linear_elbo's result is missing"):
        get_value({}, "elbo", what="linear_elbo's result")


def test_require_close_passes_within_tolerance_and_diagnoses_a_sign_flip():
    want = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    require_close("kl", {"kl": want + 1e-9}, want, rtol=1e-6, atol=1e-8, hidden=False)
    with pytest.raises(Fail, match=r"kl: wrong values .*the sign is flipped — hint: KL = ½ Σ"):
        require_close("kl", {"kl": -want}, want, rtol=1e-6, atol=1e-8, hidden=False, hint="KL = ½ Σ(...)")


def test_hidden_comparisons_never_show_the_expected_values():
    want = torch.tensor([0.123456, 7.654321], dtype=torch.float64)
    with pytest.raises(Fail) as exc:
        require_close("mean", {"mean": want + 1.0}, want, rtol=1e-6, atol=1e-8, hidden=True)
    message = str(exc.value)
    assert "wrong values" in message and "0.123" not in message and "7.65" not in message and "difference" not in message


def test_a_failed_criterion_becomes_a_failed_part_with_its_label():
    @criteria("Exercise 9")
    def judge(got: dict, want: dict) -> str:
        get_value(got, "x", (2,))
        return "fine"

    assert judge({"x": torch.zeros(2)}, {}).passed
    verdict = judge({"x": torch.zeros(3)}, {})
    assert not verdict.passed and verdict.message == "✗ Exercise 9: x has shape (3,) but should have shape (2,)"
