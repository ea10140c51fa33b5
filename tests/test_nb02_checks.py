"""Notebook 02's check cells pass the solution and fail, naming the mistake, on typical wrong answers."""

import itertools
import math
import time

import pytest
import torch

from tests import nbtools
from utils import checks, checks_elbo, widgets

NB = "02_latent_variables_elbo"
F64 = torch.float64


@pytest.fixture(scope="module", autouse=True)
def float64_default():
    """The notebook computes in float64 (its setup cell sets the default dtype); restore the default afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(F64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture(scope="module")
def nb():
    return nbtools.load(NB)


def cell_starting(nb, text: str) -> str:
    """Source of the code cell whose source contains `text` (a line unique to it)."""
    found = [c.source for c in nb.cells if c.cell_type == "code" and text in c.source]
    assert len(found) == 1, (text, len(found))
    return found[0]


def run(nb, source_or_marker: str, ns: dict) -> BaseException | None:
    source = source_or_marker if "\n" in source_or_marker else cell_starting(nb, source_or_marker)
    return nbtools.run_source(source, ns)


DEFINING = ["jensen_gap", "gmm_log_joint", "e_step", "kl_normal_std", "expected_log_likelihood", "iw_bound",
            "beta_objective"]


def namespace(nb, **overrides):
    ns = {"torch": torch, "math": math, "itertools": itertools, "time": time, "checks": checks,
          "checks_elbo": checks_elbo, "widgets": widgets, "device": torch.device("cpu")}
    for name in DEFINING:
        assert nbtools.run_source(nbtools.cell_defining(nb, name), ns) is None, name
    ns.update(overrides)
    for marker in ("model = widgets.LinearGaussian(w=1.5", "em_device = device"):  # data, model, and the EM run
        assert run(nb, marker, ns) is None, marker
    return ns


@pytest.fixture(scope="module")
def solution_ns(nb):
    return namespace(nb)


GRADE_IDS = ["ex2_1_visible", "ex2_1_hidden", "ex2_2_visible", "ex2_2_em_visible", "ex2_2_hidden", "ex2_3_visible",
             "ex2_3_hidden", "ex2_4_visible", "ex2_4_mc_visible", "ex2_4_hidden", "ex2_5_visible", "ex2_5_hidden",
             "ex2_6_visible", "ex2_6_hidden"]


@pytest.mark.parametrize("grade_id", GRADE_IDS)
def test_solution_passes(nb, solution_ns, grade_id):
    error = nbtools.run_source(nbtools.cell_by_grade_id(nb, grade_id), dict(solution_ns))
    assert error is None, error


def fails_with(nb, grade_id, says, **wrong):
    error = nbtools.run_source(nbtools.cell_by_grade_id(nb, grade_id), namespace(nb, **wrong))
    assert isinstance(error, AssertionError), error
    assert says in str(error), str(error)
    return str(error)


# ---- 2.1 Jensen ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("wrong", "says"), [
    (lambda s: torch.log(s).mean(-1) - torch.log(s.mean(-1)), "the sign is flipped"),
    (lambda s: torch.log(s.sum(-1)) - torch.log(s).mean(-1), "off by log N"),
    (lambda s: torch.log(s.mean(-1)) - torch.log(s).mean(-1) + 0.05, "standard errors from the exact gap"),
])
def test_jensen_visible_catches(nb, wrong, says):
    fails_with(nb, "ex2_1_visible", says, jensen_gap=wrong)


def test_jensen_visible_catches_the_wrong_dimension(nb):
    """#19.3 mutant: reduced over dim=0 (passed main's visible check, whose inputs were all 1-d)."""
    fails_with(nb, "ex2_1_visible", "not over dim=0",
               jensen_gap=lambda s: torch.log(s.mean(dim=0)) - torch.log(s).mean(dim=0))


def test_jensen_visible_checks_finiteness_first(nb):
    fails_with(nb, "ex2_1_visible", "NaN or infinite", jensen_gap=lambda s: torch.log(s.mean(-1) - 1.0))


def test_jensen_hidden_catches_reducing_everything(nb):
    fails_with(nb, "ex2_1_hidden", "reduce over the last dimension",
               jensen_gap=lambda s: torch.log(s.mean()) - torch.log(s).mean())


# ---- 2.2 EM ------------------------------------------------------------------------------------------------------------

def naive_e_step(x, pi, mu, var):
    joint = torch.exp(widgets_free_log_joint(x, pi, mu, var))
    return joint / joint.sum(1, keepdim=True), torch.log(joint.sum(1))


def widgets_free_log_joint(x, pi, mu, var):
    return torch.log(pi) - 0.5 * torch.log(2 * math.pi * var) - (x[:, None] - mu) ** 2 / (2 * var)


