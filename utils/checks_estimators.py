"""The check cells of notebook 04 (gradient estimators): one call per check.

Every check prints ✓ lines or raises `utils.checks.CheckFailed` with one ✗ line that names the likely mistake.
Nothing here computes an exercise's answer. The checks use
- stored values on fixed inputs: the mean, variance and fourth central moment of one estimator term at the
  lecture's θ = 2 (the prose states 87 and 4; the fourth moments were computed once, offline, from Gaussian
  moments), the variances at θ = 1, and gradients on fixed, seeded samples;
- properties: seeded generators give equal draws, a baseline keeps the mean, the components of a softmax gradient
  sum to zero, a minimiser is a minimiser, a relaxed sample lies on the simplex.

Statistical tolerances (see `utils.estimators_demo`): a mean of M terms within 4 standard errors sqrt(v / M) of its
expectation (a correct estimator misses with probability ≈ 6e-5), and a sample variance of R estimates within 4 SD
below and 5 SD above its expectation, the SD from the fourth moment (Chebyshev: ≥ 93.75% whatever the
distribution; ≈ 1e-5 for R ≥ 100). Every value is checked for NaN and infinity before it is compared.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from utils import checks
from utils.estimators_demo import mean_of_n_moments, sample_variance_interval

Estimator = Callable[[float, int, torch.Generator], float]

# Stored moments of one estimator term at θ = 2 (mean, variance, fourth central moment), computed offline from the
# Gaussian moments E[ε^2k] = (2k-1)!!. The means and variances are the lecture's numbers.
SCORE_AT_2 = (4.0, 87.0, 202827.0)
PATHWISE_AT_2 = (4.0, 4.0, 48.0)
BASELINE_AT_2 = {5.0: (4.0, 42.0, 80532.0), 7.0: (4.0, 38.0, 54420.0)}  # score function with b = 5 and b* = 7
VARIANCES_AT_1 = (30.0, 4.0)  # score function, pathwise at θ = 1
SIGMA_CASE = (1.0, 1.5)  # (μ, σ) of the σ-gradient check: d/dσ E[z²] = 2σ = 3 for z ~ N(μ, σ²)
PATHWISE_SIGMA_AT_CASE = (3.0, 22.0, 7068.0)
# REINFORCE surrogate on fixed samples: z = 2 + eps (eps = torch.randn(1000, seed 4)), θ = 2, f(z) = z².
FIXED_INPUT_SEEDS = (4,)  # seeds of fixed inputs with stored results (not statistical draws)
SURROGATE_NORMAL_GRAD = 4.193870729786161
# ... and on fixed Bernoulli draws with logit 0.3 and f(z) = (z - 0.45)²:
BERNOULLI_DRAWS = [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
SURROGATE_BERNOULLI_GRAD = 0.026624576864958945
# The bandit on one fixed batch (logits, arms, rewards) with baseline b = 0.6.
BANDIT_LOGITS = [0.3, -0.5, 1.0, 0.0]
BANDIT_MU = [0.2, 0.9, 0.5, 0.6]
BANDIT_DRAW = ([2, 0, 3, 2, 1, 2], [1.0, 0.0, 1.0, 0.0, 1.0, 1.0])
BANDIT_DRAW_GRAD_B06 = [-0.11585829072411084, 0.05954107732293218, 0.001398657451801168, 0.05491855594937748]


def _f64(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _estimates(name: str, estimator: Callable[[], float], reps: int) -> torch.Tensor:
    values = torch.tensor([float(estimator()) for _ in range(reps)], dtype=torch.float64)
    checks.check_finite(name, values, "an estimate is NaN or infinite: a log of 0 or a division by 0?")
    return values


def _seeded_calls_agree(name: str, call: Callable[[torch.Generator], float]) -> None:
    if call(torch.Generator().manual_seed(5)) != call(torch.Generator().manual_seed(5)):
        checks.fail(name, "two calls with identically seeded generators differ.",
                    "draw all randomness from the `generator` argument (torch.randn(..., "
                    "generator=generator)).")


def _mean_and_variance(estimates: torch.Tensor, moments: tuple[float, float, float],
                       n: int) -> tuple[float, float, bool, bool, float]:
    """(mean, per-sample variance n·s², mean within 4 SE, n·s² within its interval, SE)."""
    mean_true, v, mu4 = moments
    reps = len(estimates)
    se = (v / (n * reps)) ** 0.5
    mean = estimates.mean().item()
    low, high = sample_variance_interval(*mean_of_n_moments(v, mu4, n), reps)
    s2 = estimates.var(unbiased=False).item()
    return mean, n * s2, abs(mean - mean_true) <= 4 * se, low <= s2 <= high, se


def _named(mean: float, mistakes: dict[str, float], tol: float) -> str:
    named = [why for why, value in mistakes.items() if abs(mean - value) < tol * max(1.0, abs(value) / 4)]
    return f"it looks like {named[0]}." if named else ""


# ---- 4.1 ------------------------------------------------------------------------------------------------------------
def score_function(score_function_grad: Estimator, reps: int = 3000, n: int = 10) -> None:
    """Check 4.1: seeded, fresh draws per call; 3000 estimates (n = 10, θ = 2) have mean 4 and per-sample variance 87
    within their statistical tolerances."""
    name = "score_function_grad"
    gen = torch.Generator().manual_seed(41)
    checks.check_type(name, score_function_grad(2.0, n, gen), (float, int),
                      hint="return a Python float, e.g. tensor.mean().item().")
    _seeded_calls_agree(name, lambda g: score_function_grad(2.0, n, g))
    est = _estimates(name, lambda: score_function_grad(2.0, n, gen), reps)
    if torch.unique(est).numel() < reps // 2:
        checks.fail(name, "repeated calls return (almost) the same value.",
                    "draw fresh samples from the generator on every call; do not re-seed it inside.")
    mean, per_sample, mean_ok, var_ok, se = _mean_and_variance(est, SCORE_AT_2, n)
    if not mean_ok:
        mistakes = {"the sum over samples instead of the mean": 4.0 * n,
                    "E[f(z)] = θ²+1: the score factor is missing": 5.0,
                    "a flipped sign of the score (differentiate log p with respect to θ, not z)": -4.0,
                    "f(z)·z: the score of N(θ,1) is not z itself": 14.0,
                    "zero: the score alone has mean zero; multiply it by f(z)": 0.0}
        checks.fail(name, f"the mean of {reps} estimates is {mean:.3f}, more than 4 standard errors "
                    f"({se:.3f}) from the true gradient 2θ = 4.",
                    _named(mean, mistakes, 4 * se) or "the estimator is biased: f(z_i) times the score.")
    if not var_ok:
        checks.fail(f"{name} per-sample variance n·Var", f"{per_sample:.4g} is far from 87.",
                    "variance ≈ 4: that is the pathwise estimator; here use f(z) times the score."
                    if abs(per_sample - 4) < 1 else "a mean over the n samples of f(z_i) times the score?")
    checks.passed(name, f"mean of {reps} estimates {mean:.3f} within 4 SE ({se:.3f}) of 4; "
                  f"per-sample variance {per_sample:.1f} (87)")


# ---- 4.2 ------------------------------------------------------------------------------------------------------------
def pathwise(pathwise_grad: Estimator, pathwise_grad_sigma: Callable[..., float],
             reps: int = 3000, n: int = 10) -> None:
    """Check 4.2: the θ-gradient (mean 4, per-sample variance 4 at θ = 2) and the σ-gradient of E[z²] at
    (μ, σ) = (1, 1.5) (mean 2σ = 3), each from 3000 seeded estimates of n = 10 samples."""
    name = "pathwise_grad"
    gen = torch.Generator().manual_seed(42)
    checks.check_type(name, pathwise_grad(2.0, n, gen), (float, int),
                      hint="return a Python float, e.g. tensor.mean().item().")
    _seeded_calls_agree(name, lambda g: pathwise_grad(2.0, 3, g))
    est = _estimates(name, lambda: pathwise_grad(2.0, n, gen), reps)
    mean, per_sample, mean_ok, var_ok, se = _mean_and_variance(est, PATHWISE_AT_2, n)
    if 40 < per_sample < 200:
        checks.fail(name, f"the per-sample variance is {per_sample:.1f}, far above 4.",
                    "variance ≈ 87: that is the score-function estimator; differentiate f along the path.")
    if not mean_ok:
        mistakes = {"the sum over samples instead of the mean": 4.0 * n,
                    "E[f(z)] = θ²+1: differentiate f along the path": 5.0,
                    "z without the factor 2 of f'(z)": 2.0,
                    "the noise alone: the path z = θ + ε keeps θ": 0.0, "a flipped sign": -4.0}
        checks.fail(name, f"the mean of {reps} estimates is {mean:.3f}, more than 4 standard errors "
                    f"({se:.3f}) from 2θ = 4.", _named(mean, mistakes, 0.5))
    if not var_ok:
        checks.fail(f"{name} per-sample variance n·Var", f"{per_sample:.4g} is far from 4.",
                    "a mean over the n samples, with fresh ε on every call.")
    checks.passed(name, f"mean of {reps} estimates {mean:.4f} within 4 SE ({se:.4f}) of 4; "
                  f"per-sample variance {per_sample:.2f} (4)")
    pathwise_sigma(pathwise_grad_sigma, reps, n)


def pathwise_sigma(pathwise_grad_sigma: Callable[..., float], reps: int = 3000, n: int = 10) -> None:
    """Check 4.2, second part: d/dσ E[z²] for z ~ N(μ, σ²) at (μ, σ) = (1, 1.5) is 2σ = 3."""
    name = "pathwise_grad_sigma"
    mu, sigma = SIGMA_CASE
    gen = torch.Generator().manual_seed(43)
    checks.check_type(name, pathwise_grad_sigma(mu, sigma, n, gen), (float, int),
                      hint="return a Python float, e.g. tensor.mean().item().")
    _seeded_calls_agree(name, lambda g: pathwise_grad_sigma(mu, sigma, 3, g))
    est = _estimates(name, lambda: pathwise_grad_sigma(mu, sigma, n, gen), reps)
    mean, per_sample, mean_ok, var_ok, se = _mean_and_variance(est, PATHWISE_SIGMA_AT_CASE, n)
    if not mean_ok:
        mistakes = {"f'(z) = 2z without the chain rule's factor dz/dσ": 2 * mu,
                    "dz/dσ = σ instead of ε": 2 * mu * sigma,
                    "the sum over samples instead of the mean": 3.0 * n,
                    "a flipped sign": -3.0, "the gradient with respect to μ, not σ": 2 * mu}
        checks.fail(name, f"at (μ, σ) = ({mu:g}, {sigma:g}) the mean of {reps} estimates is {mean:.3f}, more "
                    f"than 4 standard errors ({se:.3f}) from d/dσ E[z²] = 2σ = 3.",
                    _named(mean, mistakes, 0.3) or "write z = μ + σε and differentiate f(z) with respect to σ.")
    if not var_ok:
        checks.fail(f"{name} per-sample variance n·Var", f"{per_sample:.4g} is far from its pathwise value.",
                    "differentiate f(μ + σε) with respect to σ, sample by sample; no other estimator.")
    checks.passed(name, f"mean of {reps} estimates {mean:.4f} within 4 SE ({se:.4f}) of 2σ = 3")


# ---- 4.3 ------------------------------------------------------------------------------------------------------------
def experiment(run_experiment: Callable, score_function_grad: Estimator, pathwise_grad: Estimator,
               ns: list[int], reps: int) -> None:
    """Check 4.3: toy estimators with exact answers, then the lecture's experiment (θ = 2, seed 2024) with the
    student's estimators 4.1 and 4.2 within the statistical tolerances."""
    name = "run_experiment"
    toy_means, toy_vars = run_experiment(lambda theta, n, generator: float(n), 2.0, [3, 7], 5,
                                         torch.Generator())
    checks.check_shape(f"{name} means", toy_means, (2,), "one entry per N in ns.")
    checks.check_shape(f"{name} variances", toy_vars, (2,), "one entry per N in ns.")
    checks.check_close(f"{name} means (estimator returns N)", toy_means, _f64([3.0, 7.0]),
                       hint="one entry per N in ns, each the mean over the reps estimates.")
    counter = iter(range(10**6))
    _, count_vars = run_experiment(lambda theta, n, generator: float(next(counter) % 4), 2.0, [3, 7], 4,
                                   torch.Generator())
    checks.check_finite(f"{name} variances", count_vars)
    if torch.allclose(count_vars.double(), torch.full((2,), 15 / 12 * 4 / 3, dtype=torch.float64)):
        checks.fail(name, "the variance divides by reps - 1.", "divide by reps like np.var: unbiased=False.")
    checks.check_close(f"{name} variances (estimates 0, 1, 2, 3)", count_vars, torch.full((2,), 15 / 12),
                       hint="the variance (not the standard deviation) of the reps estimates, dividing by reps.")
    for label, estimator, moments, ex in [("score function", score_function_grad, SCORE_AT_2, "4.1"),
                                          ("pathwise", pathwise_grad, PATHWISE_AT_2, "4.2")]:
        means, variances = run_experiment(estimator, 2.0, ns, reps, torch.Generator().manual_seed(2024))
        checks.check_finite(f"{name}, {label}", torch.cat([means, variances]))
        grad, v, mu4 = moments
        for n, m, s2 in zip(ns, means.tolist(), variances.tolist(), strict=True):
            se = (v / (n * reps)) ** 0.5
            if abs(m - grad) > 4 * se:
                checks.fail(f"{name}, {label}, N={n}", f"mean {m:.4f} is more than 4 standard errors ({se:.2g}) "
                            "from 4.", f"it uses your estimator from Exercise {ex}: does it pass its check?")
            low, high = sample_variance_interval(*mean_of_n_moments(v, mu4, n), reps)
            if not low <= s2 <= high:
                too_large = abs(s2 * n / v / n - 1) < 0.5
                checks.fail(f"{name}, {label}, N={n}", f"variance {s2:.3g} is outside [{low:.3g}, {high:.3g}], "
                            f"the fourth-moment interval around {v:g}/N.",
                            "it is N times too large: is each estimate a mean over N samples?" if too_large
                            else "do the estimates use fresh samples for every repetition?")
    checks.passed(name, "every mean within 4 SE of 4 and every variance within its fourth-moment interval")


