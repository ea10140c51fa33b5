"""Hidden tests of 03_amortized_inference: the solution passes, typical wrong answers fail with a message that says why.

The solution's functions run in-process (no kernel). The trained encoder the probes read from the namespace is a
stand-in for `encoder_linear`: the exact posterior map of the notebook's PPCA, slightly off (as after training).
"""

import functools
import math

import pytest
import torch
from torch import nn

from tests import nbtools
from tests.grading.gradetools import assert_fails, assignment_and_reference, judge
from tests.test_nb03_checks import (
    AffineEncoder,
    ReluOutputEncoder,
    kl,
    make_per_point,
    make_row,
    semi_accumulating,
    stand_in_encoder,
)
from utils import train

NAME = "03_amortized_inference"
NB = nbtools.load(NAME)


@functools.cache
def ppca_stand_in_encoder() -> nn.Module:
    """tests/test_nb03_checks.py's stand-in trained encoder, for the hidden tests' linear model (a gap of ~0.45 nats)."""
    assignment, _ = assignment_and_reference(NAME)
    P = assignment.probes["ex3_1a_visible"].__globals__["_ppca"]()
    return stand_in_encoder(P["W"], P["b"], P["s2"])


def namespace(**overrides) -> dict:
    ns = {"torch": torch, "nn": nn, "math": math, "functools": functools, "train": train, "kl_normal_std": kl}
    for name in ("linear_elbo", "per_point_inference", "Encoder", "tradeoff_row", "semi_amortized"):
        assert nbtools.run_source(nbtools.cell_defining(NB, name), ns) is None
    ns["encoder_linear"] = ppca_stand_in_encoder()
    ns.update(overrides)
    return ns


def fails(grade_id: str, says: str, **overrides) -> str:
    return assert_fails(NAME, grade_id, namespace(**overrides), says)


@pytest.mark.parametrize("grade_id", ["ex3_1a_visible", "ex3_1a_hidden", "ex3_1b_visible", "ex3_1b_hidden",
                                      "ex3_2_visible", "ex3_2_hidden", "ex3_3_visible", "ex3_3_hidden",
                                      "ex3_4_visible", "ex3_4_hidden"])
def test_solution_passes_every_hidden_test(grade_id):
    verdict = judge(NAME, grade_id, namespace())
    assert verdict.passed, verdict.message


# --- 3.1a: linear_elbo ----------------------------------------------------------------------------------------------
def elbo_with(*, kl_sign=-1.0, spread=True, use_exp=True, constant=True):
    def linear_elbo(x, mu, logvar, W, b, sigma2):
        r = x - b - mu @ W.T
        var = logvar.exp() if use_exp else logvar
        s = (var * (W * W).sum(0)).sum(-1) if spread else 0.0
        c = -0.5 * x.shape[-1] * torch.log(2 * math.pi * sigma2) if constant else 0.0
        return c - 0.5 * ((r * r).sum(-1) + s) / sigma2 + kl_sign * kl(mu, logvar)
    return linear_elbo


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"kl_sign": 1.0}, "the KL term is added instead of subtracted"),
    ({"spread": False}, "the variance term sum_j s_j^2 ||w_j||^2 is missing"),
    ({"use_exp": False}, "log(s^2) is used where the variance"),
    ({"constant": False}, "off by a constant"),
])
def test_linear_elbo_mistakes_are_named(kwargs, says):
    fails("ex3_1a_visible", says, linear_elbo=elbo_with(**kwargs))


def test_linear_elbo_hidden_fails_without_revealing_values():
    verdict = judge(NAME, "ex3_1a_hidden", namespace(linear_elbo=elbo_with(spread=False)))
    assert not verdict.passed and "sum_j s_j^2 ||w_j||^2" in verdict.message
    assert "expected" not in verdict.message.split("Hint")[0]


def test_summing_over_points_is_named():
    right = elbo_with()
    fails("ex3_1a_visible", "not over the points", linear_elbo=lambda *args: right(*args).sum())


# --- 3.1b: per_point_inference --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "says"), [
    ({"use_init": False}, "start from a copy of init"),
    ({"clone_init": False}, "modified init in place"),
    ({"sign": -1.0}, "not within 0.01 nats of the best diagonal Q"),
])
def test_per_point_hidden_mistakes_are_named(kwargs, says):
    fails("ex3_1b_hidden", says, per_point_inference=make_per_point(**kwargs))


# --- 3.2: Encoder, train_encoder ------------------------------------------------------------------------------------
def with_encoder_class(encoder_cls) -> dict:
    ns = namespace()
    assert nbtools.run_source(nbtools.cell_defining(NB, "train_encoder"), ns) is None
    ns["Encoder"] = encoder_cls  # train_encoder builds this class
    return ns


