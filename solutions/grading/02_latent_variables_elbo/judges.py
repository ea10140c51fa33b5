"""Judges of the hidden tests for 02_latent_variables_elbo (instructor material: never released to students).

Run in the trusted grader only (never in the student's kernel), on what ``probes.py`` exported (the student's
functions on inputs built there). Each judge applies the criteria of its check cell: exact functions are compared with the
reference results; the Monte Carlo and EM exercises are judged by their statistics, recomputed here from inputs the
judge regenerates itself (never from numbers the kernel computed), with the check cells' tolerances:

* a mean of n i.i.d. terms lies within 4 (2.4, 2.5) or 5 (2.1) standard errors of its expectation, by the CLT, except
  with a two-sided normal tail probability of 6e-5 (4 s.e.) or 6e-7 (5 s.e.); the standard error is the sample
  standard deviation / √n (2.4, 2.5) or the delta-method one (2.1, `_jensen_stderr`);
* a reported standard error (a sample std / √n) may deviate from the true one by 5 of its own relative standard
  errors, √((κ − 1) / (4n)) with κ the kurtosis of one term, measured here on 10^6 separate draws;
* EM: F = ℓ after each E-step and ℓ never decreases, to float64 rounding (1e-9 relative); the fitted parameters lie
  within 5 asymptotic standard errors of the generating ones; ℓ(fit) − ℓ(true) lies in [0, χ²_{3K−1, 0.999} / 2].
"""

from __future__ import annotations

import functools
import itertools
import math

import torch

from instructor.grading.judge import Fail, criteria, flag, get_value, match_mistake, require_close
from instructor.grading.spec import probes_beside
from utils.widgets import LinearGaussian

probes = probes_beside(__file__)

DIAGNOSES = (  # the typical mistakes these judges name (Verdict.diagnosis), counted by the class report
    "jensen_sign_flipped",
    "log_of_sum",
    "responsibilities_transposed",
    "exp_underflow",
    "normalized_over_points",
    "weights_not_normalized",
    "sigma_for_variance",
    "e_step_input_modified_in_place",
    "logvar_as_log_sigma",
    "log_sigma_for_log_variance",
    "kl_half_missing",
    "kl_sign_flipped",
    "mean_over_latent_dims",
    "kl_minus_one_missing",
    "kl_input_modified_in_place",
    "kl_nonzero_at_prior",
    "kl_added",
    "variance_term_missing",
    "likelihood_constant_missing",
    "log_s_for_log_variance",
    "std_for_stderr",
    "iw_one_over_k_missing",
    "iw_decreasing_in_k",
    "iw_mean_of_log_weights",
    "beta_not_applied",
    "jensen_wrong_dim",
    "uses_torch_distributions",
    "log_q_missing_inverse_variance",
    "log_q_wrong",
    "iw_logsumexp_over_groups",
    "beta_posterior_for_every_beta",
    "beta_objective_ignores_beta",
    "beta_on_likelihood",
    "beta_divides_sigma2",
)

# the probes' constants (inputs, sizes, seeds), which the judges use too
BETAS_CLOSED_FORM = probes.BETAS_CLOSED_FORM
BETAS_HIDDEN = probes.BETAS_HIDDEN
BETAS_VISIBLE = probes.BETAS_VISIBLE
EM_HIDDEN_SEED = probes.EM_HIDDEN_SEED
EM_VISIBLE_SEED = probes.EM_VISIBLE_SEED
F64 = probes.F64
IW_HIDDEN = probes.IW_HIDDEN
IW_VISIBLE = probes.IW_VISIBLE
JENSEN_VISIBLE = probes.JENSEN_VISIBLE
MC_HIDDEN = probes.MC_HIDDEN
MC_VISIBLE = probes.MC_VISIBLE
MODEL = probes.MODEL
MODEL_H = probes.MODEL_H
RESP_M = probes.RESP_M
STEPS = probes.STEPS
THETA_HIDDEN = probes.THETA_HIDDEN
TRUE_THETA = probes.TRUE_THETA
X_H = probes.X_H
X_OBS = probes.X_OBS


def _by_hand(got: dict, what: str) -> None:
    """The closed-form exercises are written by hand: the probe switched torch.distributions off."""
    if flag(got, "uses_distributions"):
        raise Fail(f"{what} uses torch.distributions", "this exercise is to be written by hand: derive the formula "
                   "and use torch functions only.", "uses_torch_distributions")


def _finite(name: str, value: torch.Tensor, hint: str = "", diagnosis: str = "") -> None:
    if not torch.isfinite(value).all():
        raise Fail(f"{name} contains NaN or inf", hint, diagnosis)


JENSEN_EXACT = {  # the exact Jensen gaps log E[X] − E[log X] of the probes' positive samples
    "exponential": 0.5772156649015329,
    "uniform": 1 - math.log(2),
    "lognormal": 0.8**2 / 2,
    "gamma3": math.log(3) - torch.digamma(torch.tensor(3.0, dtype=torch.float64)).item(),
    "constant": 0.0,
}


