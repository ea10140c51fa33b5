"""Judges of the hidden tests for 04_gradient_estimators (instructor material: never released to students).

Run in the trusted grader only (never in the student's kernel); they never call student code. The probes return
float64 tensors (a Python float would be stored as float32).

The estimators are stochastic. Where the notebook prescribes the exact random calls (eps = torch.randn(n,
generator=generator, dtype=torch.float64), as the docstrings of 4.1, 4.2 and 4.5 say) the hidden parts compare the
student's estimates on seeded generators with the solution's, to float64 rounding, as the hidden check cells do.
Everything else is judged against closed forms with tolerances derived from the statistics, as in the check cells:

* z ~ N(θ, 1), f(z) = z²: both estimators have mean 2θ; the per-sample terms are polynomials in ε ~ N(0, 1),
  (θ+ε)²ε (score function) and 2(θ+ε) (pathwise), whose variance and fourth central moment are exact
  (`gaussian_polynomial_moments` below: the reference, kept out of `utils`): at θ = 2 the per-sample variances are 87 and 4.
* A mean of M = n·R terms is accepted within 4 standard errors sqrt(v / M) of 2θ: a correct estimator misses with
  probability ≈ 6e-5 (normal approximation for a mean of thousands of terms).
* A sample variance s² of R estimates is accepted in [E s² - 4 SD(s²), E s² + 5 SD(s²)], with SD(s²) from the fourth
  moment of the estimate (`mean_of_n_moments`, `sample_variance_interval`); s² is right-skewed, hence the wider upper
  side. Chebyshev guarantees ≥ 93.75% coverage for any distribution; for R ≥ 100 a miss has probability ≈ 1e-5.
* The bandit (4.6): the mean of 50 batch estimates within 4.5 standard errors estimated from those 50 (Student t, 49
  degrees of freedom: P(|t| > 4.5) ≈ 4e-5 per component). Gumbel-softmax (4.7): a chi-square test of 20,000 Gumbel-max
  draws (3 degrees of freedom, threshold 25: P ≈ 1.6e-5), and differences of two independent means of 20,000 draws
  within 4.5 combined standard errors (P ≈ 7e-6 per component).
"""

from __future__ import annotations

import math

import torch
from numpy.polynomial import polynomial as npoly

from instructor.grading.judge import Fail, compare, criteria, flag, get_value, require, require_all_close
from instructor.grading.spec import probes_beside
from utils import estimators_demo as demo

probes = probes_beside(__file__)

DIAGNOSES = (  # the typical mistakes these judges name (Verdict.diagnosis), counted by the class report
    "sum_over_samples",
    "score_factor_missing",
    "score_sign_flipped",
    "z_for_score",
    "f_missing",
    "pathwise_for_score",
    "generator_ignored",
    "draws_not_as_prescribed",
    "generator_reseeded",
    "score_for_pathwise",
    "f_not_differentiated",
    "factor_two_missing",
    "theta_missing_from_path",
    "pathwise_sign_flipped",
    "pathwise_generator_ignored",
    "sigma_chain_rule_missing",
    "sigma_path_derivative",
    "unbiased_variance",
    "second_moment_for_variance",
    "baseline_changes_draws",
    "baseline_subtracted_from_product",
    "baseline_added",
    "surrogate_sum_or_no_detach",
    "sample_for_rsample",
    "surrogate_samples_not_detached",
    "surrogate_not_generic",
    "baseline_mean_of_f",
    "bandit_baseline_added",
    "bandit_baseline_ignored",
    "softmax_over_samples",
    "relaxed_sample_detached",
    "temperature_multiplied",
    "gumbel_no_gradient_flow",
)

# the probes' constants (inputs, sizes, seeds), which the judges use too
BANDIT_LOGITS = probes.BANDIT_LOGITS
BANDIT_MU = probes.BANDIT_MU
GUMBEL_LOGITS = probes.GUMBEL_LOGITS
HIDDEN_C = probes.HIDDEN_C
HIDDEN_LOGITS = probes.HIDDEN_LOGITS
HIDDEN_THETAS = probes.HIDDEN_THETAS


def gaussian_moment(k: int) -> float:
    """E[ε^k] for ε ~ N(0, 1): 0 for odd k, (k-1)!! for even k."""
    return 0.0 if k % 2 else float(math.prod(range(k - 1, 0, -2)))


def gaussian_polynomial_moments(coeffs: list[float]) -> tuple[float, float, float]:
    """Mean, variance and fourth central moment of p(ε) = Σ_j coeffs[j] ε^j for ε ~ N(0, 1), exactly (the reference
    for Exercise 4.4: it computes any polynomial estimator's variance, so it lives with the judges, not in utils)."""
    import numpy as np

    c = np.asarray(coeffs, dtype=np.float64)

    def expect(poly) -> float:
        return float(sum(cj * gaussian_moment(j) for j, cj in enumerate(poly)))

    mean = expect(c)
    centred = c.copy()
    centred[0] -= mean
    return mean, expect(npoly.polypow(centred, 2)), expect(npoly.polypow(centred, 4))


