"""Hidden tests for 04_gradient_estimators (instructor material: never released to students).

PROBES run in the student's kernel and only return tensors (float64: a Python float would be stored as float32);
JUDGES run in the trusted grader and never call student code.

The estimators are stochastic. Where the notebook prescribes the exact random calls (eps = torch.randn(n,
generator=generator, dtype=torch.float64), as the docstrings of 4.1, 4.2 and 4.5 say) the hidden parts compare the
student's estimates on seeded generators with the solution's, to float64 rounding, as the hidden check cells do.
Everything else is judged against closed forms with tolerances derived from the statistics, as in the check cells:

* z ~ N(θ, 1), f(z) = z²: both estimators have mean 2θ; the per-sample terms are polynomials in ε ~ N(0, 1),
  (θ+ε)²ε (score function) and 2(θ+ε) (pathwise), whose variance and fourth central moment are exact
  (`utils.estimators_demo.gaussian_polynomial_moments`): at θ = 2 the per-sample variances are 87 and 4.
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

from instructor.grading.judge import Fail, close, criteria, get_value
from utils import estimators_demo as demo


def _f64(value) -> torch.Tensor:
    return torch.tensor(float(value), dtype=torch.float64)


def _estimates(fn, reps: int) -> torch.Tensor:
    return torch.tensor([float(fn()) for _ in range(reps)], dtype=torch.float64)


# ---- probes ---------------------------------------------------------------------------------------------------------
def probe_score_visible(ns: dict) -> dict:
    """The visible check's calls: a first estimate (its type), two equally seeded calls, 3000 estimates n = 10, θ = 2."""
    sf = ns["score_function_grad"]
    gen = torch.Generator().manual_seed(41)
    first = sf(2.0, 10, gen)
    a = sf(2.0, 10, torch.Generator().manual_seed(5))
    b = sf(2.0, 10, torch.Generator().manual_seed(5))
    return {"is_number": isinstance(first, (float, int)), "same_seed_equal": bool(a == b),
            "estimates": _estimates(lambda: sf(2.0, 10, gen), 3000)}


def _sf_hidden_cases():
    return [(-1.3, 7, 123), (0.4, 1, 9), (3.1, 5000, 77), (0.0, 2, 5)]


def probe_score_hidden(ns: dict) -> dict:
    """Exact reproduction on seeded generators (other θ, n = 1 included), and unbiasedness at θ = -0.7."""
    sf = ns["score_function_grad"]
    out = {f"theta={t},n={n}": _f64(sf(t, n, torch.Generator().manual_seed(s))) for t, n, s in _sf_hidden_cases()}
    gen = torch.Generator().manual_seed(2718)
    return {"exact": out, "estimates": _estimates(lambda: sf(-0.7, 20, gen), 2000)}


def probe_pathwise_visible(ns: dict) -> dict:
    pw = ns["pathwise_grad"]
    gen = torch.Generator().manual_seed(42)
    first = pw(2.0, 10, gen)
    a = pw(2.0, 3, torch.Generator().manual_seed(5))
    b = pw(2.0, 3, torch.Generator().manual_seed(5))
    return {"is_number": isinstance(first, (float, int)), "same_seed_equal": bool(a == b),
            "estimates": _estimates(lambda: pw(2.0, 10, gen), 3000)}


def probe_pathwise_hidden(ns: dict) -> dict:
    pw = ns["pathwise_grad"]
    cases = [(-0.8, 6, 321), (1.7, 1, 8), (0.0, 4000, 66), (-2.5, 3, 4)]
    return {f"theta={t},n={n}": _f64(pw(t, n, torch.Generator().manual_seed(s))) for t, n, s in cases}


def _lecture_experiments(ns: dict) -> dict:
    run = ns["run_experiment"]
    out = {}
    for name in ("score_function_grad", "pathwise_grad"):
        means, variances = run(ns[name], 2.0, [10, 100, 1_000, 10_000, 100_000], 100, torch.Generator().manual_seed(2024))
        out[name] = {"means": torch.as_tensor(means, dtype=torch.float64),
                     "variances": torch.as_tensor(variances, dtype=torch.float64)}
    return out


