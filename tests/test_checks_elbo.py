"""utils.checks_elbo: its stored values are those of the reference solution, it computes no answer, and its guard
against torch.distributions switches off and on again."""

import math
from pathlib import Path

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from utils import checks, checks_elbo
from utils.widgets import LinearGaussian

F64 = torch.float64
MODEL = LinearGaussian(w=1.5, sigma=0.8)
X = torch.tensor(2.0, dtype=F64)


def kl_reference(mu, logvar):
    return kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros_like(mu), 1.0)).sum(-1)


def elbo_reference(x, m, s, model=MODEL):
    return model.log_marginal(x) - kl_divergence(Normal(m, s), Normal(*model.posterior(x)))


def test_stored_kl_values_are_the_reference_ones():
    mu, lv = (torch.tensor(v, dtype=F64) for v in (checks_elbo.KL_MU, checks_elbo.KL_LOGVAR))
    assert torch.allclose(kl_reference(mu, lv), torch.tensor(checks_elbo.KL_EXPECTED, dtype=F64), rtol=1e-10)
    assert torch.allclose(kl_reference(mu, 2 * lv), torch.tensor(checks_elbo.KL_LOGVAR_AS_LOG_SIGMA, dtype=F64),
                          rtol=1e-10)


def test_stored_elbo_values_are_the_reference_ones():
    x, m, s = checks_elbo.elbo_grid()
    assert torch.allclose(elbo_reference(x, m, s).flatten(), torch.tensor(checks_elbo.ELBO_EXPECTED, dtype=F64),
                          rtol=1e-10)
    kl_prior = kl_divergence(Normal(m, s), Normal(0.0, 1.0)).flatten()
    assert torch.allclose(kl_prior, torch.tensor(checks_elbo.ELBO_KL_PRIOR, dtype=F64), rtol=1e-10)
    for (m0, s0), (F, sd, kurtosis) in checks_elbo.MC_TRUTH.items():
        assert abs(F - elbo_reference(X, torch.tensor(m0, dtype=F64), torch.tensor(s0, dtype=F64)).item()) < 1e-9
        assert sd > 0 and kurtosis > 1
    for (m0, s0), F in checks_elbo.IW_ELBO.items():
        assert abs(F - elbo_reference(X, torch.tensor(m0, dtype=F64), torch.tensor(s0, dtype=F64)).item()) < 1e-9


def test_stored_beta_values_are_the_reference_ones():
    w, sigma2 = MODEL.w, MODEL.sigma**2
    m, s = torch.tensor(checks_elbo.BETA_M, dtype=F64), torch.tensor(checks_elbo.BETA_S, dtype=F64)
    ell = -0.5 * math.log(2 * math.pi * sigma2) - ((X - w * m) ** 2 + w**2 * s**2) / (2 * sigma2)
    kl = kl_divergence(Normal(m, s), Normal(0.0, 1.0))
    for beta in checks_elbo.BETAS:
        assert torch.allclose(ell - beta * kl, torch.tensor(checks_elbo.BETA_OBJECTIVE[beta], dtype=F64), rtol=1e-10)
        total = w**2 + beta * sigma2
        assert checks_elbo.BETA_OPTIMUM[beta] == pytest.approx((w * 2 / total, math.sqrt(beta * sigma2 / total)))


def test_the_module_holds_no_reference_implementation():
    source = Path(checks_elbo.__file__).read_text()
    for answer in ("kl_divergence", "log_prob", "logvar.exp() - 1", "logsumexp(log_w", "w**2 * s**2) / (2",
                   "w * x / (w**2 + beta"):
        assert answer not in source, answer


def test_without_distributions_switches_off_and_on_again():
    with checks_elbo.without_distributions(), pytest.raises(checks_elbo.UsesDistributions):
        Normal(0.0, 1.0)
    Normal(0.0, 1.0)  # restored, also after the exception
    with pytest.raises(checks.CheckFailed, match="uses torch.distributions.Normal"):
        checks_elbo.call_by_hand("kl", kl_reference, torch.zeros(1, 2), torch.zeros(1, 2))
    Normal(0.0, 1.0)


def test_an_unanswered_exercise_is_reported_as_such():
    def stub(*args):
        raise NotImplementedError("Exercise 2.3")
    with pytest.raises(NotImplementedError, match="Exercise 2.3"):
        checks_elbo.kl_normal_std(stub)
    Normal(0.0, 1.0)


def test_jensen_helpers():
    samples = checks_elbo.positive_samples(1000, torch.Generator().manual_seed(0))
    assert set(samples) >= {"Exponential(1)", "constant 2.5"}
    assert all(v.shape == (1000,) and (v > 0).all() for v, _ in samples.values())
    batch = torch.stack([v for v, _ in samples.values()])
    assert checks_elbo.jensen_gap_stderr(batch).shape == (len(samples),)


def test_right_answers_pass_every_visible_check(capsys):
    torch.set_default_dtype(F64)
    try:
        checks_elbo.jensen_gap(lambda s: torch.log(s.mean(-1)) - torch.log(s).mean(-1))
        checks_elbo.kl_normal_std(lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv).sum(-1))

        def elbo_mc(x, m, s, model, n, generator):
            z = m + s * torch.randn(n, generator=generator)
            terms = model.log_joint(x, z) - (-0.5 * math.log(2 * math.pi) - torch.log(s) - 0.5 * ((z - m) / s) ** 2)
            return terms.mean(), terms.std() / math.sqrt(n)

        checks_elbo.elbo_mc(elbo_mc, MODEL)
    finally:
        torch.set_default_dtype(torch.float32)
    assert capsys.readouterr().out.count("✓") >= 3