# ---- judges (trusted) -----------------------------------------------------------------------------------------------
def _score_coeffs(theta: float) -> list[float]:
    return [0.0, theta**2, 2 * theta, 1.0]  # (θ+ε)²ε = θ²ε + 2θε² + ε³


def _pathwise_coeffs(theta: float) -> list[float]:
    return [2 * theta, 2.0]  # 2(θ+ε)


def _mean_and_variance_test(estimates: torch.Tensor, coeffs: list[float], n: int) -> tuple[float, float, bool, bool,
                                                                                               float, float]:
    """(mean, per-sample variance n·s², mean within 4 SE, n·s² within its fourth-moment interval, SE, true mean)."""
    grad, v, mu4 = gaussian_polynomial_moments(coeffs)
    reps = len(estimates)
    se = (v / (n * reps)) ** 0.5
    mean = estimates.mean().item()
    low, high = demo.sample_variance_interval(*demo.mean_of_n_moments(v, mu4, n), reps)
    s2 = estimates.var(unbiased=False).item()
    return mean, n * s2, abs(mean - grad) <= 4 * se, low <= s2 <= high, se, grad


def _require_prescribed_draws(estimates: torch.Tensor, seed: int, per_sample) -> None:
    """The visible probe's estimates (after one first call, θ = 2, n = 10) are the seed's own draws: the docstring
    prescribes eps = torch.randn(n, generator=generator, dtype=torch.float64), so the judge redraws them and compares
    to float64 rounding. Statistics alone could be forged in the kernel; these draws cannot be without the formula."""
    gen = torch.Generator().manual_seed(seed)
    torch.randn(10, generator=gen, dtype=torch.float64)  # the probe's first call
    z = 2.0 + torch.stack([torch.randn(10, generator=gen, dtype=torch.float64) for _ in range(len(estimates))])
    require(torch.allclose(estimates, per_sample(z).mean(1), rtol=1e-9, atol=1e-12),
            "the estimates have the right statistics but are not the generator's draws",
            "draw eps = torch.randn(n, generator=generator, dtype=torch.float64) as the docstring says, once per call.",
            "draws_not_as_prescribed")


def _check_score_visible(got: dict, want: dict) -> str:
    if not flag(got, "is_number"):
        raise Fail("return a Python float, e.g. tensor.mean().item().")
    same_seed = get_value(got, "same_seed.0", ()), get_value(got, "same_seed.1", ())
    if not torch.equal(*same_seed):
        raise Fail("two calls with identically seeded generators differ. Hint: draw all randomness from the "
                    "`generator` argument (torch.randn(..., generator=generator)).", diagnosis="generator_ignored")
    est = get_value(got, "estimates", (3000,), "the 3000 estimates")
    if torch.unique(est).numel() < 1500:
        raise Fail("repeated calls return (almost) the same value. Hint: draw fresh samples from the generator on every "
                    "call; do not re-seed it inside the function.", diagnosis="generator_reseeded")
    mean, per_sample, mean_ok, var_ok, se, grad = _mean_and_variance_test(est, _score_coeffs(2.0), 10)
    if not mean_ok:
        mistakes = {"sum_over_samples": ("the sum over samples instead of the mean", 10 * grad),
                    "score_factor_missing": ("E[f(z)] = θ²+1, the score factor (z-θ) is missing", 5.0),
                    "score_sign_flipped": ("a flipped sign of the score: use +(z-θ), the derivative of -(z-θ)²/2", -grad),
                    "z_for_score": ("f(z)·z: the score of N(θ,1) is (z-θ), not z", 8.0 + 6.0),
                    "f_missing": ("zero: the score alone has mean zero; multiply it by f(z)", 0.0)}
        named = [(d, why) for d, (why, value) in mistakes.items() if abs(mean - value) < 4 * se * max(1.0, abs(value) / 4)]
        raise Fail(f"the mean of 3000 estimates is {mean:.3f}, more than 4 standard errors ({se:.3f}) from the true "
                   f"gradient 2θ = {grad:g}", f"it looks like {named[0][1]}." if named else
                   "the estimator is biased: mean of f(z_i)·(z_i - θ).", named[0][0] if named else "")
    if not var_ok:
        pathwise = abs(per_sample - 4) < 1
        raise Fail(f"per-sample variance n·Var = {per_sample:.3g}, outside the interval around 87",
                   "variance ≈ 4: that is the pathwise estimator; here use f(z)·(z-θ)." if pathwise else
                   "did you mean over the n samples (not sum), with z = θ + eps and the score (z - θ)?",
                   "pathwise_for_score" if pathwise else "")
    _require_prescribed_draws(est, seed=41, per_sample=lambda z: z**2 * (z - 2.0))
    return f"mean of 3000 estimates {mean:.3f} within 4 SE ({se:.3f}) of 4; per-sample variance {per_sample:.1f} (87)"


def _check_exact(got: dict, want: dict, what: str, hint: str) -> None:
    for name, reference in want.items():
        problem = compare(name, got.get(name), reference, rtol=1e-9, atol=1e-12, hidden=True)
        if problem:
            raise Fail(f"{what} on seeded generators differs from the estimator's definition ({problem})", hint)


