"""Hidden tests of 02_latent_variables_elbo: the solution passes, typical wrong answers fail with a message that says why."""

import math

import pytest
import torch

from tests import nbtools
from tests.grading.gradetools import assert_fails, judge
from tests.test_nb02_checks import (
    EM_STEP_MISTAKES,
    KL_MISTAKES,
    beta_misplaced,
    elbo_factory,
    elbo_mc_factory,
    ell_factory,
    iw_factory,
    kl_by_distributions,
    kl_right,
    m_step_factory,
    tempered_e_step,
)
from utils import widgets

NAME = "02_latent_variables_elbo"
NB = nbtools.load(NAME)
GRADE_IDS = ["ex2_1_visible", "ex2_1_hidden", "ex2_2_visible", "ex2_2_em_visible", "ex2_2_hidden", "ex2_3_visible",
             "ex2_3_hidden", "ex2_4_visible", "ex2_4_mc_visible", "ex2_4_hidden", "ex2_5_visible", "ex2_5_hidden",
             "ex2_6_visible", "ex2_6_hidden"]


@pytest.fixture(autouse=True)
def float64_default():
    """The notebook computes in float64 (its setup cell sets the default dtype), so the probes run under it too."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _namespace(**overrides) -> dict:
    ns: dict = {"torch": torch, "math": math, "widgets": widgets}
    for name in ("jensen_gap", "gmm_log_joint", "e_step", "kl_normal_std", "expected_log_likelihood", "beta_objective"):
        assert nbtools.run_source(nbtools.cell_defining(NB, name), ns) is None, name
    assert nbtools.run_source(nbtools.cell_defining(NB, "iw_bound"), ns) is None
    ns.update(overrides)
    return ns


def fails(grade_id: str, says: str, **wrong) -> str:
    return assert_fails(NAME, grade_id, _namespace(**wrong), says)


@pytest.mark.parametrize("grade_id", GRADE_IDS)
def test_solution_passes_every_hidden_test(grade_id):
    verdict = judge(NAME, grade_id, _namespace())
    assert verdict.passed, verdict.message


# ---- 2.1 -------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("wrong", "says"), [
    (lambda s: torch.log(s).mean(-1) - torch.log(s.mean(-1)), "the sign is flipped"),
    (lambda s: torch.log(s.sum(-1)) - torch.log(s).mean(-1), "off by log N"),
])
def test_jensen_mistakes_are_named(wrong, says):
    fails("ex2_1_visible", says, jensen_gap=wrong)
    fails("ex2_1_hidden", "jensen_gap (hidden)", jensen_gap=wrong)


def test_jensen_wrong_dimension_is_named():
    """#19.3 mutant: reduced over dim=0 (main's visible test saw only 1-d inputs)."""
    fails("ex2_1_visible", "not over dim=0", jensen_gap=lambda s: torch.log(s.mean(0)) - torch.log(s).mean(0))
    assert judge(NAME, "ex2_1_visible", _namespace(jensen_gap=lambda s: torch.log(s.mean(0)) - torch.log(s).mean(0))
                 ).diagnosis == "jensen_wrong_dim"


def test_jensen_reducing_everything_fails_the_batch():
    fails("ex2_1_hidden", "reduce over the last dimension", jensen_gap=lambda s: torch.log(s.mean()) - torch.log(s).mean())


def test_jensen_memorised_visible_answer_fails_the_hidden_inputs():
    right = _namespace()["jensen_gap"]

    def memorised(samples):
        return right(samples) if samples.shape == (100_000,) else torch.zeros(samples.shape[:-1])

    assert judge(NAME, "ex2_1_visible", _namespace(jensen_gap=memorised)).passed
    fails("ex2_1_hidden", "5 standard errors", jensen_gap=memorised)


# ---- 2.2 -------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("override", "says"), EM_STEP_MISTAKES)
def test_em_step_mistakes_are_named(override, says):
    fails("ex2_2_visible", says, **override)


def test_responsibilities_that_are_not_the_posterior_fail_the_em_run():
    fails("ex2_2_em_visible", "after an E-step F(θ, Q) differs from log p(x)", e_step=tempered_e_step)
    fails("ex2_2_hidden", "(hidden)", e_step=tempered_e_step)