def probe_experiment_visible(ns: dict) -> dict:
    """Toy estimators with known answers, then the lecture's experiment with the student's own estimators 4.1, 4.2."""
    run = ns["run_experiment"]
    toy_means, toy_vars = run(lambda theta, n, generator: float(n), 2.0, [3, 7], 5, torch.Generator())
    counter = iter(range(10**6))
    _, count_vars = run(lambda theta, n, generator: float(next(counter) % 4), 2.0, [3, 7], 4, torch.Generator())
    return {"toy_means": toy_means, "toy_vars": toy_vars, "count_vars": count_vars, "lecture": _lecture_experiments(ns)}


def _ref_sf(theta, n, generator):
    z = theta + torch.randn(n, generator=generator, dtype=torch.float64)
    return (z**2 * (z - theta)).mean().item()


def _ref_pw(theta, n, generator):
    return (2 * (theta + torch.randn(n, generator=generator, dtype=torch.float64))).mean().item()


def probe_experiment_hidden(ns: dict) -> dict:
    """run_experiment with reference estimators (only run_experiment is graded here) at θ = 1.5, 200 repetitions."""
    run = ns["run_experiment"]
    out = {}
    for name, est in [("score", _ref_sf), ("pathwise", _ref_pw)]:
        means, variances = run(est, 1.5, [10, 100, 1000], 200, torch.Generator().manual_seed(99))
        out[name] = {"means": means, "variances": variances}
    return out


def probe_variance_visible(ns: dict) -> dict:
    return {name: {"at_2": _f64(ns[name](2.0)), "at_1": _f64(ns[name](1.0))}
            for name in ("score_function_variance", "pathwise_variance")}


HIDDEN_THETAS = [-1.7, 0.0, 0.6, 3.3, -4.2]


def probe_variance_hidden(ns: dict) -> dict:
    return {name: torch.tensor([float(ns[name](t)) for t in HIDDEN_THETAS], dtype=torch.float64)
            for name in ("score_function_variance", "pathwise_variance")}