def _jensen_stderr(samples: torch.Tensor) -> torch.Tensor:
    """Delta-method standard error of the plug-in gap (as the notebook's jensen_gap_stderr)."""
    influence = samples / samples.mean(dim=-1, keepdim=True) - torch.log(samples)
    return influence.std(dim=-1) / math.sqrt(samples.shape[-1])


@criteria("jensen_gap")
def judge_jensen_visible(got: dict, want: dict) -> str:  # noqa: ARG001 - judged by its statistics
    n = JENSEN_VISIBLE[0]
    batch = get_value(got, "batch", finite=False)
    _finite("the gaps", batch, "log of a positive number only: log(mean) − mean(log).")
    if tuple(batch.shape) != (5,):
        over_variables = tuple(batch.shape) == (n,)
        raise Fail(f"on a (5, N) batch the gaps have shape {tuple(batch.shape)}, expected (5,)",
                   "reduce over the last dimension (the samples), not over dim=0 (the variables)." if over_variables
                   else "reduce over the last dimension (the samples).", "jensen_wrong_dim" if over_variables else "")
    details = []
    for name, samples in probes._positive_samples(*JENSEN_VISIBLE).items():
        exact = JENSEN_EXACT[name]
        gap = get_value(got, name, (), hint="reduce over the last dimension (the samples).").item()
        if name == "constant":
            if not abs(gap) <= 1e-12:
                raise Fail(f"got {gap:.3g} for a constant X, but then the gap is exactly 0. Hint: log of the mean "
                            "minus the mean of the logs.")
            continue
        se = _jensen_stderr(samples).item()
        if not gap >= 0:
            flipped = abs(gap + exact) < 5 * se
            raise Fail(f"the gap {gap:.4f} of the {name} variable is negative, but log E[X] ≥ E[log X]",
                       "the sign is flipped: log(mean) − mean(log), not mean(log) − log(mean)." if flipped
                       else "log of the mean minus the mean of the logs.", "jensen_sign_flipped" if flipped else "")
        if abs(gap - exact) > 5 * se:
            log_of_sum = abs(gap - exact - math.log(n)) < 5 * se
            raise Fail(f"{gap:.4f} for the {name} variable is {abs(gap - exact) / se:.1f} standard errors from the "
                       f"exact gap {exact:.4f}", "off by log N: the log of the sum where the log of the mean was meant."
                       if log_of_sum else "compare your code with the formula for Δ̂.", "log_of_sum" if log_of_sum else "")
        details.append(f"{name} {(gap - exact) / se:+.2f} s.e.")
    return "every estimate within 5 standard errors of the exact gap (" + ", ".join(details) + ")"


@criteria("jensen_gap (hidden)")
def judge_jensen_hidden(got: dict, want: dict) -> str:  # noqa: ARG001 - judged by its statistics
    inputs = probes._jensen_hidden_inputs()
    gaps = get_value(got, "batch", (3,), hint="reduce over the last dimension only.")
    _finite("the gaps of a batch", gaps)
    if (gaps < 0).any():
        raise Fail("a gap of a batch is negative. Hint: log(mean) − mean(log) is never negative.")
    if ((gaps - inputs["scales"] ** 2 / 2).abs() > 5 * _jensen_stderr(inputs["batch"])).any():
        raise Fail("on a batch of three variables, a gap is more than 5 standard errors from the exact value. Hint: "
                    "reduce over the last dimension (dim=-1), for each row separately.")
    gap = get_value(got, "chi2", ()).item()
    exact = math.log(2) - torch.digamma(torch.tensor(2.0, dtype=F64)).item()
    if not (gap >= 0 and abs(gap - exact) <= 5 * _jensen_stderr(inputs["chi2"]).item()):
        raise Fail("wrong or negative gap for a chi-square variable. Hint: log(mean) − mean(log) over the last "
                    "dimension.")
    if not -1e-13 <= get_value(got, "nearly_constant", ()).item() <= 1e-7:
        raise Fail("a nearly constant X must give a gap just above 0.")
    if not get_value(got, "constant").abs().max().item() <= 1e-12:
        raise Fail("a constant X must give a gap of 0.")
    return "batched, chi-square and (nearly) constant inputs"


def _gmm_log_joint(x, pi, mu, var):
    return torch.log(pi) - 0.5 * torch.log(2 * math.pi * var) - (x[:, None] - mu) ** 2 / (2 * var)


def _free_energy(x, resp, pi, mu, var) -> float:
    return (resp * _gmm_log_joint(x, pi, mu, var) - torch.special.xlogy(resp, resp)).sum().item()


CHI2_999 = {5: 20.515, 8: 26.124, 11: 31.264}  # 99.9% quantiles of chi-square with 3K − 1 degrees of freedom