def test_a_bad_m_step_fails_the_em_run():
    fails("ex2_2_em_visible", "EM", m_step=m_step_factory(var_div_n=True))


def test_em_hidden_names_the_mistake_without_revealing_values():
    message = fails("ex2_2_hidden", "μ_k = Σ_n r_nk x_n / N_k", m_step=m_step_factory(mu_div_n=True))
    assert "largest difference" not in message and "expected" not in message


def test_e_step_in_place_is_named():
    right = _namespace()["e_step"]

    def in_place(x, pi, mu, var):
        out = right(x.clone(), pi, mu, var)
        x.mul_(1.0 + 1e-9)
        return out

    fails("ex2_2_hidden", "in place", e_step=in_place)


# ---- 2.3 -------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("wrong", "says"), KL_MISTAKES)
def test_kl_mistakes_are_named(wrong, says):
    fails("ex2_3_visible", says, kl_normal_std=wrong)
    fails("ex2_3_hidden", says, kl_normal_std=wrong)


@pytest.mark.parametrize(("wrong", "diagnosis"), [
    (KL_MISTAKES[0][0], "logvar_as_log_sigma"), (KL_MISTAKES[1][0], "log_sigma_for_log_variance"),
    (KL_MISTAKES[2][0], "kl_half_missing"), (KL_MISTAKES[3][0], "kl_sign_flipped"),
    (KL_MISTAKES[4][0], "mean_over_latent_dims"), (KL_MISTAKES[5][0], "kl_minus_one_missing")])
def test_kl_mistakes_carry_their_diagnosis_id(wrong, diagnosis):
    for grade_id in ("ex2_3_visible", "ex2_3_hidden"):
        assert judge(NAME, grade_id, _namespace(kl_normal_std=wrong)).diagnosis == diagnosis


def test_torch_distributions_is_refused_where_the_exercise_forbids_it():
    """#19.1: the rule "no torch.distributions" is enforced by the judges too (the probes switch it off)."""
    for grade_id in ("ex2_3_visible", "ex2_3_hidden"):
        assert judge(NAME, grade_id, _namespace(kl_normal_std=kl_by_distributions)).diagnosis == \
            "uses_torch_distributions"

    def elbo(x, m, s, model):
        q = torch.distributions.Normal(m, s)
        return model.log_marginal(x) - torch.distributions.kl_divergence(q, torch.distributions.Normal(
            *model.posterior(x)))
    for grade_id in ("ex2_4_visible", "ex2_4_hidden"):
        fails(grade_id, "uses torch.distributions", elbo=elbo)


def test_kl_memorised_visible_answer_fails_the_hidden_inputs():
    def memorised(mu, logvar):
        return kl_right(mu, logvar) if mu.shape in ((5, 3), (2, 4)) else torch.ones(mu.shape[:-1])

    assert judge(NAME, "ex2_3_visible", _namespace(kl_normal_std=memorised)).passed
    message = fails("ex2_3_hidden", "wrong values", kl_normal_std=memorised)
    assert "largest difference" not in message


# ---- 2.4 -------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("elbo", "says"), [
    (elbo_factory(ell_factory(), sign=+1), "the KL term is added"),
    (elbo_factory(ell_factory(variance_term=False)), "the variance term is missing"),
    (elbo_factory(ell_factory(constant=False)), "the constant −½ log(2πσ²)"),
    (elbo_factory(ell_factory(), logvar=torch.log), "kl_normal_std wants log s² = 2 log s"),
])
def test_elbo_mistakes_are_named(elbo, says):
    fails("ex2_4_visible", says, elbo=elbo)
    fails("ex2_4_hidden", says, elbo=elbo)


@pytest.mark.parametrize(("elbo_mc", "says"), [
    (elbo_mc_factory(se_scale=lambda n: 1.0), "divide the standard deviation by √n_samples"),
    (elbo_mc_factory(se_scale=lambda n: 1 / n), "times the true one"),
    (elbo_mc_factory(from_prior=True), "sample z = m + s·ε from q"),
])
def test_elbo_mc_mistakes_are_named(elbo_mc, says):
    fails("ex2_4_mc_visible", says, elbo_mc=elbo_mc)


@pytest.mark.parametrize(("log_q", "diagnosis"), [("no 1/s²", "log_q_missing_inverse_variance"),
                                                   ("no log s", "log_q_wrong")])
