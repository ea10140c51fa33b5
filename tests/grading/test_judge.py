"""The judges' one way of judging: what a student sees for a missing, misshapen, non-finite or wrong value, the hint
format shared with `utils.checks`, and the diagnosis ids the class report counts."""

from __future__ import annotations

import pytest
import torch

from instructor.grading.judge import Fail, criteria, get_value, match_mistake, require, require_all_close, require_close


def test_get_value_returns_floats_as_float64_and_keeps_integers():
    got = {"x": torch.ones(2, 3), "n": torch.tensor([4, 5])}
    assert get_value(got, "x", (2, 3)).dtype == torch.float64
    assert get_value(got, "n").dtype == torch.int64


@pytest.mark.parametrize(("got", "says"), [
    ({}, "elbo is missing from the results (did the function return a tensor or a number?)"),
    ({"elbo": torch.ones(3, 1)}, "elbo has shape (3, 1) but should have shape (3,). Hint: sum over the last dimension"),
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
    with pytest.raises(Fail, match=r"kl: wrong values .*the sign is flipped\. Hint: KL = ½ Σ"):
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


def test_a_named_mistake_reaches_the_verdict_with_its_diagnosis_and_the_notebooks_hint_format():
    @criteria("kl_normal_std")
    def judge(got: dict, want: dict) -> str:
        value = get_value(got, "kl", (2,))
        mistake = match_mistake(value, {"kl_sign_flipped": ("KL(q ‖ p) ≥ 0.", -want["kl"]),
                                        "kl_half_missing": ("the factor ½ is missing.", 2 * want["kl"])}, rtol=1e-6)
        if mistake:
            raise Fail("wrong values", mistake[1], mistake[0])
        require_all_close(got, want, rtol=1e-6, atol=1e-8, hidden=True)
        return "right"

    want = {"kl": torch.tensor([0.5, 1.5], dtype=torch.float64)}
    assert judge({"kl": want["kl"].clone()}, want).passed
    flipped = judge({"kl": -want["kl"]}, want)
    assert (flipped.passed, flipped.message, flipped.diagnosis) == (
        False, "✗ kl_normal_std: wrong values. Hint: KL(q ‖ p) ≥ 0.", "kl_sign_flipped")
    other = judge({"kl": want["kl"] + 0.3}, want)
    assert not other.passed and other.diagnosis == "" and "wrong values" in other.message


def test_require_passes_or_fails_with_its_diagnosis():
    require(True, "never shown")
    with pytest.raises(Fail) as exc:
        require(False, "m_step: these are standard deviations", "return the variances.", "sigma_for_variance")
    assert (str(exc.value), exc.value.diagnosis) == (
        "m_step: these are standard deviations. Hint: return the variances.", "sigma_for_variance")


def test_an_unexpected_error_in_a_judge_shows_its_type_only():
    @criteria("elbo")
    def judge(got: dict, want: dict) -> str:
        raise KeyError("a hidden input's name")

    verdict = judge({}, {})
    assert not verdict.passed and verdict.message == "✗ elbo: your results have the wrong form (KeyError)"


def test_flag_reads_a_recorded_boolean_and_treats_missing_or_odd_values_as_false():
    from instructor.grading.judge import flag

    assert flag({"ok": torch.tensor(True)}, "ok") is True
    assert flag({"ok": torch.tensor(False)}, "ok") is False
    assert flag({}, "ok") is False  # the probe did not record it
    assert flag({"ok": torch.ones(3)}, "ok") is False  # a forged non-scalar
