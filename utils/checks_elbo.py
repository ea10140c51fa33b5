"""The checks of notebook 02 (latent variables, Jensen's inequality and the ELBO).

Each public function is one check cell's work: it calls the student's function on fixed inputs, diagnoses the
usual mistakes first (unanswered, NaN or inf, wrong shape, a named slip), then compares with values **stored**
here (computed once, offline, by the reference solution: ``solutions/notes/02_stored_values.py``) or tests a
property (an identity, an optimality condition, a standard error). Nothing here computes an exercise's answer.

The hidden tests call the same functions with a ``reference`` they compute themselves.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Iterator, Sequence

import torch

from utils import checks
from utils.widgets import LinearGaussian

F64 = torch.float64


# --------------------------------------------------------------------------------------------- torch.distributions
class UsesDistributions(RuntimeError):
    """Raised when an answer builds a torch.distributions object inside `without_distributions()`."""


@contextlib.contextmanager
def without_distributions() -> Iterator[None]:
    """Within this block, creating any torch.distributions object raises UsesDistributions.

    The closed-form exercises (2.2's e_step, 2.3, 2.4) are to be derived and written by hand.
    """
    original = torch.distributions.Distribution.__init__

    def refuse(self, *args, **kwargs):  # noqa: ARG001 - any distribution at all
        raise UsesDistributions(f"torch.distributions.{type(self).__name__}")

    torch.distributions.Distribution.__init__ = refuse
    try:
        yield
    finally:
        torch.distributions.Distribution.__init__ = original


def call_by_hand(name: str, fn: Callable, *args):
    """fn(*args) with torch.distributions unavailable; fails the check with one line if the answer uses it."""
    try:
        with without_distributions():
            return fn(*args)
    except UsesDistributions as used:
        checks.fail(name, f"your answer uses {used}.",
                    "this exercise is to be written by hand: derive the formula and use torch functions only.")
    return None


def _finite_first(name: str, *values: torch.Tensor, hint: str = "") -> None:
    for value in values:
        checks.check_type(name, value, torch.Tensor)
        checks.check_finite(name, value, hint)


# --------------------------------------------------------------------------------------------------- 2.1 Jensen
EULER_GAMMA = 0.5772156649015329


def jensen_gap_stderr(samples: torch.Tensor) -> torch.Tensor:
    """Standard error of the plug-in Jensen gap (delta method), reduced over the last dimension.

    To first order the estimate moves by (1/N) Σ_n [x_n / x̄ − log x_n] when the samples change, so its
    standard error is the sample standard deviation of x_n / x̄ − log x_n divided by √N.
    """
    influence = samples / samples.mean(dim=-1, keepdim=True) - torch.log(samples)
    return influence.std(dim=-1) / math.sqrt(samples.shape[-1])


def positive_samples(n: int, generator: torch.Generator) -> dict[str, tuple[torch.Tensor, float]]:
    """n draws (n,) of several positive random variables, each with its exact Jensen gap."""
    u = 1 - torch.rand(5, n, generator=generator, dtype=F64)  # uniform on (0, 1]: never log(0)
    eps = torch.randn(n, generator=generator, dtype=F64)
    return {
        "Exponential(1)": (-torch.log(u[0]), EULER_GAMMA),
        "Uniform(0, 1)": (u[1], 1 - math.log(2)),
        "LogNormal(0.3, 0.8²)": (torch.exp(0.3 + 0.8 * eps), 0.8**2 / 2),
        "Gamma(3, 1)": (-torch.log(u[2:5]).sum(0), math.log(3) - torch.digamma(torch.tensor(3.0)).item()),
        "constant 2.5": (torch.full((n,), 2.5, dtype=F64), 0.0),
    }


def _jensen_one(name: str, gap: torch.Tensor, exact: float, se: float, n: int) -> float:
    value = gap.item()
    if value < 0:
        flipped = abs(value + exact) < 5 * se
        checks.fail(name, f"the gap {value:.4f} is negative, but log E[X] ≥ E[log X].",
                    "the sign is flipped: log(mean) − mean(log), not mean(log) − log(mean)." if flipped
                    else "log of the mean minus the mean of the logs.")
    if abs(value - exact) > 5 * se:
        hint = ("off by log N: the log of the sum where the log of the mean was meant."
                if abs(value - exact - math.log(n)) < 5 * se else "compare your code with the formula for Δ̂.")
        checks.fail(name, f"{value:.4f} is {abs(value - exact) / se:.1f} standard errors from the exact gap "
                    f"{exact:.4f}.", hint)
    return (value - exact) / se


def jensen_gap(fn: Callable[[torch.Tensor], torch.Tensor], n: int = 100_000, seed: int = 21) -> None:
    """Check 2.1: each plug-in gap ≥ 0 and within 5 standard errors of the exact gap (two-sided normal tail
    6e-7, so a correct answer passes on any seed); a constant gives 0; a (5, n) batch gives 5 gaps."""
    variables = positive_samples(n, torch.Generator().manual_seed(seed))
    batch = torch.stack([samples for samples, _ in variables.values()])  # (5, n)
    gaps = fn(batch)
    _finite_first("jensen_gap", gaps, hint="log of a positive number only: log(mean) − mean(log).")
    checks.check_shape("jensen_gap on a (5, N) batch", gaps, (5,),
                       hint="reduce over the last dimension (the samples), not over dim=0 (the variables)."
                       if tuple(gaps.shape) == (n,) else "reduce over the last dimension (the samples).")
    ses = jensen_gap_stderr(batch)
    details = []
    for (name, (samples, exact)), gap, se in zip(variables.items(), gaps, ses, strict=True):
        single = fn(samples)
        checks.check_shape(f"jensen_gap({name})", single, (), hint="reduce over the last dimension.")
        if not torch.allclose(single, gap, rtol=1e-9, atol=1e-12):
            checks.fail(f"jensen_gap({name})", "one variable alone and the same variable in a batch give "
                        "different gaps.", "reduce over the last dimension (dim=-1) only.")
        if name.startswith("constant"):
            if abs(gap.item()) > 1e-12:
                checks.fail(f"jensen_gap({name})", f"got {gap.item():.3g}, but for a constant X the gap is "
                            "exactly 0.", "log of the mean minus the mean of the logs.")
            continue
        details.append(f"{_jensen_one(f'jensen_gap({name})', gap, exact, se.item(), n):+.2f}")
    checks.passed("jensen_gap", f"5 variables, each gap ≥ 0; standard errors from the exact gaps: "
                  f"{', '.join(details)}; a constant gives 0")


def jensen_gap_batch(fn: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor, exact: torch.Tensor,
                     name: str = "jensen_gap (hidden)") -> None:
    """Gaps of a batch (..., N) of variables with known exact gaps: finite, shape (...), ≥ 0, within 5 s.e."""
    gaps = fn(batch)
    _finite_first(name, gaps)
    checks.check_shape(name, gaps, batch.shape[:-1], hint="reduce over the last dimension only.")
    if (gaps < 0).any():
        checks.fail(name, "a gap is negative.", "log(mean) − mean(log) is never negative.")
    if ((gaps - exact).abs() > 5 * jensen_gap_stderr(batch)).any():
        checks.fail(name, "a gap is more than 5 standard errors from the exact value.",
                    "reduce over the last dimension (dim=-1), for each row separately.")


# ------------------------------------------------------------------------------------------------------- 2.2 EM
X_TINY = (-1.3, 0.2, 2.9, 60.0)  # x = 60 lies far from every component
THETA_TINY = ((0.5, 0.3, 0.2), (-1.0, 0.5, 3.0), (0.4, 1.5, 0.6))  # π, μ, σ²
RESP_TINY = ((0.894655510984, 0.105344422523, 6.6492734028e-08),
             (0.354372360856, 0.644609484712, 0.00101815443187),
             (1.49824144291e-08, 0.122997378265, 0.877002606753),
             (0.0, 1.0, 0.0))
LOG_PX_TINY = (-1.1551238091, -1.91653329598, -2.15005165283, -1182.40897722)
X_M = (-1.3, 0.2, 2.9, 4.0, 0.7)
RESP_M = ((0.9, 0.1), (0.6, 0.4), (0.05, 0.95), (0.0, 1.0), (0.5, 0.5))
M_STEP_EXPECTED = {"π": (0.41, 0.59), "μ": (-0.270731707317, 2.39152542373), "σ²": (1.00499702558, 2.55840275783)}
CHI2_999 = {5: 20.515, 8: 26.124, 11: 31.264}  # 99.9% quantiles of χ² with 3K − 1 degrees of freedom


def em_steps(e_step: Callable, m_step: Callable) -> None:
    """Check 2.2 (steps): one E-step and one M-step on tiny inputs, against stored values."""
    x = torch.tensor(X_TINY, dtype=F64)
    resp, log_px = call_by_hand("e_step", e_step, x, *(torch.tensor(v, dtype=F64) for v in THETA_TINY))
    checks.check_shape("e_step responsibilities", resp, (4, 3),
                       hint="one row per data point, one column per component: (N, K)."
                       if tuple(resp.shape) == (3, 4) else "")
    checks.check_shape("e_step log p(x_n)", log_px, (4,))
    underflow = "x = 60 is far from every component: exp(a_nk) underflows to 0 and 0/0 is NaN. Use torch.logsumexp."
    checks.check_finite("e_step responsibilities", resp, underflow)
    checks.check_finite("e_step log p(x_n)", log_px, underflow)
    if not torch.allclose(resp.sum(1), torch.ones(4, dtype=F64), atol=1e-9):
        checks.fail("e_step responsibilities", "the rows do not sum to 1.",
                    "you normalized over the data points (dim=0); normalize over the components (dim=1)."
                    if torch.allclose(resp.sum(0), torch.ones(3, dtype=F64))
                    else "divide by Σ_j π_j N(x_n; μ_j, σ_j²) for each point.")
    checks.check_close("e_step responsibilities", resp, torch.tensor(RESP_TINY), rtol=1e-6, atol=1e-12)
    checks.check_close("e_step log p(x_n)", log_px, torch.tensor(LOG_PX_TINY), rtol=1e-9,
                       hint="log p(x_n) = logsumexp over k of a[n, k] = log π_k + log N(x_n; μ_k, σ_k²).")
    resp_m = torch.tensor(RESP_M, dtype=F64)
    got = dict(zip(("π", "μ", "σ²"), m_step(torch.tensor(X_M, dtype=F64), resp_m), strict=True))
    for label, value in got.items():
        _finite_first(f"m_step {label}", value)
        checks.check_shape(f"m_step {label}", value, (2,))
    expected = {label: torch.tensor(v, dtype=F64) for label, v in M_STEP_EXPECTED.items()}
    if torch.allclose(got["π"], resp_m.sum(0)):
        checks.fail("m_step π", "the weights sum to N, not 1.", "π_k = N_k / N.")
    checks.check_close("m_step π", got["π"], expected["π"], rtol=1e-9, hint="π_k = N_k / N with N_k = Σ_n r_nk.")
    checks.check_close("m_step μ", got["μ"], expected["μ"], rtol=1e-9,
                       hint="μ_k = Σ_n r_nk x_n / N_k: divide by N_k, not by N.")
    if torch.allclose(got["σ²"], expected["σ²"].sqrt(), rtol=1e-6):
        checks.fail("m_step σ²", "these are standard deviations.", "return the variances σ_k², not σ_k.")
    checks.check_close("m_step σ²", got["σ²"], expected["σ²"], rtol=1e-9,
                       hint="σ_k² = Σ_n r_nk (x_n − μ_k)² / N_k, with the *new* μ_k and weights r_nk.")


def match_components(mu_hat: torch.Tensor, mu_true: torch.Tensor) -> list[int]:
    """The permutation `order` of the fitted components that best matches the true means: mu_hat[order] ≈ mu_true."""
    K = len(mu_true)
    return list(min(itertools.permutations(range(K)),
                    key=lambda p: (mu_hat[list(p)] - mu_true).abs().sum().item()))


def _mixture_log_likelihood(x: torch.Tensor, pi, mu, var) -> float:
    """ℓ(θ; D) of the generating parameters (given material, as the notebook's gmm_log_likelihood)."""
    pi, mu, var = (torch.as_tensor(v, dtype=F64, device=x.device) for v in (pi, mu, var))
    a = torch.log(pi) - 0.5 * torch.log(2 * math.pi * var) - (x[:, None] - mu) ** 2 / (2 * var)
    return torch.logsumexp(a, dim=1).sum().item()


def em_run(x: torch.Tensor, theta_hat, history: dict, theta_true, name: str = "EM",
           show_expected: bool = True) -> float:
    """Check 2.2 (run): the properties (i)–(v) of an EM run; returns ℓ(fit) − ℓ(true) in nats.

    (i) ℓ never decreases, (ii) F = ℓ after each E-step, (iii) no M-step decreases F and F ≤ ℓ, (iv) the fit is
    within 5 asymptotic standard errors of the generating θ, (v) 0 ≤ ℓ(fit) − ℓ(true) ≤ χ²_{3K−1, 0.999} / 2.
    """
    ll = torch.tensor(history["log_lik"], dtype=F64)
    f_e = torch.tensor(history["F_after_E"], dtype=F64)
    f_m = torch.tensor(history["F_after_M"], dtype=F64)
    for label, values in (("ℓ", ll), ("F", f_e), ("F after an M-step", f_m)):
        checks.check_finite(f"{name}: {label}", values, "the E-step must work in log space; check the M-step.")
    tol = 1e-9 * abs(ll[-1].item())  # float64 rounding of a sum of N terms is ~1e-13 relative
    if (f_e - ll).abs().max() > tol:  # the E-step first: with a wrong Q, ℓ may decrease whatever the M-step does
        checks.fail(name, f"after an E-step F(θ, Q) differs from log p(x) by up to "
                    f"{(f_e - ll).abs().max().item():.3g}.",
                    "the E-step must return the exact posterior p(z = k | x_n, θ), so that KL(Q ‖ posterior) = 0.")
    drops = ll[1:] - ll[:-1]
    if drops.numel() and drops.min() < -tol:
        t = int(drops.argmin())
        checks.fail(name, f"log p(x) decreased from iteration {t} to {t + 1} by {-drops.min().item():.3g} nats.",
                    "the M-step must maximize F for fixed Q: π_k = N_k/N, μ_k and σ_k² weighted by r_nk over N_k.")
    checks.check_close(f"{name}: Σ_n of your log p(x_n)", torch.tensor(history["your_log_px"]), ll, rtol=1e-10,
                       show_expected=show_expected)
    if (f_m < f_e[:len(f_m)] - tol).any() or (f_m > ll[1:len(f_m) + 1] + tol).any():
        checks.fail(name, "an M-step decreased F, or F rose above log p(x).", "check the M-step formulas.")
    pi_true, mu_true, var_true = (torch.as_tensor(v, dtype=F64) for v in theta_true)
    order = match_components(theta_hat[1].cpu(), mu_true)
    pi_hat, mu_hat, var_hat = (v.cpu()[order] for v in theta_hat)
    n, K = len(x), len(mu_true)
    stderr = {"π": (pi_true * (1 - pi_true) / n).sqrt(), "μ": (var_true / (n * pi_true)).sqrt(),
              "σ²": var_true * (2 / (n * pi_true)).sqrt()}
    for label, est, true in (("π", pi_hat, pi_true), ("μ", mu_hat, mu_true), ("σ²", var_hat, var_true)):
        z = ((est - true) / stderr[label]).abs().max().item()
        if z > 5:
            checks.fail(name, f"the fitted {label} is {z:.1f} standard errors from the generating value"
                        + (f" ({est.tolist()} vs {true.tolist()})." if show_expected else "."),
                        "EM converged, but to the wrong parameters: check the M-step.")
    excess = history["log_lik"][-1] - _mixture_log_likelihood(x, pi_true, mu_true, var_true)
    bound = CHI2_999[3 * K - 1] / 2
    if not -tol <= excess <= bound:
        checks.fail(name, f"ℓ(fit) − ℓ(true) = {excess:.3g} nats, outside [0, {bound:.2f}].")
    checks.passed(name, f"{len(history['F_after_M'])} iterations, ℓ never decreased, F = ℓ after each E-step, "
                        f"parameters within 5 s.e., ℓ(fit) − ℓ(true) = {excess:.3f} nats (bound {bound:.2f})")
    return excess


# ------------------------------------------------------------------------------------------------------- 2.3 KL
KL_MU = ((0.31, -1.27, 0.85), (1.92, 0.04, -0.66), (-0.48, 2.35, 0.17), (0.0, -0.93, 1.41), (-1.76, 0.58, -0.22))
KL_LOGVAR = ((-0.42, 0.67, -1.35), (0.23, -2.1, 0.88), (1.14, -0.29, -0.71), (-0.05, 1.62, 0.36), (-1.8, 0.51, 0.94))
KL_EXPECTED = (1.70101220055, 2.9527780723, 3.50423806511, 2.68032457781, 2.61148575075)
KL_LOGVAR_AS_LOG_SIGMA = (2.97472977077, 5.25755347811, 6.5400463965, 12.242996188, 5.2682116743)


KlReference = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _kl_mistakes(mu: torch.Tensor, logvar: torch.Tensor, ref: torch.Tensor,
                 as_log_sigma: torch.Tensor) -> dict[str, torch.Tensor]:
    """The usual wrong answers on (mu, logvar), from the right values `ref` and those of logvar read as log σ."""
    D = mu.shape[-1]
    return {
        "logvar is log σ², not log σ: the variance is exp(logvar) (the std exp(½ logvar)), not exp(2 logvar).":
            as_log_sigma,
        "the log term uses log σ where log σ² (= logvar) belongs.": ref + 0.25 * logvar.sum(-1),
        "the factor ½ is missing.": 2 * ref,
        "the sign is flipped: KL(q ‖ p) = E_q[log q − log p] ≥ 0.": -ref,
        "a mean over the latent dimensions where the docstring asks for a sum.": ref / D,
        "the −1 of each latent dimension is missing.": ref + D / 2,
    }


def kl_normal_std(fn: KlReference, mu: torch.Tensor | None = None, logvar: torch.Tensor | None = None,
                  reference: KlReference | None = None, name: str = "kl_normal_std") -> None:
    """Check 2.3 on (mu, logvar) (default: the stored inputs KL_MU, KL_LOGVAR): by hand, finite, shape (B,),
    inputs unchanged, the usual mistakes named, equal to the stored values (or to `reference`) to 1e-6."""
    if mu is None or logvar is None:
        mu, logvar = torch.tensor(KL_MU, dtype=F64), torch.tensor(KL_LOGVAR, dtype=F64)
    before = (mu.clone(), logvar.clone())
    got = call_by_hand(name, fn, mu, logvar)
    checks.check_type(name, got, torch.Tensor)
    checks.check_shape(name, got, mu.shape[:-1], hint="sum over the latent dimensions (the last one), keep the batch.")
    checks.check_finite(name, got, "σ² = exp(logvar) is positive: no log of a negative number is needed.")
    if not (torch.equal(mu, before[0]) and torch.equal(logvar, before[1])):
        checks.fail(name, "changed its inputs in place.")
    mu, logvar = before
    if reference is None:
        ref, as_log_sigma = torch.tensor(KL_EXPECTED, dtype=F64), torch.tensor(KL_LOGVAR_AS_LOG_SIGMA, dtype=F64)
    else:
        ref, as_log_sigma = reference(mu, logvar), reference(mu, 2 * logvar)
    if not torch.allclose(got, ref, rtol=1e-6, atol=1e-10):  # some coincide with the answer for D = 1
        mistake = checks.match_variant(got, _kl_mistakes(mu, logvar, ref, as_log_sigma), rtol=1e-6)
        if mistake:
            checks.fail(name, "wrong values.", mistake)
    checks.check_close(name, got, ref, rtol=1e-6, atol=1e-10, show_expected=reference is None)
    zero = fn(torch.zeros(2, 4, dtype=F64), torch.zeros(2, 4, dtype=F64))
    if zero.abs().max() > 1e-12:
        checks.fail(name, "KL(N(0, I) ‖ N(0, I)) must be 0.", "at mu = 0, logvar = 0 every term must cancel.")


# ----------------------------------------------------------------------------------------------------- 2.4 ELBO
ELBO_M = (-1.0, 0.3, 1.04, 2.5)  # the 4 × 4 grid of q = N(m, s²) for x = 2, w = 1.5, σ = 0.8
ELBO_S = (0.2, 0.47, 1.0, 1.7)
ELBO_EXPECTED = (  # F = log p(x) − KL(q ‖ p(z|x)) on the grid, row-major (m, s)
    -11.9658578943, -11.5198808474, -12.5239199819, -16.2605573558,
    -3.81749851932, -3.37152147242, -4.37556060689, -8.11219798083,
    -2.58759539432, -2.14161834742, -3.14565748189, -6.88229485583,
    -7.41312351932, -6.96714647242, -7.97118560689, -11.7078229808)
ELBO_KL_PRIOR = (  # KL(q ‖ p(z)) on the grid
    1.62943791243, 0.865472584278, 0.5, 0.914371748938, 1.17443791243, 0.410472584278, 0.045, 0.459371748938,
    1.67023791243, 0.906272584278, 0.5408, 0.955171748938, 4.25443791243, 3.49047258428, 3.125, 3.53937174894)
ELBO_KL_PRIOR_LOG_S = (  # KL(N(m, s) ‖ p(z)): log s passed as the log-variance
    0.904718956217, 0.612511292139, 0.5, 0.584685874469, 0.449718956217, 0.157511292139, 0.045, 0.129685874469,
    0.945518956217, 0.653311292139, 0.5408, 0.625485874469, 3.52971895622, 3.23751129214, 3.125, 3.20968587447)


def elbo_grid() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, m, s), each (4, 4): the fixed inputs of check 2.4 (x = 2 everywhere)."""
    m, s = torch.meshgrid(torch.tensor(ELBO_M, dtype=F64), torch.tensor(ELBO_S, dtype=F64), indexing="ij")
    return torch.full_like(m, 2.0), m, s


def elbo_identity(elbo: Callable, model: LinearGaussian, cases: Sequence | None = None,
                  name: str = "elbo") -> float:
    """Check 2.4 (closed form): F + KL(q ‖ p(z|x)) = log p(x) to 1e-6, i.e. F equal to the stored values on
    the 4 × 4 grid (or, in `cases`, to given (x, m, s, F, KL(q ‖ p(z)), KL with log s) tuples).
    Names the usual mistakes. Returns the largest error in nats."""
    show_expected = cases is None
    if cases is None:
        x, m, s = elbo_grid()
        cases = [(x, m, s, *(torch.tensor(v, dtype=F64).reshape(4, 4)
                             for v in (ELBO_EXPECTED, ELBO_KL_PRIOR, ELBO_KL_PRIOR_LOG_S)))]
    worst = 0.0
    for x, m, s, ref, kl_prior, kl_log_s in cases:
        F = call_by_hand(name, elbo, x, m, s, model)
        checks.check_type(name, F, torch.Tensor)
        checks.check_shape(name, F, m.shape, hint="one ELBO per (x, m, s): no reduction.")
        checks.check_finite(name, F, "s > 0 everywhere here: log s is finite.")
        mistake = None if torch.allclose(F, ref, rtol=0, atol=1e-6) else checks.match_variant(F, {
            "the KL term is added; F = E_q[log p(x|z)] − KL(q ‖ p(z)).": ref + 2 * kl_prior,
            "the variance term is missing: E_q[(x − wz)²] = (x − wm)² + w²s².":
                ref + model.w**2 * s**2 / (2 * model.sigma**2),
            "the constant −½ log(2πσ²) of log p(x | z) is missing.":
                ref + 0.5 * math.log(2 * math.pi * model.sigma**2),
            "kl_normal_std wants log s² = 2 log s, not log s.": ref + kl_prior - kl_log_s,
        }, rtol=1e-6)
        if mistake:
            checks.fail(name, "F + KL(q ‖ p(z|x)) ≠ log p(x).", mistake)
        kl_post = model.log_marginal(x) - ref
        total = F + kl_post
        worst = max(worst, (total - model.log_marginal(x)).abs().max().item())
        checks.check_close(f"{name}: ELBO + KL(q ‖ p(z|x)) = log p(x)", total,
                           model.log_marginal(x).expand(m.shape), rtol=0, atol=1e-6,
                           show_expected=show_expected,
                           hint="test expected_log_likelihood alone: at s → 0 it must equal log N(x; w m, σ²).")
    return worst


MC_CASES = ((0.2, 0.9, 25),)  # (m, s, seed of the 10^6 draws that measured the truth) for x = 2
MC_TRUTH = {  # (m, s) -> (closed-form F, sd of one term, kurtosis of one term), from 10^6 draws
    (0.2, 0.9): (-4.40779612255, 3.89064479338, 7.90783754627)}


def _log_q_hint(est: float, se: float, log_px: float, s: float, n: int) -> str:
    """Name the mistake when elbo_mc is not exact at q = the posterior."""
    missing = 0.5 * (s**2 - 1)  # E[½ ε² (s² − 1)]: log q with (z − m)² where (z − m)² / s² belongs
    se_missing = abs(missing) * math.sqrt(2 / n)  # the standard error of that mean
    if abs(est - log_px - missing) < 4 * se_missing and 0.5 < se / se_missing < 2:
        return "log q(z) is missing the 1/s²: log N(z; m, s²) = −½ log(2π) − log s − (z − m)² / (2 s²)."
    return ("each term log p(x, z) − log q(z) must equal log p(x) when q is the posterior: check log q(z) = "
            "−½ log(2π) − log s − (z − m)² / (2 s²), at the z you drew from q.")


def elbo_mc(fn: Callable, model: LinearGaussian, x: float = 2.0, m: float = 0.2, s: float = 0.9,
            n_samples: int = 4000, seed: int = 24, truth: tuple[float, float, float] | None = None,
            name: str = "elbo_mc") -> tuple[float, float, float]:
    """Check 2.4 (Monte Carlo): finite values first; exact (s.e. 0) at q = the posterior, which checks log q;
    then within 4 standard errors of the closed form (CLT, two-sided tail 6e-5) and a standard error within 5 of
    its own relative standard errors √((κ − 1) / (4n)) of the true one. `truth` = (F, sd, κ) of one term
    (default: stored for the notebook's q). Returns (estimate, stderr, closed form)."""
    x_t = torch.tensor(x, dtype=F64)
    post_m, post_s = model.posterior(x_t)
    log_px = model.log_marginal(x_t).item()
    est, se = fn(x_t, post_m, post_s, model, 200, torch.Generator().manual_seed(seed + 7))
    _finite_first(f"{name} (q = posterior)", est, se)
    checks.check_shape(f"{name} estimate", est, ())
    checks.check_shape(f"{name} stderr", se, ())
    if abs(est.item() - log_px) > 1e-9 or abs(se.item()) > 1e-9:
        checks.fail(name, "at q = the exact posterior every term is log p(x): the estimate must be exact and its "
                    "standard error 0.", _log_q_hint(est.item(), se.item(), log_px, post_s.item(), 200))
    F, sd, kurtosis = truth if truth is not None else MC_TRUTH[(m, s)]
    est, se = fn(x_t, torch.tensor(m, dtype=F64), torch.tensor(s, dtype=F64), model, n_samples,
                 torch.Generator().manual_seed(seed))
    _finite_first(name, est, se)
    est, se = est.item(), se.item()
    se_true = sd / math.sqrt(n_samples)
    if abs(est - F) > 4 * se_true:
        checks.fail(name, f"the estimate is {abs(est - F) / se_true:.1f} standard errors from the closed form"
                    + (f" {F:.4f}." if truth is None else "."),
                    "sample z = m + s·ε from q (not from the prior) and average log p(x, z) − log q(z).")
    rel_tol = 5 * math.sqrt((kurtosis - 1) / (4 * n_samples))
    ratio = se / se_true
    if abs(ratio - 1) > rel_tol:
        hint = ("divide the standard deviation by √n_samples." if abs(ratio / math.sqrt(n_samples) - 1) < 0.2
                else "stderr = sample standard deviation of the n terms / √n.")
        checks.fail(name, f"the standard error is {ratio:.3g} times the true one (tolerance ±{rel_tol:.2g}).", hint)
    checks.passed(name, f"exact at q = posterior; {est:.4f} ± {se:.4f}"
                  + (f", closed form {F:.4f}" if truth is None else "")
                  + f" ({(est - F) / se_true:+.2f} standard errors)")
    return est, se, F


# ---------------------------------------------------------------------------------------------- 2.5 IW bound
IW_ELBO = {(0.2, 0.9): -4.40779612255}  # (m, s) -> the closed-form ELBO = L_1 for x = 2


def iw_bound(fn: Callable, model: LinearGaussian, x: float = 2.0, m: float = 0.2, s: float = 0.9,
             ks: Sequence[int] = (1, 3, 10, 30, 100, 300, 1000), n_outer: int = 2000, seed: int = 25,
             elbo_value: float | None = None, name: str = "iw_bound") -> list[tuple[int, float, float]]:
    """Check 2.5: finite values and standard errors FIRST; then L_k ≤ log p(x), L_1 = ELBO and L_k
    non-decreasing in k, each within 4 standard errors (CLT over n_outer groups, two-sided 6e-5).
    `elbo_value`: the ELBO of q (default: stored). Returns [(k, estimate, stderr), ...]."""
    gen = torch.Generator().manual_seed(seed)
    x_t, m_t, s_t = (torch.tensor(v, dtype=F64) for v in (x, m, s))
    log_px = model.log_marginal(x_t).item()
    F = elbo_value if elbo_value is not None else IW_ELBO[(m, s)]
    results = []
    for k in ks:
        est, se = fn(x_t, m_t, s_t, model, k, n_outer, gen)
        checks.check_type(f"{name} (k = {k})", est, torch.Tensor)
        checks.check_shape(f"{name} (k = {k})", est, ())
        checks.check_shape(f"{name} (k = {k}) stderr", se, ())
        if not (math.isfinite(est.item()) and math.isfinite(se.item())):
            checks.fail(f"{name} (k = {k})", f"the estimate {est.item():.4g} or its standard error "
                        f"{se.item():.4g} is NaN or inf.",
                        "take logsumexp over the k samples of each group (dim=1), not over the groups (dim=0): "
                        "then there are n_outer group values to average." if k == 1
                        else "use torch.logsumexp for log Σ_i exp(log w_i).")
        est, se = est.item(), se.item()
        if est > log_px + 4 * se + 1e-9:
            hint = ("1/k is missing inside the log: the estimate exceeds log p(x) by about log k."
                    if abs(est - log_px - math.log(k)) < 0.5 else "L_k averages the weights p/q inside the log.")
            checks.fail(name, f"L_{k} = {est:.4f} lies above log p(x)"
                        + (f" = {log_px:.4f}." if elbo_value is None else "."), hint)
        results.append((k, est, se))
    k1 = [r for r in results if r[0] == 1]
    if k1 and abs(k1[0][1] - F) > 4 * k1[0][2] + 1e-9:
        checks.fail(name, f"L_1 is {abs(k1[0][1] - F) / max(k1[0][2], 1e-12):.1f} standard errors from the ELBO.",
                    "with k = 1 the bound is the ELBO: log p(x, z) − log q(z) with z ~ q.")
    for (k_a, est_a, se_a), (k_b, est_b, se_b) in itertools.pairwise(results):
        if est_b < est_a - 4 * math.hypot(se_a, se_b) - 1e-9:
            checks.fail(name, f"L_{k_b} < L_{k_a} beyond Monte Carlo error.",
                        "average the weights inside the log (logsumexp − log k), not the log-weights.")
    first, last = results[0], results[-1]
    if log_px - F > 0.1 and last[1] - first[1] < 4 * math.hypot(first[2], last[2]):
        checks.fail(name, f"L_k does not grow from k = {first[0]} to k = {last[0]}.",
                    "average the weights inside the log (logsumexp − log k), not the log-weights.")
    checks.passed(name, ", ".join(f"L_{k} = {est:.4f} ± {se:.4f}" for k, est, se in results)
                  + (f"; ELBO {F:.4f}, log p(x) {log_px:.4f}" if elbo_value is None else ""))
    return results


# ----------------------------------------------------------------------------------------------- 2.6 β-objective
BETA_M = (-0.4, 0.9, 1.6)  # (m, s) where beta_objective is compared with stored values, x = 2
BETA_S = (0.3, 0.8, 1.3)
BETAS = (0.25, 1.0, 4.0)
BETA_OBJECTIVE = {  # β -> F_β at (BETA_M, BETA_S)
    0.25: (-6.34249130797, -2.26290899472, -4.13215704077), 1.0: (-6.96422091122, -2.5990166582, -5.15413384242),
    4.0: (-9.45113932419, -3.94344731215, -9.24204104902)}
BETA_ON_LIKELIHOOD = {  # β -> β E_q[log p(x|z)] − KL at (BETA_M, BETA_S): β on the wrong term
    0.25: (-2.36278483105, -0.985861828037, -2.31051026226), 1.0: (-6.96422091122, -2.5990166582, -5.15413384242),
    4.0: (-25.3699652319, -9.05163597888, -16.5286281631)}
BETA_OPTIMUM = {  # β -> (m*, s*)
    0.25: (1.24481327801, 0.25766265056), 1.0: (1.03806228374, 0.470588235294), 4.0: (0.623700623701, 0.72953720414)}
BETA_ON_LIKELIHOOD_OPTIMUM = {  # β -> (m*, s*) of β E_q[log p(x|z)] − KL (= the optimum at 1/β)
    0.25: (0.623700623701, 0.72953720414), 1.0: (1.03806228374, 0.470588235294), 4.0: (1.24481327801, 0.25766265056)}
BETA_MISPLACED = {  # β -> (m*, s*) with σ²/β where βσ² belongs
    0.25: (0.623700623701, 0.36476860207), 1.0: (1.03806228374, 0.470588235294), 4.0: (1.24481327801, 0.515325301121)}


BETA_ON_LIKELIHOOD_HINT = ("(m*, s*) maximizes β E_q[log p(x|z)] − KL: β multiplies the KL term, not the expected "
                           "log-likelihood.")
BETA_DIVIDES_HINT = "β divides σ² where it should multiply it (the KL term carries β)."


def _beta_stationary(name: str, beta_objective: Callable, x: torch.Tensor, model: LinearGaussian,
                     m_b: torch.Tensor, s_b: torch.Tensor, beta: float) -> None:
    m_v, s_v = m_b.detach().clone().requires_grad_(True), s_b.detach().clone().requires_grad_(True)
    value = beta_objective(x, m_v, s_v, model, beta)
    value.backward()
    grad = math.hypot(m_v.grad.item(), s_v.grad.item())
    if grad > 1e-6:
        checks.fail(name, f"at β = {beta} the gradient of beta_objective at (m*, s*) has size {grad:.3g}, not 0.",
                    "set both partial derivatives to zero (∂/∂m and ∂/∂s²), or optimize longer.")
    for dm, ds in itertools.product((-0.05, 0.0, 0.05), (-0.05, 0.0, 0.05)):
        if beta_objective(x, m_b + dm, s_b * math.exp(ds), model, beta) > value.item() + 1e-12:
            checks.fail(name, f"at β = {beta}, a nearby (m, s) has a larger objective: (m*, s*) is not the maximum.")


def beta(beta_objective: Callable, optimal_q_beta: Callable, elbo: Callable, model: LinearGaussian,
         x: float = 2.0, betas: Sequence[float] = BETAS, stored: bool = True, name: str = "optimal_q_beta",
         variants: dict[str, dict[float, tuple[float, float]]] | None = None) -> None:
    """Check 2.6: beta_objective at β = 1 is your elbo and moves with β (stored values name β on the wrong
    term); (m*, s*) is finite, s* > 0, matches no named mistake, is a stationary maximum of beta_objective, the
    posterior at β = 1 and not at β ≠ 1. `stored=False` (another model): the properties, and the named mistakes
    in `variants` (hint -> {β: (m*, s*)}) if given."""
    x_t = torch.tensor(x, dtype=F64)
    m_grid, s_grid = torch.tensor(BETA_M, dtype=F64), torch.tensor(BETA_S, dtype=F64)
    x_grid = torch.full_like(m_grid, x)
    at_one = beta_objective(x_grid, m_grid, s_grid, model, 1.0)
    _finite_first("beta_objective", at_one)
    checks.check_close("beta_objective at β = 1 is your elbo", at_one, elbo(x_grid, m_grid, s_grid, model),
                       rtol=1e-12, atol=1e-12, show_expected=stored)
    values = {b: beta_objective(x_grid, m_grid, s_grid, model, b) for b in betas}
    if all(torch.allclose(v, at_one, rtol=1e-12, atol=1e-12) for v in values.values()):
        checks.fail("beta_objective", "gives the same value for every β.",
                    "F_β = E_q[log p(x | z)] − β · KL(q ‖ p(z)): multiply the KL term by β.")
    if stored:
        for b, v in values.items():
            if b != 1.0 and torch.allclose(v, torch.tensor(BETA_ON_LIKELIHOOD[b], dtype=F64), rtol=1e-9):
                checks.fail("beta_objective", f"at β = {b} it weights the wrong term.",
                            "β multiplies the KL term, not the expected log-likelihood.")
            checks.check_close(f"beta_objective (β = {b})", v, torch.tensor(BETA_OBJECTIVE[b], dtype=F64),
                               rtol=1e-9, hint="F_β = E_q[log p(x | z)] − β · KL(q ‖ p(z)).")
    post = torch.stack(model.posterior(x_t))
    for b in betas:
        m_b, s_b = optimal_q_beta(x_t, model, b)
        _finite_first(f"{name} (β = {b})", m_b, s_b)
        checks.check_shape(f"{name} m*", m_b, ())
        checks.check_shape(f"{name} s*", s_b, ())
        if not s_b > 0:
            checks.fail(name, f"s* = {s_b.item():.3g} at β = {b}: a standard deviation must be positive.")
        got = torch.stack([m_b, s_b]).detach()
        distance = (got - post).norm().item()
        if b != 1.0 and distance < 1e-3:
            checks.fail(name, f"at β = {b} your (m*, s*) is the exact posterior, the optimum of β = 1 only.",
                        "the KL term must be weighted by β: solve ∂F_β/∂m = 0 and ∂F_β/∂(s²) = 0 with β in them.")
        if stored or variants:
            named = variants if not stored else {
                BETA_ON_LIKELIHOOD_HINT: BETA_ON_LIKELIHOOD_OPTIMUM[b],
                BETA_DIVIDES_HINT: BETA_MISPLACED[b],
                "s* is a standard deviation: take the square root of the optimal variance.":
                    (BETA_OPTIMUM[b][0], BETA_OPTIMUM[b][1] ** 2)}
            if b != 1.0:
                table = {k: torch.tensor(v[b] if isinstance(v, dict) else v, dtype=F64) for k, v in named.items()
                         if not isinstance(v, dict) or b in v}
                mistake = checks.match_variant(got, table, rtol=1e-6)
                if mistake:
                    checks.fail(name, f"at β = {b}, (m*, s*) = ({m_b.item():.4f}, {s_b.item():.4f}).", mistake)
        _beta_stationary(name, beta_objective, x_t, model, m_b, s_b, b)
        if b == 1.0 and distance > 1e-6:
            checks.fail(name, "at β = 1 the maximizer must be the exact posterior.", "β = 1 is the ELBO.")
    checks.passed(name, f"maximizers are stationary maxima for β in {list(betas)}; β = 1 gives the posterior")
