"""utils.checks_vae: its stored numbers are the reference solution's, its statistics are right, and it holds no
exercise's answer (students can import it)."""

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils import checks, checks_vae


def reference_negative_elbo(x, logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum() / len(x)
    return rec + kl, rec, kl


def test_stored_elbo_values_are_the_reference_solutions():
    x, logits, mu, logvar = checks_vae.elbo_inputs()
    _, rec, kl = reference_negative_elbo(x, logits, mu, logvar)
    assert rec.item() == pytest.approx(checks_vae.VISIBLE_ELBO["reconstruction"], rel=1e-6)
    assert kl.item() == pytest.approx(checks_vae.VISIBLE_ELBO["kl"], rel=1e-6)
    checks_vae.check_negative_elbo(reference_negative_elbo)
    checks_vae.check_kl_properties(reference_negative_elbo)


def test_a_wrong_elbo_outside_the_named_mistakes_gets_the_part_that_is_wrong():
    def wrong_kl(x, logits, mu, logvar):
        loss, rec, kl = reference_negative_elbo(x, logits, mu, logvar)
        return loss + 0.3, rec, kl + 0.3

    with pytest.raises(checks.CheckFailed, match="negative_elbo kl"):
        checks_vae.check_negative_elbo(wrong_kl)


def test_importance_standard_error_and_unit_variance_offset():
    assert checks_vae.unit_variance_offset(2, 0.7, 0.0) == pytest.approx(0.0, abs=1e-9)  # q has unit variance
    assert checks_vae.importance_standard_error(3, 0.0, 0.0, 100) == pytest.approx(0.0, abs=1e-6)  # q = p
    d, mu, logvar, k = checks_vae.WIDE_Q
    se = checks_vae.importance_standard_error(d, mu, logvar, k)
    assert abs(checks_vae.unit_variance_offset(d, mu, logvar)) > 10 * se  # the wide q makes the mistake visible


def test_affine_maps_are_told_from_relu_networks():
    a, b = torch.randn(4, 5), torch.randn(4, 5)
    torch.manual_seed(0)
    assert checks_vae._is_affine(nn.Linear(5, 3), a, b)
    assert not checks_vae._is_affine(nn.Sequential(nn.Linear(5, 30), nn.ReLU(), nn.Linear(30, 3)), a, b)


def test_check_bound_names_a_failing_upstream_exercise_only_on_failure():
    def bad_reparameterize(mu, logvar, generator=None):
        return mu + logvar * torch.randn(mu.shape, generator=generator)

    with pytest.raises(checks.CheckFailed, match="uses your reparameterize from 5.1, which fails its check"):
        checks_vae.check_bound("x", 5.0, 0.0, 1.0, uses={"reparameterize": bad_reparameterize})
    checks_vae.check_bound("x", 0.5, 0.0, 1.0, uses={"reparameterize": bad_reparameterize})  # passes: no remark


def test_the_module_computes_no_answer():
    """The answers' key expressions are absent (checked by hand for each exercise: the KL's closed form,
    z = mu + exp(logvar / 2) * eps, the quantile grid, the entropy of a softmax, logsumexp of weights)."""
    source = inspect.getsource(checks_vae)
    for answer in ("- 1 - logvar", "exp(0.5 * logvar) *", "torch.exp(logvar / 2) *", ".icdf(", "log_softmax",
                   "torch.logsumexp(", "autograd.grad(", "torch.sigmoid(decoder"):
        assert answer not in source, answer


def test_bounds_are_the_seed_study_margins():
    # Reference solution over 5 seeds (binarized offline data): d = 20 mean 115.71, sd 0.30, worst 116.11;
    # d = 2 mean 161.86, sd 0.73, worst 162.61; L_1000 - ELBO 5.54-5.89 (mean 5.71, sd 0.13).
    assert 115.71 + 5 * 0.30 <= checks_vae.D20_BOUND <= 116.11 + 1.5  # about mean + 6 sd, worst seed + 1.4
    assert 161.86 + 5 * 0.73 <= checks_vae.D2_BOUND <= 162.61 + 3.5  # about mean + 5.6 sd, worst seed + 3.4
    low, high = checks_vae.IS_GAP_RANGE
    assert low < 5.54 - 1.5 + 0.05 and high > 5.89 + 2 - 0.05
    assert math.isfinite(low) and math.isfinite(high)