def _check_score_hidden(got: dict, want: dict) -> str:
    _check_exact({k.removeprefix("exact."): v for k, v in got.items() if k.startswith("exact.")},
                 {k.removeprefix("exact."): v for k, v in want.items() if k.startswith("exact.")},
                 "score_function_grad", "draw eps = torch.randn(n, generator=generator, dtype=torch.float64), "
                 "z = theta + eps, and return the mean of f(z)·(z-θ).")
    est = get_value(got, "estimates", (2000,), "the 2000 estimates at θ = -0.7")
    _, _, mean_ok, _, _, _ = _mean_and_variance_test(est, _score_coeffs(-0.7), 20)
    if not mean_ok:
        raise Fail("at θ = -0.7 the mean of 2000 estimates is more than 4 standard errors from 2θ.")
    return "right on the hidden inputs"


def _check_pathwise_visible(got: dict, want: dict) -> str:
    if not flag(got, "is_number"):
        raise Fail("return a Python float, e.g. tensor.mean().item().")
    same_seed = get_value(got, "same_seed.0", ()), get_value(got, "same_seed.1", ())
    if not torch.equal(*same_seed):
        raise Fail("two calls with identically seeded generators differ. Hint: draw all randomness from the "
                    "`generator` argument.", diagnosis="pathwise_generator_ignored")
    est = get_value(got, "estimates", (3000,), "the 3000 estimates")
    mean, per_sample, mean_ok, var_ok, se, grad = _mean_and_variance_test(est, _pathwise_coeffs(2.0), 10)
    if not mean_ok and 40 < per_sample < 200:
        raise Fail(f"the mean is {mean:.3f} and the per-sample variance {per_sample:.1f}, far above 4",
                   "variance ≈ 87: that is the score-function estimator; here use f'(z) = 2z along the path z = θ + ε.",
                   "score_for_pathwise")
    if not mean_ok:
        mistakes = {"sum_over_samples": ("the sum over samples instead of the mean", 10 * grad),
                    "f_not_differentiated": ("E[f(z)] = θ²+1: differentiate f along the path, f'(z) = 2z", 5.0),
                    "factor_two_missing": ("z without the factor 2: f'(z) = 2z", 2.0),
                    "theta_missing_from_path": ("2ε: the path is z = θ + ε, so f'(z) = 2(θ + ε)", 0.0),
                    "pathwise_sign_flipped": ("a flipped sign", -grad)}
        named = [(d, why) for d, (why, value) in mistakes.items() if abs(mean - value) < 0.5]
        raise Fail(f"the mean of 3000 estimates is {mean:.3f}, more than 4 standard errors ({se:.3f}) from 2θ = "
                   f"{grad:g}.", f"it looks like {named[0][1]}." if named else "", named[0][0] if named else "")
    if not var_ok:
        hint = ("variance ≈ 87: that is the score-function estimator; here use f'(z) = 2z." if per_sample > 40 else
                "mean over the n samples of 2(θ + ε_i), with fresh ε on every call.")
        raise Fail(f"per-sample variance n·Var = {per_sample:.3g}, outside the interval around 4. Hint: {hint}")
    _require_prescribed_draws(est, seed=42, per_sample=lambda z: 2 * z)
    _check_pathwise_sigma(got)
    return (f"mean of 3000 estimates {mean:.4f} within 4 SE ({se:.4f}) of 4; per-sample variance {per_sample:.2f} "
            "(4); the σ-gradient within 4 SE of 2σ = 3")


def _check_pathwise_sigma(got: dict) -> None:
    """pathwise_grad_sigma at (μ, σ) = (1, 1.5): per-sample term 2(μ + σε)ε = 2με + 2σε², mean 2σ = 3."""
    if not flag(got, "sigma.is_number"):
        raise Fail("pathwise_grad_sigma: return a Python float, e.g. tensor.mean().item().")
    same_seed = get_value(got, "sigma.same_seed.0", ()), get_value(got, "sigma.same_seed.1", ())
    if not torch.equal(*same_seed):
        raise Fail("pathwise_grad_sigma: two calls with identically seeded generators differ. Hint: draw all "
                   "randomness from the `generator` argument.", diagnosis="pathwise_generator_ignored")
    est = get_value(got, "sigma.estimates", (3000,), "the 3000 σ-gradient estimates")
    mu, sigma = 1.0, 1.5
    mean, per_sample, mean_ok, var_ok, se, grad = _mean_and_variance_test(est, [0.0, 2 * mu, 2 * sigma], 10)
    if not mean_ok:
        mistakes = {"sigma_chain_rule_missing": ("f'(z) = 2z without the chain rule's factor dz/dσ = ε", 2 * mu),
                    "sigma_path_derivative": ("dz/dσ = σ instead of ε", 2 * mu * sigma),
                    "sum_over_samples": ("the sum over samples instead of the mean", 10 * grad),
                    "pathwise_sign_flipped": ("a flipped sign", -grad)}
        named = [(d, why) for d, (why, value) in mistakes.items() if abs(mean - value) < 0.3]
        raise Fail(f"pathwise_grad_sigma: at (μ, σ) = (1, 1.5) the mean of 3000 estimates is {mean:.3f}, more than 4 "
                   f"standard errors ({se:.3f}) from 2σ = 3", f"it looks like {named[0][1]}." if named else
                   "write z = μ + σε and differentiate f(z) with respect to σ.", named[0][0] if named else "")
    if not var_ok:
        raise Fail(f"pathwise_grad_sigma: per-sample variance {per_sample:.3g}, outside the interval around its "
                   "pathwise value. Hint: differentiate f(μ + σε) with respect to σ, sample by sample.")
    gen = torch.Generator().manual_seed(43)
    torch.randn(10, generator=gen, dtype=torch.float64)  # the probe's first call
    eps = torch.stack([torch.randn(10, generator=gen, dtype=torch.float64) for _ in range(3000)])
    require(torch.allclose(est, (2 * (mu + sigma * eps) * eps).mean(1), rtol=1e-9, atol=1e-12),
            "pathwise_grad_sigma: the estimates have the right statistics but are not the generator's draws",
            "draw eps = torch.randn(n, generator=generator, dtype=torch.float64) as the docstring says.",
            "draws_not_as_prescribed")