def e_step_dim0(x, pi, mu, var):
    a = widgets_free_log_joint(x, pi, mu, var)
    return torch.softmax(a, 0), torch.logsumexp(a, 1)


def tempered_e_step(x, pi, mu, var):  # responsibilities that are not the posterior (a common "soft" bug)
    a = widgets_free_log_joint(x, pi, mu, var)
    return torch.softmax(a / 2, 1), torch.logsumexp(a, 1)


def m_step_factory(pi_fn=None, mu_div_n=False, std=False, var_div_n=False):
    def m_step(x, resp):
        nk = resp.sum(0)
        pi = nk / len(x) if pi_fn is None else pi_fn(nk, len(x))
        mu = resp.T @ x / (len(x) if mu_div_n else nk)
        var = (resp * (x[:, None] - mu) ** 2).sum(0) / (len(x) if var_div_n else nk)
        return pi, mu, var.sqrt() if std else var
    return m_step


# Typical E- and M-step mistakes and what the check says; the hidden tests (tests/grading/) use the same table.
EM_STEP_MISTAKES = [
    ({"e_step": naive_e_step}, "Use torch.logsumexp"),
    ({"e_step": e_step_dim0}, "normalized over the data points (dim=0)"),
    ({"m_step": m_step_factory(pi_fn=lambda nk, n: nk)}, "the weights sum to N"),
    ({"m_step": m_step_factory(mu_div_n=True)}, "divide by N_k, not by N"),
    ({"m_step": m_step_factory(std=True)}, "return the variances σ_k², not σ_k"),
    ({"m_step": m_step_factory(var_div_n=True)}, "σ_k² = Σ_n r_nk (x_n − μ_k)² / N_k"),
]


@pytest.mark.parametrize(("override", "says"), EM_STEP_MISTAKES)
def test_em_step_checks_catch(nb, override, says):
    fails_with(nb, "ex2_2_visible", says, **override)


def test_em_run_check_catches_responsibilities_that_are_not_the_posterior(nb):
    fails_with(nb, "ex2_2_em_visible", "after an E-step F(θ, Q) differs from log p(x)", e_step=tempered_e_step)


def test_em_run_check_catches_a_bad_m_step(nb):
    fails_with(nb, "ex2_2_em_visible", "EM", m_step=m_step_factory(var_div_n=True))


def test_em_hidden_does_not_reveal_values(nb):
    message = fails_with(nb, "ex2_2_hidden", "m_step (hidden)", m_step=m_step_factory(mu_div_n=True))
    assert "expected" not in message


# ---- 2.3 KL ------------------------------------------------------------------------------------------------------------

def kl_right(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1)


KL_MISTAKES = [  # (wrong kl_normal_std, what the checks say)
    (lambda mu, lv: 0.5 * (mu**2 + (2 * lv).exp() - 1 - 2 * lv).sum(-1), "logvar is log σ², not log σ"),
    (lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - 0.5 * lv).sum(-1), "uses log σ where log σ²"),
    (lambda mu, lv: 2 * kl_right(mu, lv), "the factor ½ is missing"),
    (lambda mu, lv: -kl_right(mu, lv), "the sign is flipped"),
    (lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv).mean(-1), "a mean over the latent dimensions"),
    (lambda mu, lv: 0.5 * (mu**2 + lv.exp() - lv).sum(-1), "the −1 of each latent dimension is missing"),
    (lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv), "sum over the latent dimensions"),
]


@pytest.mark.parametrize(("wrong", "says"), KL_MISTAKES)
def test_kl_checks_catch(nb, wrong, says):
    fails_with(nb, "ex2_3_visible", says, kl_normal_std=wrong)
    hidden = fails_with(nb, "ex2_3_hidden", says, kl_normal_std=wrong)
    assert "expected" not in hidden.replace("expected shape", "")


def kl_by_distributions(mu, logvar):
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    return torch.distributions.kl_divergence(q, torch.distributions.Normal(torch.zeros_like(mu), 1.0)).sum(-1)


def test_kl_checks_enforce_no_torch_distributions(nb):
    """#19.1: the rule "you may not use torch.distributions" is enforced (main enforced it nowhere)."""
    fails_with(nb, "ex2_3_visible", "uses torch.distributions.Normal", kl_normal_std=kl_by_distributions)
    fails_with(nb, "ex2_3_hidden", "uses torch.distributions.Normal", kl_normal_std=kl_by_distributions)


def test_elbo_check_enforces_no_torch_distributions(nb):
    def elbo(x, m, s, model):  # factorization #1 with torch.distributions: the removed elbo_reference
        q = torch.distributions.Normal(m, s)
        return model.log_marginal(x) - torch.distributions.kl_divergence(q, torch.distributions.Normal(
            *model.posterior(x)))
    fails_with(nb, "ex2_4_visible", "uses torch.distributions", elbo=elbo)