def _match_components(mu_hat: torch.Tensor, mu_true: torch.Tensor) -> list[int]:
    K = len(mu_true)
    return list(min(itertools.permutations(range(K)), key=lambda p: (mu_hat[list(p)] - mu_true).abs().sum().item()))


def _check_em(got: dict, x: torch.Tensor, theta_true, show_expected: bool) -> str:
    """The check cell's check_em_run, on the θ_t and Q_t of the student's run (ℓ and F recomputed here)."""
    thetas = get_value(got, "em.theta", finite=False)  # NaN or inf is diagnosed below, with the likely cause
    resps = get_value(got, "em.resp", finite=False)
    K = len(theta_true[0])
    if thetas.dim() != 3 or thetas.shape[1:] != (3, K) or resps.shape != (len(thetas), len(x), K):
        raise Fail("e_step / m_step return the wrong shapes during EM (responsibilities (N, K), parameters (K,)).")
    _finite("the responsibilities during EM", resps,
            "exp(a_nk) underflows for points far from every component: use torch.logsumexp.")
    _finite("the parameters during EM", thetas, "check the M-step formulas.")
    ll = torch.tensor([probes._gmm_log_likelihood(x, *th) for th in thetas], dtype=F64)
    tol = 1e-9 * abs(ll[-1].item())
    f_e = torch.tensor([_free_energy(x, r, *th) for r, th in zip(resps, thetas, strict=True)], dtype=F64)
    if not (f_e - ll).abs().max() <= tol:
        raise Fail(f"after an E-step F(θ, Q) differs from log p(x) by up to {(f_e - ll).abs().max().item():.3g} — "
                    "hint: the E-step must return the exact posterior p(z = k | x_n, θ), so that KL(Q ‖ posterior) = 0.")
    drops = ll[1:] - ll[:-1]
    if drops.numel() and drops.min() < -tol:
        t = int(drops.argmin())
        raise Fail(f"log p(x) decreased from iteration {t} to {t + 1} by {-drops.min().item():.3g} nats. Hint: the "
                    "M-step must maximize F for fixed Q: π_k = N_k/N, μ_k and σ_k² weighted by r_nk over N_k.")
    require_close("em.your_log_px", got, ll, rtol=1e-10, atol=1e-8, hidden=not show_expected,
                  hint="Σ_n of your log p(x_n) must equal the log-likelihood ℓ(θ_t) at every iteration.")
    f_m = torch.tensor([_free_energy(x, resps[t], *thetas[t + 1]) for t in range(len(thetas) - 1)], dtype=F64)
    if (f_m < f_e[:len(f_m)] - tol).any() or (f_m > ll[1:len(f_m) + 1] + tol).any():
        raise Fail("an M-step decreased F, or F rose above log p(x). Hint: check the M-step formulas.")
    pi_true, mu_true, var_true = (torch.tensor(v, dtype=F64) for v in theta_true)
    order = _match_components(thetas[-1, 1], mu_true)
    pi_hat, mu_hat, var_hat = (v[order] for v in thetas[-1])
    n = len(x)
    stderr = {"π": (pi_true * (1 - pi_true) / n).sqrt(), "μ": (var_true / (n * pi_true)).sqrt(),
              "σ²": var_true * (2 / (n * pi_true)).sqrt()}
    for label, est, true in (("π", pi_hat, pi_true), ("μ", mu_hat, mu_true), ("σ²", var_hat, var_true)):
        z = ((est - true) / stderr[label]).abs().max().item()
        if not z <= 5:
            raise Fail(f"the fitted {label} is {z:.1f} standard errors from the generating value"
                        + (f" ({est.tolist()} vs {true.tolist()})" if show_expected else "")
                        + ". Hint: EM converged, but to the wrong parameters: check the M-step.")
    excess = ll[-1].item() - probes._gmm_log_likelihood(x, pi_true, mu_true, var_true)
    if not -tol <= excess <= CHI2_999[3 * K - 1] / 2:
        raise Fail(f"ℓ(fit) − ℓ(true) = {excess:.3g} nats, outside [0, {CHI2_999[3 * K - 1] / 2:.2f}].")
    return (f"{len(thetas) - 1} iterations, ℓ never decreased, F = ℓ after each E-step, parameters within 5 s.e., "
            f"ℓ(fit) − ℓ(true) = {excess:.3f} nats")