def _check_pathwise_hidden(got: dict, want: dict) -> str:
    _check_exact(got, want, "pathwise_grad", "eps = torch.randn(n, generator=generator, dtype=torch.float64); the mean "
                 "of 2(θ + eps).")
    return "right on the hidden inputs"


def _experiment_statistics(got: dict, prefix: str, theta: float, ns: list[int], reps: int, what: str,
                           hint_mean: str, estimators: dict[str, list[float]] | None = None) -> None:
    """Each estimator's means and variances (its per-sample polynomial in ε: `estimators`, name -> coefficients;
    default the score-function and pathwise estimators) within their statistical tolerances."""
    if estimators is None:
        estimators = {"score": _score_coeffs(theta), "pathwise": _pathwise_coeffs(theta)}
    for name, coeffs in estimators.items():
        key = prefix.format(name=name)
        means = get_value(got, f"{key}.means", (len(ns),), f"the means ({name})")
        variances = get_value(got, f"{key}.variances", (len(ns),), f"the variances ({name})")
        grad, v, mu4 = gaussian_polynomial_moments(coeffs)
        for n, m, s2 in zip(ns, means.tolist(), variances.tolist(), strict=True):
            se = (v / (n * reps)) ** 0.5
            if abs(m - grad) > 4 * se:
                raise Fail(f"{what}, {name}, N={n}: a mean is more than 4 standard errors ({se:.2g}) off. "
                            f"Hint: {hint_mean.format(ex='4.1' if name == 'score' else '4.2')}")
            low, high = demo.sample_variance_interval(*demo.mean_of_n_moments(v, mu4, n), reps)
            if not low <= s2 <= high:
                ratio = s2 * n / v
                raise Fail(f"{what}, {name}, N={n}: a variance is outside its fourth-moment interval around v/N. Hint: "
                            + ("it is N times too large: is each estimate a mean over N samples?"
                               if abs(ratio / n - 1) < 0.5 else "the variance of the reps estimates, dividing by reps; "
                               "fresh samples for every repetition."))


def _check_experiment_visible(got: dict, want: dict) -> str:
    toy = get_value(got, "toy_means", (2,), "run_experiment means")
    get_value(got, "toy_vars", (2,), "run_experiment variances")
    if not torch.allclose(toy, torch.tensor([3.0, 7.0], dtype=torch.float64), rtol=1e-5, atol=1e-8):
        raise Fail("with an estimator that returns N, the means should be [3, 7]. Hint: one entry per N in ns, each the "
                    "mean over the reps estimates.")
    count = get_value(got, "count_vars", (2,), "run_experiment variances")
    if torch.allclose(count, torch.full((2,), 15 / 12 * 4 / 3, dtype=torch.float64)):
        raise Fail("the variance divides by reps - 1. Hint: divide by reps like np.var: unbiased=False.",
                   diagnosis="unbiased_variance")
    if not torch.allclose(count, torch.full((2,), 15 / 12, dtype=torch.float64), rtol=1e-5, atol=1e-8):
        raise Fail("with estimates 0, 1, 2, 3 the variances should be 1.25. Hint: the variance (not the standard "
                    "deviation) of the reps estimates, dividing by reps.")
    renamed = {k.replace("score_function_grad", "score").replace("pathwise_grad", "pathwise"): v for k, v in got.items()}
    _experiment_statistics(renamed, "lecture.{name}", 2.0, [10, 100, 1_000, 10_000, 100_000], 100,
                           "the lecture's experiment", "it uses your estimator from Exercise {ex}: does it pass its check?")
    return "every mean within 4 SE of 4 and every variance within its fourth-moment interval"