def test_no_answer_in_the_student_version_or_the_check_module():
    """#19.1: no reference implementation in what a student reads or imports (key expressions of each answer)."""
    student = (nbtools.ROOT / "notebooks" / f"{NB}.ipynb").read_text()
    module = (nbtools.ROOT / "utils" / "checks_elbo.py").read_text()
    for text in (student, module):
        for answer in ("kl_reference", "elbo_reference", "kl_divergence", "logvar.exp() - 1", "- 1.0 - logvar",
                       "logsumexp(log_w", "w**2 * s**2) / (2", "w * x / (w**2 + beta"):
            assert answer not in text, answer


def test_kl_check_catches_in_place_changes(nb):
    def in_place(mu, lv):
        mu.mul_(1.0)
        lv.add_(0.0)
        mu[0, 0] = mu[0, 0] + 1e-3
        return kl_right(mu, lv)
    fails_with(nb, "ex2_3_visible", "changed its inputs in place", kl_normal_std=in_place)


# ---- 2.4 ELBO ----------------------------------------------------------------------------------------------------------

def ell_factory(variance_term=True, constant=True):
    def expected_log_likelihood(x, m, s, model):
        value = -((x - model.w * m) ** 2 + (model.w**2 * s**2 if variance_term else 0)) / (2 * model.sigma**2)
        return value - (0.5 * math.log(2 * math.pi * model.sigma**2) if constant else 0)
    return expected_log_likelihood


def elbo_factory(ell, sign=-1, logvar=lambda s: 2 * torch.log(s)):
    def elbo(x, m, s, model):
        kl = kl_right(m.reshape(-1, 1), logvar(s).reshape(-1, 1)).reshape(m.shape)
        return ell(x, m, s, model) + sign * kl
    return elbo


@pytest.mark.parametrize(("elbo", "says"), [
    (elbo_factory(ell_factory(), sign=+1), "the KL term is added"),
    (elbo_factory(ell_factory(variance_term=False)), "the variance term is missing"),
    (elbo_factory(ell_factory(constant=False)), "the constant −½ log(2πσ²)"),
    (elbo_factory(ell_factory(), logvar=torch.log), "kl_normal_std wants log s² = 2 log s"),
])
def test_elbo_identity_checks_catch(nb, elbo, says):
    fails_with(nb, "ex2_4_visible", says, elbo=elbo)
    fails_with(nb, "ex2_4_hidden", says, elbo=elbo)


def elbo_mc_factory(se_scale=lambda n: 1 / math.sqrt(n), from_prior=False, log_q="right"):
    def elbo_mc(x, m, s, model, n_samples, generator):
        eps = torch.randn(n_samples, generator=generator)
        z = eps if from_prior else m + s * eps
        if log_q == "right":
            lq = torch.distributions.Normal(m, s).log_prob(z)
        elif log_q == "no 1/s²":  # #19.3: (z − m)² where (z − m)² / s² belongs
            lq = -0.5 * math.log(2 * math.pi) - torch.log(s) - 0.5 * (z - m) ** 2
        else:  # "no log s"
            lq = -0.5 * math.log(2 * math.pi) - 0.5 * ((z - m) / s) ** 2
        terms = model.log_joint(x, z) - lq
        return terms.mean(), terms.std() * se_scale(n_samples)
    return elbo_mc


@pytest.mark.parametrize(("elbo_mc", "says"), [
    (elbo_mc_factory(se_scale=lambda n: 1.0), "divide the standard deviation by √n_samples"),
    (elbo_mc_factory(se_scale=lambda n: 1 / n), "times the true one"),
    (elbo_mc_factory(from_prior=True), "sample z = m + s·ε from q"),
])
def test_elbo_mc_checks_catch(nb, elbo_mc, says):
    fails_with(nb, "ex2_4_mc_visible", says, elbo_mc=elbo_mc)


@pytest.mark.parametrize(("log_q", "says"), [("no 1/s²", "log q(z) is missing the 1/s²"),
                                             ("no log s", "check log q(z) = −½ log(2π) − log s")])
def test_elbo_mc_wrong_log_q_is_named_not_sampling(nb, log_q, says):
    """#19.3: a wrong log q got "sample z from q, not from the prior"; without the 1/s² it passed (−1.6 s.e.)."""
    for grade_id in ("ex2_4_mc_visible", "ex2_4_hidden"):
        message = fails_with(nb, grade_id, says, elbo_mc=elbo_mc_factory(log_q=log_q))
        assert "from the prior" not in message