# ---- 4.4 ------------------------------------------------------------------------------------------------------------
def closed_form_variances(score_function_variance: Callable[[float], float],
                          pathwise_variance: Callable[[float], float]) -> None:
    """Check 4.4: the lecture's 87 and 4 at θ = 2, and stored values at θ = 1 (computed once, offline)."""
    for name, fn, at_2, second_moment, at_1 in [
            ("score_function_variance", score_function_variance, 87.0, 103.0, VARIANCES_AT_1[0]),
            ("pathwise_variance", pathwise_variance, 4.0, 20.0, VARIANCES_AT_1[1])]:
        got = float(fn(2.0))
        checks.check_finite(f"{name}(2)", got)
        if abs(got - second_moment) < 1e-9:
            checks.fail(name, f"got {got:g} at θ = 2, the second moment E[g²].", "subtract the squared mean.")
        checks.check_close(f"{name}(2)", got, at_2, rtol=1e-9,
                           hint="write the estimator g in terms of ε ~ N(0, 1), expand E[g²] in powers of ε "
                                "(E[ε²] = 1, E[ε⁴] = 3, E[ε⁶] = 15, odd moments 0), then subtract the squared mean.")
        checks.check_close(f"{name}(1)", float(fn(1.0)), at_1, rtol=1e-9,
                           hint="the formula must hold for every θ, not only θ = 2.")