def _check_experiment_hidden(got: dict, want: dict) -> str:
    # The exact toy case: an estimator cycling through 1, 2, 4, 8, 16 with reps = 5. Dividing by reps the variance is
    # exactly 29.76; dividing by reps - 1 it is 37.2 (a 25% difference no statistical test below can miss).
    values = torch.tensor(probes.TOY_CYCLE, dtype=torch.float64)
    toy = get_value(got, "toy_cycle_vars", (2,), "run_experiment's variances on a toy estimator")
    if torch.allclose(toy, torch.full((2,), values.var(unbiased=True).item(), dtype=torch.float64)):
        raise Fail("the variance divides by reps - 1. Hint: divide by reps like np.var: unbiased=False.",
                   diagnosis="unbiased_variance")
    if not torch.allclose(toy, torch.full((2,), values.var(unbiased=False).item(), dtype=torch.float64),
                          rtol=1e-9, atol=1e-12):
        raise Fail("wrong variances for a toy estimator with known values. Hint: the variance (not the standard "
                   "deviation) of the reps estimates, dividing by reps.")
    theta = 1.5
    toys = {"cubic": [theta**3, 3 * theta**2, 3 * theta, 1.0], "shifted_square": [theta, 0.0, 1.0]}  # (θ+ε)³, θ+ε²
    _experiment_statistics(got, "{name}", theta, [10, 100, 1000], 200, "θ = 1.5, 200 repetitions",
                           "one entry per N, the mean over the reps estimates.", toys)
    return "right on the hidden inputs"


def _check_variance_visible(got: dict, want: dict) -> str:
    mc_gen = torch.Generator().manual_seed(7)
    eps = torch.randn(400_000, generator=mc_gen, dtype=torch.float64)
    values = {}
    for name, expected, second_moment, terms in [
            ("score_function_variance", 87.0, 103.0, (1 + eps) ** 2 * eps),
            ("pathwise_variance", 4.0, 20.0, 2 * (1 + eps))]:
        at_2 = get_value(got, f"{name}.at_2", (), f"{name}(2)").item()
        if abs(at_2 - second_moment) < 1e-9:
            raise Fail(f"{name}(2) is {at_2:g}, the second moment E[g²]. Hint: subtract the squared mean (2θ)².",
                       diagnosis="second_moment_for_variance")
        if not math.isclose(at_2, expected, rel_tol=1e-9):
            raise Fail(f"{name}(2) is {at_2:g}, expected {expected:g}.")
        values[name] = at_2
        # θ = 1 against a Monte Carlo estimate from 400,000 samples: within 4 standard errors sqrt((m4 - v²)/M) of the
        # sample variance, estimated from the sample's own fourth moment (as the check cell).
        v_hat = terms.var().item()
        se = (((terms - terms.mean()) ** 4).mean().item() - v_hat**2) ** 0.5 / len(terms) ** 0.5
        at_1 = get_value(got, f"{name}.at_1", (), f"{name}(1)").item()
        if not v_hat - 4 * se <= at_1 <= v_hat + 4 * se:
            raise Fail(f"{name}(1) = {at_1:g} is not within 4 standard errors of the Monte Carlo value {v_hat:.3f} "
                        f"± {se:.3f}. Hint: the formula must hold for every θ, not only θ = 2.")
    return "87 and 4 at θ = 2 (ratio 21.75), and right at θ = 1"


def _check_variance_hidden(got: dict, want: dict) -> str:
    for name, coeffs in [("score_function_variance", _score_coeffs), ("pathwise_variance", _pathwise_coeffs)]:
        expected = torch.tensor([gaussian_polynomial_moments(coeffs(t))[1] for t in HIDDEN_THETAS],
                                dtype=torch.float64)
        value = get_value(got, name, (len(HIDDEN_THETAS),), name)
        if not torch.allclose(value, expected, rtol=1e-9, atol=1e-12):
            raise Fail(f"{name} is wrong at other θ. Hint: derive Var[(θ+ε)²ε] and Var[2(θ+ε)] for all θ.")
    return "right on the hidden inputs"