@criteria("e_step and m_step")
def judge_em_steps_visible(got: dict, want: dict) -> str:
    _by_hand(got, "e_step")
    resp = get_value(got, "resp", finite=False)  # NaN or inf is diagnosed below, with the likely cause
    if tuple(resp.shape) != (4, 3):
        transposed = tuple(resp.shape) == (3, 4)
        raise Fail(f"the responsibilities have shape {tuple(resp.shape)}, expected (4, 3)",
                   "one row per data point, one column per component: (N, K)." if transposed else "",
                   "responsibilities_transposed" if transposed else "")
    log_px = get_value(got, "log_px", (4,), finite=False)
    underflow = "x = 60 is far from every component: exp(a_nk) underflows to 0 and 0/0 is NaN. Use torch.logsumexp."
    _finite("the responsibilities", resp, underflow, "exp_underflow")
    _finite("log p(x_n)", log_px, underflow, "exp_underflow")
    if not torch.allclose(resp.sum(1), torch.ones(4, dtype=F64), atol=1e-9):
        over_points = torch.allclose(resp.sum(0), torch.ones(3, dtype=F64))
        raise Fail("the rows of the responsibilities do not sum to 1",
                   "you normalized over the data points (dim=0); normalize over the components (dim=1)." if over_points
                   else "divide by Σ_j π_j N(x_n; μ_j, σ_j²) for each point.",
                   "normalized_over_points" if over_points else "")
    require_close("resp", got, want["resp"], rtol=1e-6, atol=1e-12, hidden=False)
    require_close("log_px", got, want["log_px"], rtol=1e-9, atol=1e-8, hidden=False,
                  hint="log p(x_n) = logsumexp over k of a[n, k] = log π_k + log N(x_n; μ_k, σ_k²).")
    pi, _, var = (get_value(got, name, (2,)) for name in ("pi", "mu", "var"))
    if torch.allclose(pi, torch.tensor(RESP_M, dtype=F64).sum(0)):
        raise Fail("m_step: the weights sum to N, not 1.", "π_k = N_k / N.", "weights_not_normalized")
    require_close("pi", got, want["pi"], rtol=1e-9, atol=1e-8, hidden=False, hint="π_k = N_k / N with N_k = Σ_n r_nk.")
    require_close("mu", got, want["mu"], rtol=1e-9, atol=1e-8, hidden=False,
                  hint="μ_k = Σ_n r_nk x_n / N_k: divide by N_k, not by N.")
    if torch.allclose(var, want["var"].double().sqrt(), rtol=1e-6):
        raise Fail("m_step: these are standard deviations.", "return the variances σ_k², not σ_k.", "sigma_for_variance")
    require_close("var", got, want["var"], rtol=1e-9, atol=1e-8, hidden=False,
                  hint="σ_k² = Σ_n r_nk (x_n − μ_k)² / N_k, with the *new* μ_k and weights r_nk.")
    return "one E-step and one M-step on the visible example"


@criteria("EM")
def judge_em_visible(got: dict, want: dict) -> str:  # noqa: ARG001 - judged by the run's properties
    return _check_em(got, probes._sample_gmm(1500, TRUE_THETA, EM_VISIBLE_SEED), TRUE_THETA, show_expected=True)


@criteria("e_step, m_step and EM (hidden)")
def judge_em_hidden(got: dict, want: dict) -> str:
    _by_hand(got, "e_step")
    require_close("resp", got, want["resp"], rtol=1e-6, atol=1e-12, hidden=True,
                  hint="responsibilities are softmax over the components of log π_k + log N(x_n; μ_k, σ_k²), in log space.")
    require_close("log_px", got, want["log_px"], rtol=1e-9, atol=1e-8, hidden=True,
                  hint="log p(x_n) = logsumexp over k; points far from every component must not underflow.")
    hints = {"pi": "π_k = N_k / N.", "mu": "μ_k = Σ_n r_nk x_n / N_k.",
             "var": "σ_k² = Σ_n r_nk (x_n − μ_k)² / N_k, with the new μ_k (variances, not standard deviations)."}
    for name, hint in hints.items():
        require_close(name, got, want[name], rtol=1e-9, atol=1e-8, hidden=True, hint=hint)
    if not torch.equal(get_value(got, "x_after"), probes._em_steps_hidden_inputs()["x"]):
        raise Fail("e_step changed its input x in place.", diagnosis="e_step_input_modified_in_place")
    return "E-step, M-step; EM with K = 2: " + _check_em(got, probes._sample_gmm(2000, THETA_HIDDEN, EM_HIDDEN_SEED),
                                                       THETA_HIDDEN, show_expected=False)