# ---- 4.5 ------------------------------------------------------------------------------------------------------------
def baselines(score_function_grad_baseline: Callable[..., float], optimal_baseline: Callable,
              score_function_grad: Estimator, reps: int = 4000, n: int = 20) -> None:
    """Check 4.5, part 1: b = 0 reproduces 4.1; with b = 5 and b = 7 at θ = 2 the estimator stays unbiased with
    per-sample variances 42 and 38; the estimated optimal baseline minimises the second moment of (f - b)·s."""
    name = "score_function_grad_baseline"
    same = (score_function_grad_baseline(2.0, 50, torch.Generator().manual_seed(3), 0.0),
            score_function_grad(2.0, 50, torch.Generator().manual_seed(3)))
    checks.check_finite(name, same[0])
    checks.check_close(f"{name} with b = 0", same[0], same[1], rtol=1e-12,
                       hint="with b = 0 it is score_function_grad (Exercise 4.1); draw the same way.")
    gen = torch.Generator().manual_seed(11)
    for b, moments in BASELINE_AT_2.items():
        est = _estimates(name, lambda b=b: score_function_grad_baseline(2.0, n, gen, b), reps)
        mean, per_sample, mean_ok, var_ok, se = _mean_and_variance(est, moments, n)
        if not mean_ok:
            checks.fail(f"{name}(b={b:g})", f"mean {mean:.3f} is more than 4 SE ({se:.3f}) from 4: the baseline "
                        "made it biased.", "multiply (f(z) - b) by the score; do not subtract b from the product.")
        if not var_ok:
            added = per_sample > moments[1] + 20
            checks.fail(f"{name}(b={b:g}) per-sample variance", f"{per_sample:.4g}, not near {moments[1]:g}.",
                        "it grew: the baseline is added; subtract it from f(z)." if added else
                        "subtract the baseline from f(z), then multiply by the score.")
        print(f"✓ {name}(b={b:g}): unbiased, per-sample variance {per_sample:.1f} ({moments[1]:g})")
    _optimal_baseline(optimal_baseline)