def _check_baseline_visible(got: dict, want: dict) -> str:
    b0, plain = get_value(got, "b0", ()).item(), get_value(got, "plain", ()).item()
    if not math.isclose(b0, plain, rel_tol=1e-12, abs_tol=1e-15):
        raise Fail("with b = 0 it must equal score_function_grad on the same seed. Hint: draw the same way.",
                   diagnosis="baseline_changes_draws")
    for b, v_expected in [(5.0, 42.0), (7.0, 38.0)]:
        est = get_value(got, f"estimates_b{b:g}", (4000,), f"the 4000 estimates with b = {b:g}")
        mean, per_sample, mean_ok, var_ok, se, _ = _mean_and_variance_test(est, [0.0, 4.0 - b, 4.0, 1.0], 20)
        if not mean_ok:
            raise Fail(f"b = {b:g}: mean {mean:.3f} is more than 4 SE ({se:.3f}) from 4: the baseline made it biased. "
                       "Hint: multiply (f(z) - b) by the score (z - θ); do not subtract b from the product.",
                       diagnosis="baseline_subtracted_from_product")
        if not var_ok:
            raise Fail(f"per-sample variance with b = {b:g} is {per_sample:.3g}, outside the interval around the "
                       f"closed form {v_expected:g}. Hint: subtract the baseline from f(z), not add it.",
                       diagnosis="baseline_added")
    fz, score = probes.baseline_samples()
    b_hat = get_value(got, "optimal_baseline", (), "optimal_baseline").item()
    if abs(b_hat - fz.mean().item()) < 1e-9:
        raise Fail("optimal_baseline returned the mean of f, the natural baseline, not the minimiser. Hint: expand the "
                   "second moment of (f - b)·s in b and set its derivative to zero.", diagnosis="baseline_mean_of_f")
    if not math.isclose(b_hat, ((fz * score**2).mean() / (score**2).mean()).item(), rel_tol=1e-9):
        raise Fail("optimal_baseline does not minimise the estimated variance on fixed samples. Hint: the variance is "
                   "a quadratic in b (the score has mean zero): find its minimiser.")
    for label in ("plain", "graph"):
        shape = tuple(get_value(got, f"reinforce_shape_{label}").tolist())
        if shape != ():
            raise Fail(f"reinforce_surrogate_loss returned shape {shape}, expected a 0-d tensor (a scalar).")
    eps = torch.randn(1000, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    z = 2.0 + eps
    expected = (z**2 * (z - 2.0)).mean().item()
    if not math.isclose(get_value(got, "reinforce_grad_plain", ()).item(), expected, rel_tol=1e-9):
        raise Fail("the REINFORCE surrogate's gradient is not the score-function estimate. Hint: the mean (not sum) "
                   "over samples of log_prob(z) times f(z) held constant.", diagnosis="surrogate_sum_or_no_detach")
    if not math.isclose(get_value(got, "reinforce_grad_graph", ()).item(), expected, rel_tol=1e-9):
        raise Fail("on samples that carry a graph, the REINFORCE surrogate differentiates through z. Hint: the samples "
                   "are constants for the score function: use z.detach() (and f(z).detach()).",
                   diagnosis="surrogate_samples_not_detached")
    zb = torch.tensor(probes.BERNOULLI_DRAWS, dtype=torch.float64)
    p = torch.sigmoid(torch.tensor(0.3, dtype=torch.float64))
    if not math.isclose(get_value(got, "reinforce_grad_bernoulli", ()).item(),
                        ((zb - 0.45) ** 2 * (zb - p)).mean().item(), rel_tol=1e-9):
        raise Fail("the REINFORCE surrogate is wrong for a Bernoulli distribution. Hint: only dist.log_prob: the same "
                   "code works for every distribution.", diagnosis="surrogate_not_generic")
    samples = get_value(got, "pathwise_samples", (1000,), "pathwise_surrogate_loss samples")
    if "pathwise_grad_mu" not in got:  # the probe differentiates only samples that carry a graph
        raise Fail("the pathwise samples carry no graph back to the parameters. Hint: use .rsample(), not .sample().",
                   diagnosis="sample_for_rsample")
    if not math.isclose(get_value(got, "pathwise_grad_mu", ()).item(), 1.0, rel_tol=1e-9) or not math.isclose(
            get_value(got, "pathwise_grad_sigma", ()).item(), ((samples - 0.7) / 1.3).mean().item(), rel_tol=1e-8,
            abs_tol=1e-10):
        raise Fail("the pathwise surrogate's gradients are wrong for f(z) = z. Hint: the mean (not sum) of f(z) over "
                   "z = dist.rsample((n,)).")
    # N(0.7, 1.3²) draws: the mean within 4 standard errors, the variance within 5 of its own (normal sample).
    if abs(samples.mean().item() - 0.7) > 4 * 1.3 / 1000**0.5 or abs(samples.var().item() / 1.69 - 1.0) > 5 * (
            2 / 1000) ** 0.5:
        raise Fail("the pathwise samples do not look like draws of dist. Hint: z = dist.rsample((n,)).")
    return "unbiased with b = 5 and 7 (variances 42 and 38); optimal baseline; both surrogates' gradients match"


def _check_baseline_hidden(got: dict, want: dict) -> str:
    for b in (1.3, -2.0):
        name = f"baseline_{b}"
        if not math.isclose(get_value(got, name, ()).item(), want[name].item(), rel_tol=1e-9, abs_tol=1e-12):
            raise Fail("score_function_grad_baseline is wrong at another θ and b. Hint: the mean of (f(z) - b)(z - θ), "
                       "drawn like score_function_grad.")
    for k, (fz, score) in enumerate(probes.hidden_baseline_samples()):
        reference = ((fz * score**2).mean() / (score**2).mean()).item()
        if not math.isclose(get_value(got, f"optimal_baseline_{k}", ()).item(), reference, rel_tol=1e-9):
            raise Fail("optimal_baseline is wrong on other samples. Hint: derive b* from the second moment of "
                       "(f - b)·s.")
    name = "reinforce_grad_graph_samples"
    if not math.isclose(get_value(got, name, ()).item(), want[name].item(), rel_tol=1e-9, abs_tol=1e-12):
        raise Fail("the REINFORCE surrogate differentiates through samples that carry a graph. Hint: detach the samples "
                   "(and f(z)) inside the surrogate.", diagnosis="surrogate_samples_not_detached")
    z = torch.tensor(probes.EXPONENTIAL_DRAWS, dtype=torch.float64)
    if not math.isclose(get_value(got, "reinforce_grad_exponential", ()).item(),
                        (torch.sin(z) * (1 / 1.7 - z)).mean().item(), rel_tol=1e-9):
        raise Fail("the REINFORCE surrogate is wrong for an exponential distribution. Hint: use dist.log_prob only.",
                   diagnosis="surrogate_not_generic")
    samples = get_value(got, "pathwise_samples", (300,), "pathwise_surrogate_loss samples")
    if not math.isclose(get_value(got, "pathwise_grad", ()).item(), (2 * samples).mean().item(), rel_tol=1e-9):
        raise Fail("the pathwise surrogate's gradient at θ = -0.9 is not the pathwise estimate on its samples.")
    # The samples' mean within 4 standard errors (1/sqrt(300)) of θ = -0.9.
    if abs(samples.mean().item() + 0.9) > 4 / 300**0.5:
        raise Fail("the pathwise samples do not look like N(θ, 1) draws.")
    return "right on the hidden inputs"


def _check_bandit_visible(got: dict, want: dict) -> str:
    small = get_value(got, "small", (4,), "bandit_policy_gradient's result")
    if abs(small.sum().item()) > 1e-9:
        raise Fail("the components do not sum to zero. Hint: ∇ log softmax(θ)[a] = onehot(a) - π: did you forget the "
                    "-π term?")
    pi = torch.softmax(torch.tensor(BANDIT_LOGITS, dtype=torch.float64), 0)
    mu = torch.tensor(BANDIT_MU, dtype=torch.float64)
    # One fixed batch with b = 0.6: the exact value (an unbiased but wrong use of the baseline passes every
    # statistical test below, so it is caught here).
    arms = torch.tensor(probes.BANDIT_DRAW[0])
    rewards = torch.tensor(probes.BANDIT_DRAW[1], dtype=torch.float64)
    one_hot = torch.nn.functional.one_hot(arms, 4).double()
    reference = ((rewards - 0.6)[:, None] * (one_hot - pi)).mean(0)
    fixed = get_value(got, "fixed_b06", (4,), "bandit_policy_gradient on a fixed batch")
    if not torch.allclose(fixed, reference, rtol=1e-9, atol=1e-12):
        if torch.allclose(fixed, get_value(got, "fixed_rewards_plus_b", (4,)), rtol=1e-9, atol=1e-12):
            raise Fail("b = 0.6 on a fixed batch: the baseline is added to the rewards. Hint: subtract it: r_i - b.",
                       diagnosis="bandit_baseline_added")
        if torch.allclose(fixed, get_value(got, "fixed_rewards_no_b", (4,)), rtol=1e-9, atol=1e-12):
            raise Fail("b = 0.6 on a fixed batch: the baseline is ignored. Hint: use r_i - b.",
                       diagnosis="bandit_baseline_ignored")
        if torch.allclose(fixed, -reference, rtol=1e-9, atol=1e-12):
            raise Fail("b = 0.6 on a fixed batch: the sign is flipped.")
        if torch.allclose(fixed, len(arms) * reference, rtol=1e-9, atol=1e-12):
            raise Fail("b = 0.6 on a fixed batch: the values are 6 times too large. Hint: mean over the batch, not sum.")
        raise Fail("wrong values on a fixed batch with b = 0.6. Hint: the mean over the batch of (r_i - b)(onehot(a_i) "
                   "- π).")
    exact = pi * (mu - pi @ mu)
    for b in (0.0, 0.55):
        batches = get_value(got, f"batches_b{b:g}", (50, 4), "the 50 batch estimates")
        mean, se = batches.mean(0), batches.std(0) / 50**0.5
        if torch.any((mean - exact).abs() > 4.5 * se):
            hint = ("the sign is flipped." if torch.allclose(mean, -exact, atol=5 * se.max().item()) else
                    "it is 400 times too large: mean over the batch, not sum." if torch.allclose(mean / 400, exact,
                                                                                                  atol=0.01)
                    else "mean over the batch of (r_i - b)(onehot(a_i) - softmax(logits)).")
            raise Fail(f"b = {b}: the mean of 50 batch estimates is more than 4.5 standard errors from the exact "
                        f"gradient. Hint: {hint}")
    return "unbiased with and without a baseline (4.5 SE)"


def _check_bandit_hidden(got: dict, want: dict) -> str:
    require_all_close(got, want, rtol=1e-9, atol=1e-12, hidden=True,
                      hints=dict.fromkeys(want, "the mean over the batch of (r_i - b)(onehot(a_i) - π)."))
    return "right on the hidden inputs"


def _check_gumbel_visible(got: dict, want: dict) -> str:
    y = got.get("y")
    if y is None or tuple(y.shape) != (20_000, 4):
        raise Fail(f"gumbel_softmax_sample has shape {None if y is None else tuple(y.shape)}, expected (20000, 4). "
                    "Hint: one row of K probabilities per sample.")
    y = y.double()
    if not torch.allclose(y.sum(1), torch.ones(20_000, dtype=torch.float64), rtol=1e-9, atol=1e-8):
        raise Fail("the rows do not sum to 1. Hint: softmax over the categories (dim=-1), not over the samples.",
                   diagnosis="softmax_over_samples")
    if not flag(got, "y_has_graph"):
        raise Fail("the samples carry no graph back to the logits. Hint: do not detach or use argmax.",
                   diagnosis="relaxed_sample_detached")
    counts = torch.bincount(y.argmax(1), minlength=4).double()
    expected = 20_000 * torch.softmax(torch.tensor(GUMBEL_LOGITS, dtype=torch.float64), 0)
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    if not 0 <= chi2 <= 25:
        raise Fail(f"the Gumbel-max frequencies do not follow softmax(logits): chi-square {chi2:.1f} > 25 (3 d.o.f.). "
                    "Hint: the Gumbel noise is -log(-log u) with u uniform on (0, 1); added to the logits.")
    sharp = get_value(got, "sharp", (2000, 4)).max(1).values.mean().item()
    smooth = get_value(got, "smooth", (2000, 4)).max(1).values.max().item()
    if sharp < 0.9 or smooth > 0.5:
        raise Fail(f"mean max at τ = 0.05 is {sharp:.2f} (want > 0.9), largest max at τ = 20 is {smooth:.2f} "
                    "(want < 0.5). Hint: divide (logits + g) by τ; do not multiply.", diagnosis="temperature_multiplied")
    if flag(got, "no_gradient_flow"):
        raise Fail("gumbel_softmax_grad: no gradient flows from the loss back to the logits. Hint: keep the relaxed "
                   "samples in the graph: no .detach(), argmax or one-hot inside.", diagnosis="gumbel_no_gradient_flow")
    g_const = get_value(got, "grad_constant_c", (4,), "gumbel_softmax_grad")
    if not torch.allclose(g_const, torch.zeros(4, dtype=torch.float64), atol=1e-10):
        raise Fail("for constant c the gradient must be 0. Hint: differentiate the mean of c · y through the relaxed "
                    "samples y.")
    grads_e1 = get_value(got, "grads_e1", (20, 4))
    if torch.all(grads_e1 == 0):
        raise Fail("gumbel_softmax_grad is exactly zero for a non-constant c: no gradient flows through the samples. "
                   "Hint: differentiate through the relaxed softmax samples (no detach, argmax or one-hot).",
                   diagnosis="gumbel_no_gradient_flow")
    if grads_e1[:, 1].mean().item() <= 0:
        raise Fail("raising θ_1 should raise E[y_1], but the estimated gradient is not positive. Hint: the gradient of "
                    "+mean(c · y), not its negative.")
    return "simplex, Gumbel-max frequencies, temperature and gradient sanity"


def _reference_gumbel(tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """20,000 reference relaxed samples and their per-sample gradients of c·y (the softmax Jacobian over τ)."""
    logits = torch.tensor(HIDDEN_LOGITS, dtype=torch.float64)
    c = torch.tensor(HIDDEN_C, dtype=torch.float64)
    u = torch.rand(20_000, 5, generator=torch.Generator().manual_seed(31), dtype=torch.float64).clamp_min(
        torch.finfo(torch.float64).tiny)
    y = torch.softmax((logits - torch.log(-torch.log(u))) / tau, dim=-1)
    return y, y * (c - (y @ c)[:, None]) / tau


def _check_gumbel_hidden(got: dict, want: dict) -> str:
    for tau in (0.3, 1.5):
        y_ref, g_ref = _reference_gumbel(tau)
        y = get_value(got, f"tau={tau}.y", (20_000, 5), f"gumbel_softmax_sample (τ = {tau})")
        tol_y = 4.5 * (y_ref.var(0) / 20_000 + y.var(0) / 20_000).sqrt()
        if torch.any((y.mean(0) - y_ref.mean(0)).abs() > tol_y):
            raise Fail(f"τ = {tau}: the mean relaxed sample differs from the reference beyond 4.5 standard errors.")
        g = get_value(got, f"tau={tau}.grads", (200, 5), f"gumbel_softmax_grad (τ = {tau})")
        tol_g = 4.5 * (g_ref.var(0) / 20_000 + g.var(0) / 200).sqrt()
        if torch.any((g.mean(0) - g_ref.mean(0)).abs() > tol_g):
            raise Fail(f"τ = {tau}: the mean gradient differs from the reference beyond 4.5 standard errors.")
    return "right on the hidden inputs"


JUDGES = {
    "ex4_1_visible": criteria("score_function_grad", _check_score_visible),
    "ex4_1_hidden": criteria("score_function_grad", _check_score_hidden),
    "ex4_2_visible": criteria("pathwise_grad", _check_pathwise_visible),
    "ex4_2_hidden": criteria("pathwise_grad", _check_pathwise_hidden),
    "ex4_3_visible": criteria("run_experiment", _check_experiment_visible),
    "ex4_3_hidden": criteria("run_experiment", _check_experiment_hidden),
    "ex4_4_visible": criteria("closed-form variances", _check_variance_visible),
    "ex4_4_hidden": criteria("closed-form variances", _check_variance_hidden),
    "ex4_5_visible": criteria("baselines and surrogates", _check_baseline_visible),
    "ex4_5_hidden": criteria("baselines and surrogates", _check_baseline_hidden),
    "ex4_6_visible": criteria("bandit_policy_gradient", _check_bandit_visible),
    "ex4_6_hidden": criteria("bandit_policy_gradient", _check_bandit_hidden),
    "ex4_7_visible": criteria("gumbel_softmax", _check_gumbel_visible),
    "ex4_7_hidden": criteria("gumbel_softmax", _check_gumbel_hidden),
}