def test_elbo_mc_hidden_catches_wrong_stderr_at_posterior(nb):
    def biased(x, m, s, model, n_samples, generator):
        est, se = elbo_mc_factory()(x, m, s, model, n_samples, generator)
        return est, se + 1e-3
    fails_with(nb, "ex2_4_hidden", "(hidden", elbo_mc=biased)


# ---- 2.5 importance-weighted bound --------------------------------------------------------------------------------------

def iw_factory(mode):
    def iw_bound(x, m, s, model, k, n_outer, generator):
        eps = torch.randn(n_outer, k, generator=generator)
        z = m + s * eps
        log_w = model.log_joint(x, z) - torch.distributions.Normal(m, s).log_prob(z)
        if mode == "mean of logs":
            per = log_w.mean(1)
        elif mode == "no 1/k":
            per = torch.logsumexp(log_w, 1)
        elif mode == "wrong dim":  # #19.3: over the groups; for k = 1 one value, so a NaN standard error
            per = torch.logsumexp(log_w, 0) - math.log(k)
        else:
            per = torch.logsumexp(log_w, 1) - math.log(k)
        return per.mean(), per.std() / math.sqrt(n_outer)
    return iw_bound


@pytest.mark.parametrize(("mode", "says"), [("mean of logs", "does not grow"), ("no 1/k", "1/k is missing")])
def test_iw_checks_catch(nb, mode, says):
    fails_with(nb, "ex2_5_visible", says, iw_bound=iw_factory(mode))
    fails_with(nb, "ex2_5_hidden", says if mode == "mean of logs" else "above log p(x)", iw_bound=iw_factory(mode))


def test_iw_logsumexp_over_the_wrong_dimension_is_caught_by_finiteness_first(nb):
    """#19.3: a NaN standard error made every `est > bound` comparison False, so main's visible check passed."""
    for grade_id in ("ex2_5_visible", "ex2_5_hidden"):
        fails_with(nb, grade_id, "not over the groups (dim=0)", iw_bound=iw_factory("wrong dim"))


# ---- 2.6 β-weighted objective -------------------------------------------------------------------------------------------

def test_beta_checks_catch_posterior_for_every_beta(nb):
    """#19.3: every β mistake got "gradient not 0 … or optimize longer"; each is named now."""
    posterior = {"optimal_q_beta": lambda x, model, beta: model.posterior(x)}
    for grade_id in ("ex2_6_visible", "ex2_6_hidden"):
        message = fails_with(nb, grade_id, "is the exact posterior, the optimum of β = 1 only", **posterior)
        assert "optimize longer" not in message


def beta_misplaced(x, model, beta):
    total = model.w**2 + model.sigma**2 / beta
    return model.w * x / total, torch.full_like(x, math.sqrt(model.sigma**2 / total))


def test_beta_checks_catch_beta_in_the_wrong_place(nb):
    message = fails_with(nb, "ex2_6_visible", "β divides σ² where it should multiply it",
                         optimal_q_beta=beta_misplaced)
    assert "optimize longer" not in message
    message = fails_with(nb, "ex2_6_hidden", "β divides σ² where it should multiply it", optimal_q_beta=beta_misplaced)
    assert "expected" not in message


def test_beta_check_catches_an_objective_that_ignores_beta(nb):
    ignores = {"beta_objective": lambda x, m, s, model, beta: elbo_factory(ell_factory())(x, m, s, model)}
    for grade_id in ("ex2_6_visible", "ex2_6_hidden"):
        fails_with(nb, grade_id, "gives the same value for every β", **ignores)


def test_beta_check_catches_beta_on_the_likelihood(nb):
    def objective(x, m, s, model, beta):
        kl = kl_right(m.reshape(-1, 1), (2 * torch.log(s)).reshape(-1, 1)).reshape(m.shape)
        return beta * ell_factory()(x, m, s, model) - kl
    fails_with(nb, "ex2_6_visible", "β multiplies the KL term, not the expected log-likelihood",
               beta_objective=objective, optimal_q_beta=beta_misplaced)


def test_beta_check_catches_a_variance_for_s(nb):
    def variance(x, model, beta):
        total = model.w**2 + beta * model.sigma**2
        return model.w * x / total, torch.full_like(x, beta * model.sigma**2 / total)
    fails_with(nb, "ex2_6_visible", "take the square root of the optimal variance", optimal_q_beta=variance)


def test_the_probes_use_the_visible_checks_inputs():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "probes02", nbtools.ROOT / "solutions" / "grading" / NB / "probes.py")
    probes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probes)
    assert probes.KL_MU == checks_elbo.KL_MU and probes.KL_LOGVAR == checks_elbo.KL_LOGVAR
