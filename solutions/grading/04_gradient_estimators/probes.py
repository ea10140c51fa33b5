"""Probes of the hidden tests for 04_gradient_estimators (instructor material: never released to students).

The only hidden-test code that enters the student's kernel (`instructor.grading.runner`): each probe builds inputs,
calls the student's functions and returns plain tensors. Nothing here computes an answer: no reference
implementation, no expected value, no table of typical wrong answers; those live in ``judges.py``, which only the
trusted grader imports (and which rebuilds the inputs with the builders below).
"""

from __future__ import annotations

import torch


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
    same_seed = [sf(2.0, 10, torch.Generator().manual_seed(5)) for _ in range(2)]  # the judge compares them
    return {"is_number": isinstance(first, (float, int)), "same_seed": same_seed,
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
    same_seed = [pw(2.0, 3, torch.Generator().manual_seed(5)) for _ in range(2)]  # the judge compares them
    out = {"is_number": isinstance(first, (float, int)), "same_seed": same_seed,
           "estimates": _estimates(lambda: pw(2.0, 10, gen), 3000)}
    pws = ns["pathwise_grad_sigma"]
    gen = torch.Generator().manual_seed(43)
    first = pws(1.0, 1.5, 10, gen)
    out["sigma"] = {"is_number": isinstance(first, (float, int)),
                    "same_seed": [pws(1.0, 1.5, 3, torch.Generator().manual_seed(5)) for _ in range(2)],
                    "estimates": _estimates(lambda: pws(1.0, 1.5, 10, gen), 3000)}
    return out


SIGMA_CASES = [(-0.6, 0.7, 5, 12), (2.2, 1.9, 1, 13), (0.3, 0.4, 3000, 14)]


def probe_pathwise_hidden(ns: dict) -> dict:
    pw = ns["pathwise_grad"]
    cases = [(-0.8, 6, 321), (1.7, 1, 8), (0.0, 4000, 66), (-2.5, 3, 4)]
    out = {f"theta={t},n={n}": _f64(pw(t, n, torch.Generator().manual_seed(s))) for t, n, s in cases}
    pws = ns["pathwise_grad_sigma"]
    for mu, sigma, n, seed in SIGMA_CASES:
        out[f"sigma:mu={mu},sigma={sigma},n={n}"] = _f64(pws(mu, sigma, n, torch.Generator().manual_seed(seed)))
    return out


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


def _cubic(theta, n, generator):
    """A toy estimator with known moments (not an exercise's answer): the mean of (θ + ε)³ over n draws."""
    return ((theta + torch.randn(n, generator=generator, dtype=torch.float64)) ** 3).mean().item()


def _shifted_square(theta, n, generator):
    """Another toy estimator with known moments: the mean of θ + ε² over n draws."""
    return (theta + torch.randn(n, generator=generator, dtype=torch.float64) ** 2).mean().item()


TOY_CYCLE = [1.0, 2.0, 4.0, 8.0, 16.0]


def probe_experiment_hidden(ns: dict) -> dict:
    """run_experiment on an exact toy case (an estimator cycling through TOY_CYCLE, reps = 5), then with two toy
    estimators of known moments (only run_experiment is graded here), θ = 1.5, 200 repetitions."""
    run = ns["run_experiment"]
    cycle = iter(TOY_CYCLE * 10)
    _, toy_vars = run(lambda theta, n, generator: next(cycle), 0.0, [1, 2], 5, torch.Generator())
    out = {"toy_cycle_vars": torch.as_tensor(toy_vars, dtype=torch.float64)}
    for name, est in [("cubic", _cubic), ("shifted_square", _shifted_square)]:
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


def _square(z):
    return z**2


def _bernoulli_f(z):
    return (z - 0.45) ** 2


def _identity(z):
    return z


BERNOULLI_DRAWS = [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]


def baseline_samples(seed: int = 13) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed, non-symmetric (f(z_i), s_i) pairs for optimal_baseline (the visible check's inputs)."""
    eps = torch.randn(500, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (1.3 + 0.8 * eps) ** 2 + 0.5 * eps, 0.8 * eps


def hidden_baseline_samples() -> list[tuple[torch.Tensor, torch.Tensor]]:
    eps = torch.randn(300, generator=torch.Generator().manual_seed(25), dtype=torch.float64)
    return [((0.4 + eps) ** 2, eps), (torch.exp(0.3 * eps), 2 * eps - 0.1)]


def probe_baseline_visible(ns: dict) -> dict:
    sfb = ns["score_function_grad_baseline"]
    out = {"b0": _f64(sfb(2.0, 50, torch.Generator().manual_seed(3), 0.0)),
           "plain": _f64(ns["score_function_grad"](2.0, 50, torch.Generator().manual_seed(3)))}
    gen = torch.Generator().manual_seed(11)
    for b in (5.0, 7.0):
        out[f"estimates_b{b:g}"] = _estimates(lambda b=b: sfb(2.0, 20, gen, b), 4000)
    fz, score = baseline_samples()
    out["optimal_baseline"] = _f64(ns["optimal_baseline"](fz.clone(), score.clone()))
    surrogate = ns["reinforce_surrogate_loss"]
    theta = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    eps = torch.randn(1000, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for label, z in [("plain", 2.0 + eps), ("graph", theta + eps)]:
        loss = surrogate(torch.distributions.Normal(theta, 1.0), z, _square)
        out[f"reinforce_shape_{label}"] = torch.tensor(list(loss.shape), dtype=torch.int64)
        if loss.shape == () and loss.requires_grad:
            (out[f"reinforce_grad_{label}"],) = torch.autograd.grad(loss, theta)
    logit = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    loss = surrogate(torch.distributions.Bernoulli(logits=logit), torch.tensor(BERNOULLI_DRAWS, dtype=torch.float64),
                     _bernoulli_f)
    if loss.shape == () and loss.requires_grad:
        (out["reinforce_grad_bernoulli"],) = torch.autograd.grad(loss, logit)
    mu = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        loss, z_path = ns["pathwise_surrogate_loss"](torch.distributions.Normal(mu, sigma), _identity, 1000)
    out["pathwise_samples"] = z_path  # the gradients below exist only when the samples carry a graph
    if z_path.requires_grad and loss.shape == ():
        out["pathwise_grad_mu"], out["pathwise_grad_sigma"] = torch.autograd.grad(loss, (mu, sigma))
    return out


def probe_baseline_hidden(ns: dict) -> dict:
    sfb = ns["score_function_grad_baseline"]
    out = {f"baseline_{b}": _f64(sfb(-0.9, 37, torch.Generator().manual_seed(s), b)) for b, s in [(1.3, 21), (-2.0, 22)]}
    for k, (fz, score) in enumerate(hidden_baseline_samples()):
        out[f"optimal_baseline_{k}"] = _f64(ns["optimal_baseline"](fz.clone(), score.clone()))
    surrogate = ns["reinforce_surrogate_loss"]
    theta = torch.tensor(-0.9, dtype=torch.float64, requires_grad=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(23)
        z_graph = torch.distributions.Normal(theta, 1.0).rsample((500,))
    (out["reinforce_grad_graph_samples"],) = torch.autograd.grad(
        surrogate(torch.distributions.Normal(theta, 1.0), z_graph, _square), theta)
    rate = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    z_exp = torch.tensor(EXPONENTIAL_DRAWS, dtype=torch.float64)
    (out["reinforce_grad_exponential"],) = torch.autograd.grad(
        surrogate(torch.distributions.Exponential(rate), z_exp, torch.sin), rate)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(24)
        loss, z_path = ns["pathwise_surrogate_loss"](torch.distributions.Normal(theta, 1.0), _square, 300)
    (out["pathwise_grad"],) = torch.autograd.grad(loss, theta)
    out["pathwise_samples"] = z_path
    return out


EXPONENTIAL_DRAWS = [0.2, 1.1, 0.05, 0.7, 2.3]


BANDIT_LOGITS = [0.3, -0.5, 1.0, 0.0]


BANDIT_MU = [0.2, 0.9, 0.5, 0.6]


BANDIT_DRAW = ([2, 0, 3, 2, 1, 2], [1.0, 0.0, 1.0, 0.0, 1.0, 1.0])  # one fixed batch (arms, rewards)


def probe_bandit_visible(ns: dict) -> dict:
    grad = ns["bandit_policy_gradient"]
    logits = torch.tensor(BANDIT_LOGITS, dtype=torch.float64)
    mu = torch.tensor(BANDIT_MU, dtype=torch.float64)
    pi = torch.softmax(logits, 0)
    out = {"small": grad(logits.clone(), torch.tensor([0, 2, 2]), torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64), 0.0)}
    arms, rewards = torch.tensor(BANDIT_DRAW[0]), torch.tensor(BANDIT_DRAW[1], dtype=torch.float64)
    out["fixed_b06"] = grad(logits.clone(), arms.clone(), rewards.clone(), 0.6)
    out["fixed_rewards_plus_b"] = grad(logits.clone(), arms.clone(), rewards + 0.6, 0.0)  # to name a baseline added
    out["fixed_rewards_no_b"] = grad(logits.clone(), arms.clone(), rewards.clone(), 0.0)  # ... or ignored
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
    e1 = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    try:
        out["grad_constant_c"] = grad(logits.clone(), torch.full((4,), 3.0, dtype=torch.float64), 0.5, 100, gen)
        out["grads_e1"] = torch.stack([torch.as_tensor(grad(logits.clone(), e1, 0.5, 200, gen)) for _ in range(20)])
    except NotImplementedError:
        raise
    except RuntimeError as error:  # autograd's "does not require grad": nothing flows back to the logits
        if "does not require grad" not in str(error) and "grad_fn" not in str(error):
            raise
        out["no_gradient_flow"] = True
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