def _optimal_baseline(optimal_baseline: Callable) -> None:
    name = "optimal_baseline"
    gen = torch.Generator().manual_seed(13)
    eps = torch.randn(500, generator=gen, dtype=torch.float64)
    fz, score = (1.3 + 0.8 * eps) ** 2 + 0.5 * eps, 0.8 * eps  # fixed, non-symmetric samples
    b = optimal_baseline(fz.clone(), score.clone())
    checks.check_type(name, b, (float, int), hint="return a Python float.")
    checks.check_finite(name, b)
    if abs(b - fz.mean().item()) < 1e-9:
        checks.fail(name, "it returned the mean of f, the natural baseline, not the minimiser.",
                    "expand the second moment of (f - b)·s in b and set its derivative to zero.")

    def second_moment(c: float) -> float:
        return (((fz - c) * score) ** 2).mean().item()

    delta = 1e-3 * (1 + abs(b))
    if not second_moment(b) <= min(second_moment(b - delta), second_moment(b + delta)):
        checks.fail(name, f"b = {b:.4g} does not minimise the mean of ((f(z_i) - b)·s_i)² over the samples.",
                    "the variance is a quadratic in b (the score has mean zero): find its minimiser.")
    checks.passed(name, f"b = {b:.4g} minimises the estimated variance on 500 fixed samples")