def probe_baseline_visible(ns: dict) -> dict:
    sfb = ns["score_function_grad_baseline"]
    out = {"b0": _f64(sfb(2.0, 50, torch.Generator().manual_seed(3), 0.0)),
           "plain": _f64(ns["score_function_grad"](2.0, 50, torch.Generator().manual_seed(3)))}
    gen = torch.Generator().manual_seed(11)
    for b in (5.0, 7.0):
        out[f"estimates_b{b:g}"] = _estimates(lambda b=b: sfb(2.0, 20, gen, b), 4000)
    theta = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    z_plain = 2.0 + torch.randn(1000, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    loss = ns["reinforce_surrogate_loss"](theta, z_plain.clone())
    out["reinforce_shape"] = torch.tensor(list(loss.shape), dtype=torch.int64)
    if loss.shape == ():
        (out["reinforce_grad"],) = torch.autograd.grad(loss, theta)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        loss, z_path = ns["pathwise_surrogate_loss"](theta, 1000)
    out["pathwise_samples"] = z_path
    out["pathwise_has_graph"] = bool(z_path.requires_grad)
    if z_path.requires_grad and loss.shape == ():
        (out["pathwise_grad"],) = torch.autograd.grad(loss, theta)
    return out


def probe_baseline_hidden(ns: dict) -> dict:
    sfb = ns["score_function_grad_baseline"]
    out = {f"baseline_{b}": _f64(sfb(-0.9, 37, torch.Generator().manual_seed(s), b)) for b, s in [(1.3, 21), (-2.0, 22)]}
    theta = torch.tensor(-0.9, dtype=torch.float64, requires_grad=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(23)
        z_graph = torch.distributions.Normal(theta, 1.0).rsample((500,))
    (out["reinforce_grad_graph_samples"],) = torch.autograd.grad(ns["reinforce_surrogate_loss"](theta, z_graph), theta)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(24)
        loss, z_path = ns["pathwise_surrogate_loss"](theta, 300)
    (out["pathwise_grad"],) = torch.autograd.grad(loss, theta)
    out["pathwise_samples"] = z_path
    return out


BANDIT_LOGITS = [0.3, -0.5, 1.0, 0.0]
BANDIT_MU = [0.2, 0.9, 0.5, 0.6]


def probe_bandit_visible(ns: dict) -> dict:
    grad = ns["bandit_policy_gradient"]
    logits = torch.tensor(BANDIT_LOGITS, dtype=torch.float64)
    mu = torch.tensor(BANDIT_MU, dtype=torch.float64)
    pi = torch.softmax(logits, 0)
    out = {"small": grad(logits.clone(), torch.tensor([0, 2, 2]), torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64), 0.0)}
    gen = torch.Generator().manual_seed(8)
    for b in (0.0, 0.55):
        batches = []
        for _ in range(50):
            arms = torch.multinomial(pi, 400, replacement=True, generator=gen)
            rewards = (torch.rand(400, generator=gen, dtype=torch.float64) < mu[arms]).double()
            batches.append(torch.as_tensor(grad(logits.clone(), arms, rewards, b), dtype=torch.float64))
        out[f"batches_b{b:g}"] = torch.stack(batches)
    return out


def probe_bandit_hidden(ns: dict) -> dict:
    grad = ns["bandit_policy_gradient"]
    logits = torch.tensor([0.7, -1.2, 0.1, 0.4, -0.3], dtype=torch.float64)
    arms = torch.tensor([4, 0, 0, 2, 1, 3, 0])
    rewards = torch.tensor([0.3, 1.5, -0.2, 0.9, 2.0, 0.0, 1.1], dtype=torch.float64)
    out = {f"b={b}": grad(logits.clone(), arms.clone(), rewards.clone(), b) for b in (0.0, 0.8)}
    out["one_play"] = grad(logits.clone(), torch.tensor([3]), torch.tensor([2.0], dtype=torch.float64), 0.5)
    return out


GUMBEL_LOGITS = [0.5, -0.3, 1.2, 0.0]


def probe_gumbel_visible(ns: dict) -> dict:
    sample, grad = ns["gumbel_softmax_sample"], ns["gumbel_softmax_grad"]
    logits = torch.tensor(GUMBEL_LOGITS, dtype=torch.float64)
    gen = torch.Generator().manual_seed(17)
    y = sample(logits.clone().requires_grad_(True), 1.0, 20_000, gen)
    out = {"y": y, "y_has_graph": bool(y.requires_grad)}
    if not y.requires_grad:  # the judge stops there; the gradient calls below would raise
        return out
    out["sharp"] = sample(logits.clone(), 0.05, 2000, gen)
    out["smooth"] = sample(logits.clone(), 20.0, 2000, gen)
    out["grad_constant_c"] = grad(logits.clone(), torch.full((4,), 3.0, dtype=torch.float64), 0.5, 100, gen)
    e1 = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    out["grads_e1"] = torch.stack([torch.as_tensor(grad(logits.clone(), e1, 0.5, 200, gen)) for _ in range(20)])
    return out


HIDDEN_LOGITS = [-0.4, 0.9, 0.2, 0.6, -1.0]
HIDDEN_C = [1.0, -0.5, 2.0, 0.3, 0.8]


def probe_gumbel_hidden(ns: dict) -> dict:
    sample, grad = ns["gumbel_softmax_sample"], ns["gumbel_softmax_grad"]
    logits = torch.tensor(HIDDEN_LOGITS, dtype=torch.float64)
    c = torch.tensor(HIDDEN_C, dtype=torch.float64)
    out = {}
    for tau in (0.3, 1.5):
        y = sample(logits.clone(), tau, 20_000, torch.Generator().manual_seed(32))
        gen = torch.Generator().manual_seed(33)
        out[f"tau={tau}"] = {"y": y, "grads": torch.stack([torch.as_tensor(grad(logits.clone(), c.clone(), tau, 100, gen))
                                                          for _ in range(200)])}
    return out


PROBES = {
    "ex4_1_visible": probe_score_visible,
    "ex4_1_hidden": probe_score_hidden,
    "ex4_2_visible": probe_pathwise_visible,
    "ex4_2_hidden": probe_pathwise_hidden,
    "ex4_3_visible": probe_experiment_visible,
    "ex4_3_hidden": probe_experiment_hidden,
    "ex4_4_visible": probe_variance_visible,
    "ex4_4_hidden": probe_variance_hidden,
    "ex4_5_visible": probe_baseline_visible,
    "ex4_5_hidden": probe_baseline_hidden,
    "ex4_6_visible": probe_bandit_visible,
    "ex4_6_hidden": probe_bandit_hidden,
    "ex4_7_visible": probe_gumbel_visible,
    "ex4_7_hidden": probe_gumbel_hidden,
}


# ---- judges (trusted) -----------------------------------------------------------------------------------------------
def _flag(got: dict, name: str) -> bool:
    value = got.get(name)
    return value is not None and bool(value.item())


def _score_coeffs(theta: float) -> list[float]:
    return [0.0, theta**2, 2 * theta, 1.0]  # (θ+ε)²ε = θ²ε + 2θε² + ε³


def _pathwise_coeffs(theta: float) -> list[float]:
    return [2 * theta, 2.0]  # 2(θ+ε)


def _mean_and_variance_test(estimates: torch.Tensor, coeffs: list[float], n: int) -> tuple[float, float, bool, bool,
                                                                                               float, float]:
    """(mean, per-sample variance n·s², mean within 4 SE, n·s² within its fourth-moment interval, SE, true mean)."""
    grad, v, mu4 = demo.gaussian_polynomial_moments(coeffs)
    reps = len(estimates)
    se = (v / (n * reps)) ** 0.5
    mean = estimates.mean().item()
    low, high = demo.sample_variance_interval(*demo.mean_of_n_moments(v, mu4, n), reps)
    s2 = estimates.var(unbiased=False).item()
    return mean, n * s2, abs(mean - grad) <= 4 * se, low <= s2 <= high, se, grad


def _check_score_visible(got: dict, want: dict) -> str:
    if not _flag(got, "is_number"):
        raise Fail("return a Python float, e.g. tensor.mean().item().")
    if not _flag(got, "same_seed_equal"):
        raise Fail("two calls with identically seeded generators differ. Hint: draw all randomness from the "
                    "`generator` argument (torch.randn(..., generator=generator)).")
    est = get_value(got, "estimates", (3000,), "the 3000 estimates")
    if torch.unique(est).numel() < 1500:
        raise Fail("repeated calls return (almost) the same value. Hint: draw fresh samples from the generator on every "
                    "call; do not re-seed it inside the function.")
    mean, per_sample, mean_ok, var_ok, se, grad = _mean_and_variance_test(est, _score_coeffs(2.0), 10)
    if not mean_ok:
        mistakes = {"the sum over samples instead of the mean": 10 * grad,
                    "E[f(z)] = θ²+1, the score factor (z-θ) is missing": 5.0,
                    "a flipped sign of the score: use +(z-θ), the derivative of -(z-θ)²/2": -grad,
                    "f(z)·z: the score of N(θ,1) is (z-θ), not z": 8.0 + 6.0,
                    "zero: the score alone has mean zero; multiply it by f(z)": 0.0}
        named = [why for why, value in mistakes.items() if abs(mean - value) < 4 * se * max(1.0, abs(value) / 4)]
        raise Fail(f"the mean of 3000 estimates is {mean:.3f}, more than 4 standard errors ({se:.3f}) from the true "
                    f"gradient 2θ = {grad:g}. Hint: " + (f"it looks like {named[0]}." if named else
                                                         "the estimator is biased: mean of f(z_i)·(z_i - θ)."))
    if not var_ok:
        hint = ("variance ≈ 4: that is the pathwise estimator; here use f(z)·(z-θ)." if abs(per_sample - 4) < 1 else
                "did you mean over the n samples (not sum), with z = θ + eps and the score (z - θ)?")
        raise Fail(f"per-sample variance n·Var = {per_sample:.3g}, outside the interval around 87. Hint: {hint}")
    return f"mean of 3000 estimates {mean:.3f} within 4 SE ({se:.3f}) of 4; per-sample variance {per_sample:.1f} (87)"


def _check_exact(got: dict, want: dict, what: str, hint: str) -> None:
    verdict = close(rtol=1e-9, atol=1e-12, hidden=True)(got, want)
    if not verdict.passed:
        raise Fail(f"{what} on seeded generators differs from the estimator's definition "
                    f"({verdict.message.removeprefix('✗ ')}). Hint: {hint}")


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
    if not _flag(got, "is_number"):
        raise Fail("return a Python float, e.g. tensor.mean().item().")
    if not _flag(got, "same_seed_equal"):
        raise Fail("two calls with identically seeded generators differ. Hint: draw all randomness from the "
                    "`generator` argument.")
    est = get_value(got, "estimates", (3000,), "the 3000 estimates")
    mean, per_sample, mean_ok, var_ok, se, grad = _mean_and_variance_test(est, _pathwise_coeffs(2.0), 10)
    if not mean_ok and 40 < per_sample < 200:
        raise Fail(f"the mean is {mean:.3f} and the per-sample variance {per_sample:.1f}, far above 4. Hint: variance "
                    "≈ 87: that is the score-function estimator; here use f'(z) = 2z along the path z = θ + ε.")
    if not mean_ok:
        mistakes = {"the sum over samples instead of the mean": 10 * grad,
                    "E[f(z)] = θ²+1: differentiate f along the path, f'(z) = 2z": 5.0,
                    "z without the factor 2: f'(z) = 2z": 2.0,
                    "2ε: the path is z = θ + ε, so f'(z) = 2(θ + ε)": 0.0,
                    "a flipped sign": -grad}
        named = [why for why, value in mistakes.items() if abs(mean - value) < 0.5]
        raise Fail(f"the mean of 3000 estimates is {mean:.3f}, more than 4 standard errors ({se:.3f}) from 2θ = "
                    f"{grad:g}." + (f" Hint: it looks like {named[0]}." if named else ""))
    if not var_ok:
        hint = ("variance ≈ 87: that is the score-function estimator; here use f'(z) = 2z." if per_sample > 40 else
                "mean over the n samples of 2(θ + ε_i), with fresh ε on every call.")
        raise Fail(f"per-sample variance n·Var = {per_sample:.3g}, outside the interval around 4. Hint: {hint}")
    return f"mean of 3000 estimates {mean:.4f} within 4 SE ({se:.4f}) of 4; per-sample variance {per_sample:.2f} (4)"


def _check_pathwise_hidden(got: dict, want: dict) -> str:
    _check_exact(got, want, "pathwise_grad", "eps = torch.randn(n, generator=generator, dtype=torch.float64); the mean "
                 "of 2(θ + eps).")
    return "right on the hidden inputs"


def _experiment_statistics(got: dict, prefix: str, theta: float, ns: list[int], reps: int, what: str,
                           hint_mean: str) -> None:
    for name, coeffs in [("score", _score_coeffs(theta)), ("pathwise", _pathwise_coeffs(theta))]:
        key = prefix.format(name=name)
        means = get_value(got, f"{key}.means", (len(ns),), f"the means ({name})")
        variances = get_value(got, f"{key}.variances", (len(ns),), f"the variances ({name})")
        grad, v, mu4 = demo.gaussian_polynomial_moments(coeffs)
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
        raise Fail("the variance divides by reps - 1. Hint: divide by reps like np.var: unbiased=False.")
    if not torch.allclose(count, torch.full((2,), 15 / 12, dtype=torch.float64), rtol=1e-5, atol=1e-8):
        raise Fail("with estimates 0, 1, 2, 3 the variances should be 1.25. Hint: the variance (not the standard "
                    "deviation) of the reps estimates, dividing by reps.")
    renamed = {k.replace("score_function_grad", "score").replace("pathwise_grad", "pathwise"): v for k, v in got.items()}
    _experiment_statistics(renamed, "lecture.{name}", 2.0, [10, 100, 1_000, 10_000, 100_000], 100,
                           "the lecture's experiment", "check exercise {ex} first.")
    return "every mean within 4 SE of 4 and every variance within its fourth-moment interval"


def _check_experiment_hidden(got: dict, want: dict) -> str:
    _experiment_statistics(got, "{name}", 1.5, [10, 100, 1000], 200, "θ = 1.5, 200 repetitions",
                           "one entry per N, the mean over the reps estimates.")
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
            raise Fail(f"{name}(2) is {at_2:g}, the second moment E[g²]. Hint: subtract the squared mean (2θ)².")
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
        expected = torch.tensor([demo.gaussian_polynomial_moments(coeffs(t))[1] for t in HIDDEN_THETAS],
                                dtype=torch.float64)
        value = get_value(got, name, (len(HIDDEN_THETAS),), name)
        if not torch.allclose(value, expected, rtol=1e-9, atol=1e-12):
            raise Fail(f"{name} is wrong at other θ. Hint: derive Var[(θ+ε)²ε] and Var[2(θ+ε)] for all θ.")
    return "right on the hidden inputs"


def _check_baseline_visible(got: dict, want: dict) -> str:
    b0, plain = get_value(got, "b0", ()).item(), get_value(got, "plain", ()).item()
    if not math.isclose(b0, plain, rel_tol=1e-12, abs_tol=1e-15):
        raise Fail("with b = 0 it must equal score_function_grad on the same seed. Hint: draw the same way.")
    for b, v_expected in [(5.0, 42.0), (7.0, 38.0)]:
        est = get_value(got, f"estimates_b{b:g}", (4000,), f"the 4000 estimates with b = {b:g}")
        mean, per_sample, mean_ok, var_ok, se, _ = _mean_and_variance_test(est, [0.0, 4.0 - b, 4.0, 1.0], 20)
        if not mean_ok:
            raise Fail(f"b = {b:g}: mean {mean:.3f} is more than 4 SE ({se:.3f}) from 4: the baseline made it biased. "
                        "Hint: multiply (f(z) - b) by the score (z - θ); do not subtract b from the product.")
        if not var_ok:
            raise Fail(f"per-sample variance with b = {b:g} is {per_sample:.3g}, outside the interval around the closed "
                        f"form {v_expected:g}. Hint: subtract the baseline from f(z), not add it.")
    shape = tuple(get_value(got, "reinforce_shape").tolist())
    if shape != ():
        raise Fail(f"reinforce_surrogate_loss returned shape {shape}, expected a 0-d tensor (a scalar).")
    z = 2.0 + torch.randn(1000, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    if not math.isclose(get_value(got, "reinforce_grad", ()).item(), (z**2 * (z - 2.0)).mean().item(), rel_tol=1e-10):
        raise Fail("the REINFORCE surrogate's gradient is not the mean of z²(z-θ). Hint: log_prob(z) * f(z).detach(), "
                    "averaged (mean, not sum) over the samples.")
    samples = get_value(got, "pathwise_samples", (1000,), "pathwise_surrogate_loss samples")
    if not _flag(got, "pathwise_has_graph"):
        raise Fail("the pathwise samples carry no graph back to theta. Hint: use .rsample(), not .sample().")
    if not math.isclose(get_value(got, "pathwise_grad", ()).item(), (2 * samples).mean().item(), rel_tol=1e-10):
        raise Fail("the pathwise surrogate's gradient is not the mean of 2z over its samples. Hint: the loss is the mean "
                    "(not sum) of f(z) over the rsampled z.")
    return "unbiased with b = 5 and 7 (variances 42 and 38); both surrogates' gradients match"


def _check_baseline_hidden(got: dict, want: dict) -> str:
    for b in (1.3, -2.0):
        name = f"baseline_{b}"
        if not math.isclose(get_value(got, name, ()).item(), want[name].item(), rel_tol=1e-9, abs_tol=1e-12):
            raise Fail("score_function_grad_baseline is wrong at another θ and b. Hint: the mean of (f(z) - b)(z - θ), "
                        "drawn like score_function_grad.")
    name = "reinforce_grad_graph_samples"
    if not math.isclose(get_value(got, name, ()).item(), want[name].item(), rel_tol=1e-9, abs_tol=1e-12):
        raise Fail("the REINFORCE surrogate differentiates through samples that carry a graph. Hint: detach the samples "
                    "(and f(z)) inside the surrogate.")
    samples = get_value(got, "pathwise_samples", (300,), "pathwise_surrogate_loss samples")
    if not math.isclose(get_value(got, "pathwise_grad", ()).item(), (2 * samples).mean().item(), rel_tol=1e-9):
        raise Fail("the pathwise surrogate's gradient at θ = -0.9 is not the mean of 2z over its samples.")
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
    verdict = close(rtol=1e-9, atol=1e-12, hidden=True)(got, want)
    if not verdict.passed:
        raise Fail(verdict.message.removeprefix("✗ ") + ". Hint: the mean over the batch of (r_i - b)(onehot(a_i) - π).")
    return "right on the hidden inputs"


def _check_gumbel_visible(got: dict, want: dict) -> str:
    y = got.get("y")
    if y is None or tuple(y.shape) != (20_000, 4):
        raise Fail(f"gumbel_softmax_sample has shape {None if y is None else tuple(y.shape)}, expected (20000, 4). "
                    "Hint: one row of K probabilities per sample.")
    y = y.double()
    if not torch.allclose(y.sum(1), torch.ones(20_000, dtype=torch.float64), rtol=1e-9, atol=1e-8):
        raise Fail("the rows do not sum to 1. Hint: softmax over the categories (dim=-1), not over the samples.")
    if not _flag(got, "y_has_graph"):
        raise Fail("the samples carry no graph back to the logits. Hint: do not detach or use argmax.")
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
                    "(want < 0.5). Hint: divide (logits + g) by τ; do not multiply.")
    g_const = get_value(got, "grad_constant_c", (4,), "gumbel_softmax_grad")
    if not torch.allclose(g_const, torch.zeros(4, dtype=torch.float64), atol=1e-10):
        raise Fail("for constant c the gradient must be 0. Hint: differentiate the mean of c · y through the relaxed "
                    "samples y.")
    if get_value(got, "grads_e1", (20, 4))[:, 1].mean().item() <= 0:
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