def test_relu_output_layer_fails_the_hidden_part():
    verdict = judge(NAME, "ex3_2_hidden", with_encoder_class(ReluOutputEncoder))
    assert not verdict.passed and "amortization gap is more than 10%" in verdict.message, verdict.message


def test_encoder_returning_the_same_tensor_twice_is_named():
    class Same(nn.Module):
        def __init__(self, data_dim, hidden_dim, latent_dim):
            super().__init__()
            self.net = nn.Linear(data_dim, latent_dim)

        def forward(self, x):
            out = self.net(x)
            return out, out

    verdict = judge(NAME, "ex3_2_hidden", with_encoder_class(Same))
    assert not verdict.passed and "split the output" in verdict.message, verdict.message


def test_barely_trained_encoder_fails_the_visible_part():
    torch.manual_seed(0)
    untrained = AffineEncoder(nn.Linear(784, 16)).requires_grad_(False)
    # train_encoder (run by the probe on the non-linear decoder) is replaced by a stub: the linear part fails first.
    fails("ex3_2_visible", "amortization gap", encoder_linear=untrained,
          train_encoder=lambda *args, **kwargs: (untrained, {}))


# --- 3.3: tradeoff_row ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "grade_id", "says"), [
    ({"gap_sign": -1}, "ex3_3_visible", "per-point ELBO minus encoder ELBO"),
    ({"per_point_factor": 1}, "ex3_3_visible", "2 d numbers for every one"),
    ({"count_bias": False}, "ex3_3_visible", "count the biases too"),
    ({"as_tensor": True}, "ex3_3_visible", "convert with .item()"),
    ({"nan_when_unknown": False}, "ex3_3_hidden", "approximation_gap must be the float NaN"),
    ({"count_bias": False}, "ex3_3_hidden", "biases included"),
])
def test_tradeoff_mistakes_are_named(kwargs, grade_id, says):
    fails(grade_id, says, tradeoff_row=make_row(**kwargs))


def test_memorised_visible_tradeoff_fails_the_hidden_part():
    def memorised(elbo_per_point, elbo_encoder, n_points, latent_dim, encoder, log_px=None):
        return {"elbo_per_point": 9.5 / 3 - 0.6, "elbo_encoder": 9.5 / 3 - 3.6, "amortization_gap": 3.0,
                "approximation_gap": 0.6 if log_px is not None else float("nan"), "params_per_point": 300,
                "params_encoder": 74}

    ns = namespace(tradeoff_row=memorised)
    assert judge(NAME, "ex3_3_visible", ns).passed
    verdict = judge(NAME, "ex3_3_hidden", ns)
    assert not verdict.passed and "wrong on the hidden inputs" in verdict.message, verdict.message


# --- 3.4: semi_amortized --------------------------------------------------------------------------------------------
def semi_with(per_point_inference):
    ns = namespace(per_point_inference=per_point_inference)
    assert nbtools.run_source(nbtools.cell_defining(NB, "semi_amortized"), ns) is None
    return ns["semi_amortized"]


def test_restart_from_the_prior_fails_both_parts():
    from_prior = semi_with(make_per_point(use_init=False))
    fails("ex3_4_visible", "start from the encoder's output", semi_amortized=from_prior)
    fails("ex3_4_hidden", "start from the encoder's output", semi_amortized=from_prior)


def test_a_step_at_k0_is_named():
    right = namespace()["semi_amortized"]

    def keyed(encoder, elbo_fn, x, ks, *, lr):
        out = right(encoder, elbo_fn, x, [max(k, 1) for k in ks], lr=lr)
        return {k: out[max(k, 1)] for k in ks}

    fails("ex3_4_visible", "K = 0 means no step", semi_amortized=keyed)


# --- #19.3: the judges of the visible parts name the mistakes the visible checks now catch ------------------------------
@pytest.mark.parametrize(("grade_id", "says", "diagnosis", "overrides"), [
    ("ex3_1b_visible", "schedule is never stepped", "schedule_not_stepped",
     {"per_point_inference": make_per_point(step_schedule=False)}),
    ("ex3_1b_visible", "aliased instead of cloned", "init_modified_in_place",
     {"per_point_inference": make_per_point(clone_init=False)}),
    ("ex3_3_visible", "hard-coded to 0", "approximation_gap_hard_coded", {"tradeoff_row": make_row(approx_zero=True)}),
    ("ex3_3_visible", "return NaN", "approximation_gap_hard_coded", {"tradeoff_row": make_row(nan_when_unknown=False)}),
])
def test_visible_judges_name_the_new_mutants(grade_id, says, diagnosis, overrides):
    assert_fails(NAME, grade_id, namespace(**overrides), says, diagnosis)


def test_visible_judge_names_steps_accumulated_across_k():
    ns = namespace()
    ns["semi_amortized"] = semi_accumulating(ns["per_point_inference"])
    assert_fails(NAME, "ex3_4_visible", ns, "accumulates steps across K", "steps_accumulated_across_k")