def surrogates(reinforce_surrogate_loss: Callable, pathwise_surrogate_loss: Callable) -> None:
    """Check 4.5, part 2: the surrogates' autograd gradients on fixed samples (stored values) for a normal and a
    Bernoulli distribution, on samples with and without a graph; the pathwise surrogate keeps its samples' graph."""
    name = "reinforce_surrogate_loss"
    theta = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    eps = torch.randn(1000, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for label, z in [("plain samples", 2.0 + eps), ("samples with a graph", theta + eps)]:
        loss = reinforce_surrogate_loss(torch.distributions.Normal(theta, 1.0), z, lambda z: z**2)
        checks.check_shape(name, loss, (), hint="a 0-d tensor: the mean over the samples.")
        (grad,) = torch.autograd.grad(loss, theta)
        checks.check_finite(name, grad)
        if label == "samples with a graph" and abs(grad.item() - SURROGATE_NORMAL_GRAD) > 1e-8:
            checks.fail(f"{name} ({label})", f"gradient {grad.item():.4f}, expected {SURROGATE_NORMAL_GRAD:.4f} "
                        "as on the same samples without a graph: the surrogate differentiates through z.",
                        "the samples are constants for the score function: use z.detach() (and f(z).detach()).")
        checks.check_close(f"{name} gradient, N(θ, 1), {label}", grad.item(), SURROGATE_NORMAL_GRAD,
                           rtol=1e-9, hint="the mean (not sum) over samples of log_prob(z) times f(z) "
                           "held constant.")
    logit = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    loss = reinforce_surrogate_loss(torch.distributions.Bernoulli(logits=logit), _f64(BERNOULLI_DRAWS),
                                    lambda z: (z - 0.45) ** 2)
    (grad,) = torch.autograd.grad(loss, logit)
    checks.check_close(f"{name} gradient, Bernoulli(logits=0.3)", grad.item(), SURROGATE_BERNOULLI_GRAD,
                       rtol=1e-9, hint="only dist.log_prob: the same code works for every distribution.")
    name = "pathwise_surrogate_loss"
    mu = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        loss, z = pathwise_surrogate_loss(torch.distributions.Normal(mu, sigma), lambda z: z, 1000)
    checks.check_shape(f"{name} samples", z, (1000,))
    if not z.requires_grad:
        checks.fail(name, "the samples carry no graph back to the parameters.", "use .rsample(), not .sample().")
    checks.check_shape(name, loss, (), hint="a 0-d tensor: the mean of f over the samples.")
    grad_mu, grad_sigma = torch.autograd.grad(loss, (mu, sigma))
    zd = z.detach()  # f(z) = z: mean(z) is linear in μ and in σ
    checks.check_close(f"{name}: d/dμ of mean(z)", grad_mu.item(), 1.0, rtol=1e-9,
                       hint="the mean (not sum) of f over the rsampled z.")
    checks.check_close(f"{name}: d/dσ of mean(z)", grad_sigma.item(), (zd.mean().item() - 0.7) / 1.3,
                       rtol=1e-8, atol=1e-10, hint="the mean of f over reparameterized samples.")


# ---- 4.6 ------------------------------------------------------------------------------------------------------------
def bandit(bandit_policy_gradient: Callable) -> None:
    """Check 4.6: an exact value on one fixed batch (the baseline is subtracted, the components sum to zero), then
    unbiasedness with and without a baseline: 50 batches of 400 plays, 4.5 standard errors (Student t, 49 d.o.f.)."""
    name = "bandit_policy_gradient"
    logits = _f64(BANDIT_LOGITS)
    arms, rewards = torch.tensor(BANDIT_DRAW[0]), _f64(BANDIT_DRAW[1])
    g = bandit_policy_gradient(logits.clone(), arms, rewards.clone(), 0.6)
    checks.check_shape(name, g, (4,), "one component per arm.")
    checks.check_finite(name, g)
    if abs(g.sum().item()) > 1e-9:
        checks.fail(name, "the components do not sum to zero.",
                    "∇ log softmax(θ)[a] = onehot(a) - π: did you forget the -π term?")
    if not torch.allclose(g, _f64(BANDIT_DRAW_GRAD_B06), rtol=1e-9, atol=1e-12):
        expected = _f64(BANDIT_DRAW_GRAD_B06)
        variants = {"the sign is flipped": -expected, "mean over the batch, not sum": len(arms) * expected}
        why = checks.match_variant(g, variants, rtol=1e-9)
        shifted = {"the baseline is added to the rewards; subtract it": rewards + 0.6,
                   "the baseline is ignored": rewards}
        for label, r in shifted.items():
            if torch.allclose(g, bandit_policy_gradient(logits.clone(), arms, r, 0.0), rtol=1e-9, atol=1e-12):
                why = label
        if why:
            checks.fail(f"{name} (b = 0.6, one fixed batch)", f"wrong values: {why}.")
        checks.fail(f"{name} (b = 0.6, one fixed batch)", "wrong values on a fixed batch.",
                    "the mean over the batch of (r_i - b) times the score of the arm played.")
    pi, mu = torch.softmax(logits, 0), _f64(BANDIT_MU)
    exact = pi * (mu - pi @ mu)
    gen = torch.Generator().manual_seed(8)
    for b in [0.0, 0.55]:
        batches = []
        for _ in range(50):
            arms = torch.multinomial(pi, 400, replacement=True, generator=gen)
            rewards = (torch.rand(400, generator=gen, dtype=torch.float64) < mu[arms]).double()
            batches.append(bandit_policy_gradient(logits.clone(), arms, rewards, b))
        batches = torch.stack(batches)  # (50, K)
        mean, se = batches.mean(0), batches.std(0) / 50**0.5
        if torch.any((mean - exact).abs() > 4.5 * se):
            hint = ("the sign is flipped." if torch.allclose(mean, -exact, atol=5 * se.max().item()) else
                    "it is 400 times too large: mean over the batch, not sum."
                    if torch.allclose(mean / 400, exact, atol=0.01) else
                    "mean over the batch of (r_i - b)(onehot(a_i) - softmax(logits)).")
            checks.fail(f"{name} (b = {b})", "the estimate is biased: the mean of 50 batch estimates is more "
                        "than 4.5 standard errors from the exact gradient.", hint)
    checks.passed(name, "exact on a fixed batch; unbiased with and without a baseline (4.5 SE)")


# ---- 4.7 ------------------------------------------------------------------------------------------------------------
def _gradient_or_fail(call: Callable[[], torch.Tensor]) -> torch.Tensor:
    try:
        return call()
    except NotImplementedError:
        raise
    except RuntimeError as error:
        if "does not require grad" in str(error) or "not have a grad_fn" in str(error):
            checks.fail("gumbel_softmax_grad", "no gradient flows from the loss back to the logits.",
                        "keep the relaxed samples in the graph: no .detach(), argmax or one-hot inside.")
        raise


def gumbel(gumbel_softmax_sample: Callable, gumbel_softmax_grad: Callable) -> None:
    """Check 4.7: rows on the simplex with a graph; Gumbel-max frequencies (chi-square, 3 d.o.f., threshold 25:
    P ≈ 1.6e-5); temperature limits; the gradient is 0 for constant c, non-zero otherwise, and positive on average
    in the direction of c = e_1."""
    logits = _f64([0.5, -0.3, 1.2, 0.0])
    gen = torch.Generator().manual_seed(17)
    y = gumbel_softmax_sample(logits.clone().requires_grad_(True), 1.0, 20_000, gen)
    checks.check_shape("gumbel_softmax_sample", y, (20_000, 4), hint="one row of K probabilities per sample.")
    checks.check_finite("gumbel_softmax_sample", y.detach(), "keep u away from 0 before the logs.")
    checks.check_close("gumbel_softmax_sample row sums", y.sum(1).detach(), torch.ones(20_000), rtol=1e-9,
                       hint="softmax over the categories (dim=-1), not over the samples.")
    if not y.requires_grad:
        checks.fail("gumbel_softmax_sample", "the samples carry no graph back to the logits.",
                    "do not detach or use argmax.")
    counts = torch.bincount(y.argmax(1), minlength=4).double()
    expected = 20_000 * torch.softmax(logits, 0)
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    checks.check_between("Gumbel-max frequencies: chi-square statistic (3 d.o.f.)", chi2, 0.0, 25.0,
                         hint="the Gumbel noise is -log(-log u) with u uniform on (0, 1); added to the logits.")
    sharp = gumbel_softmax_sample(logits, 0.05, 2000, gen).max(1).values.mean().item()
    smooth = gumbel_softmax_sample(logits, 20.0, 2000, gen).max(1).values.max().item()
    if sharp < 0.9 or smooth > 0.5:
        checks.fail("gumbel_softmax_sample", f"mean max at τ = 0.05 is {sharp:.2f} (want > 0.9), largest max at "
                    f"τ = 20 is {smooth:.2f} (want < 0.5).", "divide (logits + g) by τ; do not multiply.")
    name = "gumbel_softmax_grad"
    g_const = _gradient_or_fail(lambda: gumbel_softmax_grad(logits, torch.full((4,), 3.0, dtype=torch.float64), 0.5, 100, gen))
    checks.check_shape(name, g_const, (4,))
    checks.check_finite(name, g_const)
    checks.check_close(f"{name} for constant c", g_const, torch.zeros(4, dtype=torch.float64), atol=1e-10,
                       hint="differentiate the mean of c · y through the relaxed samples y.")
    e1 = _f64([0.0, 1.0, 0.0, 0.0])
    g_e1 = torch.stack([_gradient_or_fail(lambda: gumbel_softmax_grad(logits, e1, 0.5, 200, gen))
                        for _ in range(20)])
    if torch.all(g_e1 == 0):
        checks.fail(name, "the gradient is exactly zero for a non-constant c: no gradient flows through the "
                    "samples.", "differentiate through the relaxed softmax samples (no detach, argmax or "
                    "one-hot; do not read .grad of a tensor outside the graph).")
    if g_e1[:, 1].mean().item() <= 0:
        checks.fail(name, "raising θ_1 should raise E[y_1], but the estimated gradient is not positive.",
                    "the gradient of +mean(c · y), not its negative.")
    checks.passed("gumbel_softmax", "simplex, Gumbel-max frequencies, temperature and gradient sanity")