def test_elbo_mc_wrong_log_q_is_named(log_q, diagnosis):
    """#19.3: a wrong log q got "sample z from q, not from the prior" from the hidden tests too."""
    for grade_id in ("ex2_4_mc_visible", "ex2_4_hidden"):
        message = assert_fails(NAME, grade_id, _namespace(elbo_mc=elbo_mc_factory(log_q=log_q)), "log q(z)",
                               diagnosis)
        assert "from the prior" not in message


def test_elbo_mc_with_another_random_stream_passes():
    def other_stream(x, m, s, model, n_samples, generator):  # z drawn directly, not as m + s·ε; same distribution
        z = torch.normal(m.expand(n_samples), s.expand(n_samples), generator=generator)
        terms = model.log_joint(x, z) - torch.distributions.Normal(m, s).log_prob(z)
        return terms.mean(), terms.std() / math.sqrt(n_samples)

    for gid in ("ex2_4_mc_visible", "ex2_4_hidden"):
        verdict = judge(NAME, gid, _namespace(elbo_mc=other_stream))
        assert verdict.passed, verdict.message


def test_elbo_mc_inexact_at_the_posterior_fails_the_hidden_test():
    def biased(x, m, s, model, n_samples, generator):
        est, se = elbo_mc_factory()(x, m, s, model, n_samples, generator)
        return est, se + 1e-3

    fails("ex2_4_hidden", "with q = the posterior", elbo_mc=biased)


# ---- 2.5 -------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("mode", "visible_says", "hidden_says"), [
    ("mean of logs", "does not grow", "does not grow"),
    ("no 1/k", "1/k is missing", "above log p(x)"),
])
def test_iw_mistakes_are_named(mode, visible_says, hidden_says):
    fails("ex2_5_visible", visible_says, iw_bound=iw_factory(mode))
    message = fails("ex2_5_hidden", hidden_says, iw_bound=iw_factory(mode))
    assert "log p(x) =" not in message


def test_iw_logsumexp_over_groups_is_named():
    """#19.3: the NaN standard error is diagnosed before any comparison with it."""
    for grade_id in ("ex2_5_visible", "ex2_5_hidden"):
        assert_fails(NAME, grade_id, _namespace(iw_bound=iw_factory("wrong dim")), "not over the groups (dim=0)",
                     "iw_logsumexp_over_groups")


# ---- 2.6 -------------------------------------------------------------------------------------------------------------

def ignores_beta(x, m, s, model, beta):  # noqa: ARG001 - the mistake
    return elbo_factory(ell_factory())(x, m, s, model)


def test_beta_mistakes_are_named():
    """#19.3: the β mistakes all got "gradient not 0 … or optimize longer"."""
    for grade_id in ("ex2_6_visible", "ex2_6_hidden"):
        assert_fails(NAME, grade_id, _namespace(optimal_q_beta=lambda x, model, beta: model.posterior(x)),
                     "the exact posterior", "beta_posterior_for_every_beta")
        assert_fails(NAME, grade_id, _namespace(optimal_q_beta=beta_misplaced), "β divides σ²",
                     "beta_divides_sigma2")
        assert_fails(NAME, grade_id, _namespace(beta_objective=ignores_beta), "the same value for every β",
                     "beta_objective_ignores_beta")


def test_beta_consistently_misplaced_is_named():
    """β on the log-likelihood instead of the KL, in both functions: a stationary maximum, but of the wrong objective;
    main's visible judge passed it."""
    ns = _namespace()
    ell, kl = ns["expected_log_likelihood"], ns["kl_normal_std"]

    def objective(x, m, s, model, beta):
        return beta * ell(x, m, s, model) - kl(m.reshape(-1, 1), (2 * torch.log(s)).reshape(-1, 1)).reshape(m.shape)

    def optimum(x, model, beta):
        total = beta * model.w**2 + model.sigma**2
        return beta * model.w * x / total, torch.full_like(x, math.sqrt(model.sigma**2 / total))

    fails("ex2_6_visible", "β multiplies the KL term", beta_objective=objective, optimal_q_beta=optimum)
    message = fails("ex2_6_hidden", "β multiplies the KL term", beta_objective=objective, optimal_q_beta=optimum)
    assert "largest difference" not in message