def _kl_reference(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    return torch.distributions.kl_divergence(q, torch.distributions.Normal(torch.zeros_like(mu), 1.0)).sum(-1)


def _kl_mistakes(mu: torch.Tensor, logvar: torch.Tensor) -> dict[str, tuple[str, torch.Tensor]]:
    """Typical wrong KLs on the same inputs: diagnosis -> (hint, value)."""
    ref, D = _kl_reference(mu, logvar), mu.shape[-1]
    return {
        "logvar_as_log_sigma": ("logvar is log σ², not log σ: the variance is exp(logvar) (the std exp(½ logvar)), "
                                "not exp(2 logvar).", _kl_reference(mu, 2 * logvar)),
        "log_sigma_for_log_variance": ("the log term uses log σ where log σ² (= logvar) belongs.",
                                       ref + 0.25 * logvar.sum(-1)),
        "kl_half_missing": ("the factor ½ is missing.", 2 * ref),
        "kl_sign_flipped": ("the sign is flipped: KL(q ‖ p) = E_q[log q − log p] ≥ 0.", -ref),
        "mean_over_latent_dims": ("a mean over the latent dimensions where the docstring asks for a sum.", ref / D),
        "kl_minus_one_missing": ("the −1 of each latent dimension is missing.", ref + D / 2),
    }


def _check_kl(got: dict, want: dict, inputs: dict, hidden: bool) -> None:
    _by_hand(got, "kl_normal_std")
    for name, (mu, logvar) in inputs.items():
        value = get_value(got, name, mu.shape[:-1], hint="sum over the latent dimensions (the last one), keep the batch.")
        if not torch.allclose(value, want[name].double(), rtol=1e-6, atol=1e-10):
            mistake = match_mistake(value, _kl_mistakes(mu, logvar), rtol=1e-6)
            if mistake:
                raise Fail(f"{name}: does not match the KL divergence", mistake[1], mistake[0])
        if not torch.equal(get_value(got, f"{name}_inputs_after", (2, *mu.shape)), torch.stack([mu, logvar])):
            raise Fail("kl_normal_std changed its inputs in place.", diagnosis="kl_input_modified_in_place")
        require_close(name, got, want[name], rtol=1e-6, atol=1e-10, hidden=hidden)


@criteria("kl_normal_std")
def judge_kl_visible(got: dict, want: dict) -> str:
    _check_kl(got, want, probes._kl_visible_inputs(), hidden=False)
    if not get_value(got, "zero").abs().max().item() <= 1e-12:
        raise Fail("KL(N(0, I) ‖ N(0, I)) must be 0. Hint: at mu = 0, logvar = 0 every term must cancel.",
                   diagnosis="kl_nonzero_at_prior")
    return "5 Gaussians in 3 dimensions match the reference"


@criteria("kl_normal_std (hidden)")
def judge_kl_hidden(got: dict, want: dict) -> str:
    _check_kl(got, want, probes._kl_hidden_inputs(), hidden=True)
    require_close("shift", got, want["shift"], rtol=1e-9, atol=1e-8, hidden=True,
                  hint="with unit variances the KL is ½ |μ|², summed over the dimensions.")
    return "16 and 1 latent dimensions, a mean shift alone"


def _elbo_reference(x, m, s, model: LinearGaussian) -> torch.Tensor:
    q = torch.distributions.Normal(m, s)
    return model.log_marginal(x) - torch.distributions.kl_divergence(q, torch.distributions.Normal(*model.posterior(x)))


def _check_elbo(got: dict, want: dict, cases: dict, hidden: bool) -> None:
    """check_elbo_identity: F + KL(q ‖ p(z|x)) = log p(x) to 1e-6, i.e. F equal to the reference within 1e-6."""
    _by_hand(got, "elbo")
    for name, (model, _x, m, s) in cases.items():
        value = get_value(got, name, m.shape, hint="one ELBO per (x, m, s): no reduction.")
        reference = want[name].double()
        if not torch.allclose(value, reference, rtol=0, atol=1e-6):
            kl_prior = torch.distributions.kl_divergence(torch.distributions.Normal(m, s),
                                                         torch.distributions.Normal(0.0, 1.0))
            mistake = match_mistake(value, {
                "kl_added": ("the KL term is added; F = E_q[log p(x|z)] − KL(q ‖ p(z)).", reference + 2 * kl_prior),
                "variance_term_missing": ("the variance term is missing: E_q[(x − wz)²] = (x − wm)² + w²s².",
                                          reference + model.w**2 * s**2 / (2 * model.sigma**2)),
                "likelihood_constant_missing": ("the constant −½ log(2πσ²) of log p(x | z) is missing.",
                                                reference + 0.5 * math.log(2 * math.pi * model.sigma**2)),
                "log_s_for_log_variance": ("kl_normal_std wants log s² = 2 log s, not log s.",
                                           reference + kl_prior - torch.distributions.kl_divergence(
                                               torch.distributions.Normal(m, s.sqrt()), torch.distributions.Normal(0.0, 1.0))),
            }, rtol=1e-6)
            if mistake:
                raise Fail("F + KL(q ‖ p(z|x)) ≠ log p(x)", mistake[1], mistake[0])
        require_close(name, got, reference, rtol=0, atol=1e-6, hidden=hidden,
                      hint="ELBO + KL(q ‖ p(z|x)) must equal log p(x); test expected_log_likelihood alone: at s → 0 it must "
                    "equal log N(x; w m, σ²).")


@criteria("elbo")
def judge_elbo_visible(got: dict, want: dict) -> str:
    _check_elbo(got, want, probes._elbo_grid_visible(), hidden=False)
    return "ELBO + KL(q ‖ p(z|x)) = log p(x) to 1e-6 on the 4 × 4 grid"


@functools.lru_cache(maxsize=8)
def _mc_truth(model: LinearGaussian, x: float, m: float, s: float, seed: int) -> tuple[float, float, float]:
    """(closed-form ELBO, sd of one term, kurtosis of one term), from 10^6 draws z ~ q (trusted side)."""
    x_t, m_t, s_t = (torch.tensor(v, dtype=F64) for v in (x, m, s))
    z = m_t + s_t * torch.randn(10**6, generator=torch.Generator().manual_seed(seed), dtype=F64)
    terms = model.log_joint(x_t, z) - torch.distributions.Normal(m_t, s_t).log_prob(z)
    sd = terms.std().item()
    kurtosis = (((terms - terms.mean()) / sd) ** 4).mean().item()
    return _elbo_reference(x_t, m_t, s_t, model).item(), sd, kurtosis


def _check_elbo_mc(got: dict, prefix: str, model: LinearGaussian, x: float, m: float, s: float, n: int, seed: int,
                   hidden: bool) -> str:
    """check_elbo_mc: the estimate within 4 true standard errors of the closed form (CLT, two-sided tail 6e-5); the
    reported standard error within 5 of its own relative standard errors √((κ − 1) / (4n)) of the true one."""
    est = get_value(got, f"{prefix}.estimate", ()).item()
    se = get_value(got, f"{prefix}.stderr", ()).item()
    F, sd, kurtosis = _mc_truth(model, x, m, s, seed + 1)
    se_true = sd / math.sqrt(n)
    if not abs(est - F) <= 4 * se_true:
        raise Fail(f"the estimate is {abs(est - F) / se_true:.1f} standard errors from the closed form"
                    + ("" if hidden else f" {F:.4f}")
                    + ". Hint: sample z = m + s·ε from q (not from the prior) and average log p(x, z) − log q(z).")
    rel_tol = 5 * math.sqrt((kurtosis - 1) / (4 * n))
    ratio = se / se_true
    if not abs(ratio - 1) <= rel_tol:
        std_for_se = abs(ratio / math.sqrt(n) - 1) < 0.2
        raise Fail(f"the standard error is {ratio:.3g} times the true one (tolerance ±{rel_tol:.2g})",
                   "divide the standard deviation by √n_samples." if std_for_se
                   else "stderr = sample standard deviation of the n terms / √n.", "std_for_stderr" if std_for_se else "")
    return f"{est:.4f} ± {se:.4f} ({(est - F) / se_true:+.2f} standard errors from the closed form)"


def _check_mc_posterior(got: dict, prefix: str, model: LinearGaussian, x: float, n: int) -> None:
    """At q = the posterior every term log p(x, z) − log q(z) is log p(x): exact, standard error 0. Checked first,
    it tells a wrong log q (named) from sampling z from the prior (which stays exact here)."""
    est = get_value(got, f"{prefix}.estimate", ()).item()
    se = get_value(got, f"{prefix}.stderr", ()).item()
    log_px = model.log_marginal(x).item()
    if abs(est - log_px) <= 1e-9 and abs(se) <= 1e-9:
        return
    s = model.posterior(x)[1].item()
    missing = 0.5 * (s**2 - 1)  # the mean of ½ ε² (s² − 1): (z − m)² where (z − m)² / s² belongs
    se_missing = abs(missing) * math.sqrt(2 / n)  # the standard error of that mean
    if abs(est - log_px - missing) < 4 * se_missing and 0.5 < se / se_missing < 2:
        raise Fail("at q = the posterior the estimate is not exactly log p(x)", "log q(z) is missing the 1/s²: "
                   "log N(z; m, s²) = −½ log(2π) − log s − (z − m)² / (2 s²).", "log_q_missing_inverse_variance")
    raise Fail("with q = the posterior every term is log p(x): the estimate must be exact, its s.e. 0",
               "each term log p(x, z) − log q(z) must equal log p(x) when q is the posterior: check log q(z) = "
               "−½ log(2π) − log s − (z − m)² / (2 s²), at the z you drew from q.", "log_q_wrong")


@criteria("elbo_mc")
def judge_elbo_mc_visible(got: dict, want: dict) -> str:  # noqa: ARG001 - judged by its statistics
    _check_mc_posterior(got, "mc_posterior", MODEL, X_OBS, probes.MC_POSTERIOR_VISIBLE[0])
    return "exact at q = posterior; " + _check_elbo_mc(got, "mc", *MC_VISIBLE, hidden=False)


@criteria("elbo and elbo_mc (hidden)")
def judge_elbo_hidden(got: dict, want: dict) -> str:
    _check_elbo(got, {k: want[k] for k in ("grid", "one_x_per_q")}, probes._elbo_grid_hidden(), hidden=True)
    _check_mc_posterior(got, "mc_posterior", MODEL_H, X_H, 50)
    detail = _check_elbo_mc(got, "mc", *MC_HIDDEN, hidden=True)
    return f"identity on a grid and per-q observations; Monte Carlo {detail}; exact at q = posterior"


def _check_iw(got: dict, model, x, m, s, ks, n_outer, seed, hidden: bool) -> str:  # noqa: ARG001 - seed: probe only
    """check_iw_bound: each estimate is a mean of n_outer i.i.d. group values, so (CLT) within 4 of its standard errors
    of L_k (two-sided 6e-5); L_k ≤ log p(x), L_1 = ELBO, and L_k non-decreasing in k, each within that error."""
    x_t = torch.tensor(x, dtype=F64)
    log_px = model.log_marginal(x_t).item()
    F = _elbo_reference(x_t, torch.tensor(m, dtype=F64), torch.tensor(s, dtype=F64), model).item()
    results = []
    for k in ks:
        est = get_value(got, f"k{k}.estimate", (), finite=False).item()  # NaN or inf: diagnosed below
        se = get_value(got, f"k{k}.stderr", (), finite=False).item()
        if not (math.isfinite(est) and math.isfinite(se)):
            over_groups = k == 1 and math.isfinite(est)
            raise Fail(f"L_{k} or its standard error is NaN or inf",
                       "take logsumexp over the k samples of each group (dim=1), not over the groups (dim=0): then "
                       "there are n_outer group values to average." if over_groups
                       else "use torch.logsumexp for log Σ_i exp(log w_i).",
                       "iw_logsumexp_over_groups" if over_groups else "")
        if est > log_px + 4 * se + 1e-9:
            no_mean = abs(est - log_px - math.log(k)) < 0.5
            raise Fail(f"L_{k} = {est:.4f} lies above log p(x)" + ("" if hidden else f" = {log_px:.4f}"),
                       "1/k is missing inside the log: the estimate exceeds log p(x) by about log k." if no_mean
                       else "L_k averages the weights p/q inside the log.", "iw_one_over_k_missing" if no_mean else "")
        results.append((k, est, se))
    k1 = [r for r in results if r[0] == 1]
    if k1 and abs(k1[0][1] - F) > 4 * k1[0][2] + 1e-9:
        raise Fail(f"L_1 is {abs(k1[0][1] - F) / max(k1[0][2], 1e-12):.1f} standard errors from the ELBO. Hint: with "
                    "k = 1 the bound is the ELBO: log p(x, z) − log q(z) with z ~ q.")
    for (k_a, est_a, se_a), (k_b, est_b, se_b) in itertools.pairwise(results):
        if est_b < est_a - 4 * math.hypot(se_a, se_b) - 1e-9:
            raise Fail(f"L_{k_b} < L_{k_a} beyond Monte Carlo error. Hint: average the weights inside the log "
                        "(logsumexp − log k), not the log-weights.", diagnosis="iw_decreasing_in_k")
    first, last = results[0], results[-1]
    if log_px - F > 0.1 and last[1] - first[1] < 4 * math.hypot(first[2], last[2]):
        raise Fail(f"L_k does not grow from k = {first[0]} to k = {last[0]}. Hint: average the weights inside the log "
                    "(logsumexp − log k), not the log-weights.", diagnosis="iw_mean_of_log_weights")
    return ", ".join(f"L_{k} = {est:.4f} ± {se:.4f}" for k, est, se in results)


@criteria("iw_bound")
def judge_iw_visible(got: dict, want: dict) -> str:  # noqa: ARG001 - judged by its statistics
    return _check_iw(got, *IW_VISIBLE, hidden=False)


@criteria("iw_bound (hidden)")
def judge_iw_hidden(got: dict, want: dict) -> str:  # noqa: ARG001 - judged by its statistics
    detail = _check_iw(got, *IW_HIDDEN, hidden=True)
    log_px = MODEL_H.log_marginal(X_H).item()
    for k in (1, 6):
        est = get_value(got, f"posterior{k}.estimate", ()).item()
        se = get_value(got, f"posterior{k}.stderr", ()).item()
        if not (abs(est - log_px) <= 1e-9 and abs(se) <= 1e-9):
            raise Fail("with q = the posterior every weight is p(x): L_k = log p(x) exactly.")
    return f"{detail}; exact at q = posterior"


def _check_beta(got: dict, model: LinearGaussian, x: float, betas, hidden: bool) -> None:
    """check_beta: (m*, s*) is a stationary maximum of the student's beta_objective for each β; β = 1 gives the ELBO and
    the exact posterior, β ≠ 1 does not."""
    require_close("objective_beta1", got, get_value(got, "elbo", (3,)), rtol=1e-12, atol=1e-12, hidden=hidden,
                  hint="beta_objective at β = 1 must equal your elbo.")
    values = get_value(got, "objective_betas", (len(betas), len(probes.BETA_M_GRID)))
    if all(torch.allclose(v, values[0], rtol=1e-12, atol=1e-12) for v in values):
        raise Fail("beta_objective gives the same value for every β",
                   "F_β = E_q[log p(x | z)] − β · KL(q ‖ p(z)): multiply the KL term by β.", "beta_objective_ignores_beta")
    post_mean, post_std = (v.item() for v in model.posterior(x))
    w, sigma2 = model.w, model.sigma**2
    for i, beta in enumerate(betas):
        m_b = get_value(got, f"beta{i}.m", ()).item()
        s_b = get_value(got, f"beta{i}.s", ()).item()
        if not s_b > 0:
            raise Fail(f"s* = {s_b:.3g} at β = {beta}: a standard deviation must be positive.")
        if beta != 1.0 and math.hypot(m_b - post_mean, s_b - post_std) < 1e-3:
            raise Fail(f"at β = {beta} your (m*, s*) is the exact posterior, the optimum of β = 1 only",
                       "the KL term must be weighted by β: solve ∂F_β/∂m = 0 and ∂F_β/∂(s²) = 0 with β in them.",
                       "beta_posterior_for_every_beta")
        total = w**2 + sigma2 / beta  # σ²/β where βσ² belongs
        if beta != 1.0 and math.hypot(m_b - w * x / total, s_b - math.sqrt(sigma2 / beta / total)) < 1e-6:
            raise Fail(f"at β = {beta} (m*, s*) maximizes β E_q[log p(x|z)] − KL", "β multiplies the KL term, not "
                       "the expected log-likelihood.", "beta_on_likelihood")
        if beta != 1.0 and math.hypot(m_b - w * x / total, s_b - math.sqrt(sigma2 / total)) < 1e-6:
            raise Fail(f"at β = {beta} (m*, s*) is not the maximum", "β divides σ² where it should multiply it "
                       "(the KL term carries β).", "beta_divides_sigma2")
        grad = get_value(got, f"beta{i}.grad", (2,))
        if not grad.norm().item() <= 1e-6:
            raise Fail(f"at β = {beta} the gradient of beta_objective at (m*, s*) has size {grad.norm().item():.3g}, not 0 "
                        "— hint: set both partial derivatives to zero (∂/∂m and ∂/∂s²), or optimize longer.")
        value = get_value(got, f"beta{i}.value").item()
        if (get_value(got, f"beta{i}.nearby", (len(STEPS),)) > value + 1e-12).any():
            raise Fail(f"at β = {beta}, a nearby (m, s) has a larger objective: (m*, s*) is not the maximum.")
        distance = math.hypot(m_b - post_mean, s_b - post_std)
        if beta == 1.0 and distance > 1e-6:
            raise Fail("at β = 1 the maximizer must be the exact posterior. Hint: β = 1 is the ELBO.")
        if beta != 1.0 and distance < 1e-3:
            raise Fail(f"at β = {beta} the maximizer equals the posterior. Hint: the KL term must be weighted by β.",
                       diagnosis="beta_not_applied")


@criteria("optimal_q_beta")
def judge_beta_visible(got: dict, want: dict) -> str:  # noqa: ARG001 - judged by the optimality conditions
    _check_beta(got, MODEL, X_OBS, BETAS_VISIBLE, hidden=False)
    return f"maximizers are stationary maxima for β in {list(BETAS_VISIBLE)}; β = 1 gives the posterior"


@criteria("optimal_q_beta (hidden)")
def judge_beta_hidden(got: dict, want: dict) -> str:
    _check_beta(got, MODEL_H, X_H, BETAS_HIDDEN, hidden=True)
    for beta in BETAS_CLOSED_FORM:
        require_close(f"closed_form{beta}", got, want[f"closed_form{beta}"], rtol=1e-7, atol=1e-8, hidden=True,
                      hint="maximize E_q[log p(x | z)] − β KL(q ‖ p(z)) over m and s: the KL term carries the β.")
    return "stationary maxima on another model, and the closed form"


JUDGES = {
    "ex2_1_visible": judge_jensen_visible,
    "ex2_1_hidden": judge_jensen_hidden,
    "ex2_2_visible": judge_em_steps_visible,
    "ex2_2_em_visible": judge_em_visible,
    "ex2_2_hidden": judge_em_hidden,
    "ex2_3_visible": judge_kl_visible,
    "ex2_3_hidden": judge_kl_hidden,
    "ex2_4_visible": judge_elbo_visible,
    "ex2_4_mc_visible": judge_elbo_mc_visible,
    "ex2_4_hidden": judge_elbo_hidden,
    "ex2_5_visible": judge_iw_visible,
    "ex2_5_hidden": judge_iw_hidden,
    "ex2_6_visible": judge_beta_visible,
    "ex2_6_hidden": judge_beta_hidden,
}

