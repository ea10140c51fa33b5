"""Judges of the hidden tests for 03_amortized_inference (instructor material: never released to students).

Run in the trusted grader only (never in the student's kernel); they never call student code. The exact ELBOs and
log-likelihoods live here only: the probes hand the student's optimizers the same objectives up to their constant.
Every model the probes and judges use is rebuilt from the offline MNIST set or from a seed: the probabilistic
PCA of the notebook (closed form, float64), random linear models (the hidden check cells' recipes), and a fixed
non-linear decoder f(z) = sigmoid(6 (b + W z) - 3) built from the PPCA fit. The notebook's own non-linear decoder is
trained by given code; the probes do not read it (or any other given global) from the student's namespace, so the
non-linear parts use this fixed decoder instead: the student's `per_point_inference` and `train_encoder` run on it,
and the judge measures the results with its own Monte Carlo ELBO.

Statistics. Exact ELBOs (linear models) need no statistical tolerance: the limits are the check cells' own. For the
non-linear decoder the judge estimates each point's ELBO with 25 samples, the same noise for every Q ("common random
numbers", seeded); differences are averaged over 1,000 held-out images and compared with 3 standard errors of that
mean (paired), as in the check cells: a correct solution misses with probability ~1e-3 (one-sided normal tail).
"""

from __future__ import annotations

import math

import torch

from instructor.grading.judge import Fail, criteria, get_value, match_mistake, require
from instructor.grading.spec import probes_beside

probes = probes_beside(__file__)

DIAGNOSES = (  # the typical mistakes these judges name (Verdict.diagnosis), counted by the class report
    "kl_added",
    "variance_term_missing",
    "log_variance_for_variance",
    "likelihood_constant_wrong",
    "loop_over_points",
    "logvar_not_optimized",
    "elbo_minimized",
    "elbo_above_log_px",
    "init_ignored",
    "init_modified_in_place",
    "encoder_called_per_point",
    "k0_not_encoder_output",
    "schedule_not_stepped",
    "approximation_gap_hard_coded",
    "steps_accumulated_across_k",
)


# the probes' constants (inputs, sizes, seeds), which the judges use too
K_VALUES = probes.K_VALUES
LATENT = probes.LATENT
LR = probes.LR
STEPS = probes.STEPS


_TRUSTED_CACHE: dict = {}


# ---- exact ELBOs and log-likelihoods (trusted side only) -------------------------------------------------------------
def _log_marginal(x, W, b, s2):
    D, d = W.shape
    M = W.T @ W + s2 * torch.eye(d, dtype=W.dtype)
    r = x - b
    r_W = r @ W
    quadratic = ((r * r).sum(-1) - (r_W @ torch.linalg.inv(M) * r_W).sum(-1)) / s2
    return -0.5 * (D * math.log(2 * math.pi) + (D - d) * torch.log(s2) + torch.logdet(M) + quadratic)


def _ppca_and_log_px() -> dict:
    """The probes' PPCA model and data, with log p(x) of the held-out images (float64)."""
    if "ppca" not in _TRUSTED_CACHE:
        P = probes._ppca()
        _TRUSTED_CACHE["ppca"] = {**P, "log_px": _log_marginal(P["x_test64"], P["W"], P["b"], P["s2"])}
    return _TRUSTED_CACHE["ppca"]


def _constant(D: int, s2: torch.Tensor) -> torch.Tensor:
    """The term −½ D log(2π s2) that the probes' objectives leave out."""
    return -0.5 * D * torch.log(2 * math.pi * s2)


def _linear_elbo(x, mu, logvar, W, b, s2):
    """The closed-form ELBO of the linear-Gaussian model (instructor code), (N,)."""
    return _constant(x.shape[-1], s2) + probes._linear_objective(x, mu, logvar, W, b, s2)


def _nl_elbo(x, mu, logvar, W, b, s2, n_samples=1, generator=None):
    """Monte Carlo ELBO of the fixed non-linear decoder, (N,)."""
    return _constant(x.shape[-1], s2) + probes._nl_objective(x, mu, logvar, W, b, s2, n_samples, generator)


def _best_diagonal_and_elbo(x, W, b, s2):
    """Mean-field optimum of the linear model (the posterior mean and variances 1 / P_jj), and its ELBO."""
    M_inv = torch.linalg.inv(W.T @ W + s2 * torch.eye(W.shape[1], dtype=W.dtype))
    mean = (x - b) @ W @ M_inv.T
    logvar = (1 / torch.linalg.inv(s2 * M_inv).diagonal()).log().expand(len(x), -1)
    return mean, logvar, _linear_elbo(x, mean, logvar, W, b, s2)


EVAL_SAMPLES = 25


def _nl_evaluate(mu, logvar) -> torch.Tensor:
    """25-sample ELBO (float64) of the held-out images under the fixed non-linear decoder, common random numbers."""
    P = _ppca_and_log_px()
    with torch.no_grad():
        return _nl_elbo(P["x_test64"], mu.double(), logvar.double(), P["W"], P["b"], P["s2"], EVAL_SAMPLES,
                        torch.Generator().manual_seed(1234))


def _nl_reference() -> dict:
    """Trusted side: the instructor's per-point optimum for the non-linear decoder (Adam + cosine, 300 steps from the
    prior, like the notebook) and the prior's ELBO, on the held-out images; computed once per grading process."""
    if "nl_reference" not in _TRUSTED_CACHE:
        P = _ppca_and_log_px()
        x = P["x_test"]
        mu = torch.zeros(len(x), LATENT, requires_grad=True)
        logvar = torch.zeros(len(x), LATENT, requires_grad=True)
        optimizer = torch.optim.Adam([mu, logvar], lr=LR)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, STEPS)
        fn = probes._nl_fn()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(2027)
            for _ in range(STEPS):
                loss = -fn(x, mu, logvar).sum()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
        zeros = torch.zeros(len(x), LATENT)
        _TRUSTED_CACHE["nl_reference"] = {"pp": _nl_evaluate(mu.detach(), logvar.detach()), "prior": _nl_evaluate(zeros, zeros)}
    return _TRUSTED_CACHE["nl_reference"]


# ---- judges (trusted) -----------------------------------------------------------------------------------------------
def _check_linear_elbo_visible(got: dict, want: dict) -> str:
    P = _ppca_and_log_px()
    if "elbo" in got and tuple(got["elbo"].shape) != (200,):
        raise Fail(f"the result has shape {tuple(got['elbo'].shape)} for 200 points, expected (200,). Hint: one ELBO "
                    "per data point: sum over pixels and latent dimensions, not over the points.")
    elbo = get_value(got, "elbo", (200,), "linear_elbo's result")
    log_px = P["log_px"][:200]
    mu, logvar = P["post_mean"][:200], P["post_var"].log().expand(200, -1)
    w2 = (P["W"] ** 2).sum(0)
    kl_prior = probes._kl(mu, logvar)
    spread = (logvar.exp() * w2).sum(-1) / (2 * P["s2"])
    logvar_term = (logvar * w2).sum(-1) / (2 * P["s2"])
    if not torch.allclose(elbo, log_px, rtol=1e-9, atol=1e-6):
        mistake = match_mistake(elbo, {
            "kl_added": ("the KL term is added instead of subtracted.", log_px + 2 * kl_prior),
            "variance_term_missing": ("the variance term sum_j s_j^2 ||w_j||^2 is missing.", log_px + spread),
            "log_variance_for_variance": ("log(s^2) is used where the variance s^2 = exp(logvar) belongs.",
                                          log_px + spread - logvar_term)}, rtol=1e-4)
        offset = (elbo - log_px).mean()
        if mistake is None and torch.allclose(elbo - offset, log_px, rtol=1e-6, atol=1e-4):
            mistake = ("likelihood_constant_wrong", "off by a constant: check the -D/2 log(2 pi sigma2) term.")
        raise Fail(f"at the exact posterior the ELBO must equal log p(x); largest difference "
                   f"{(elbo - log_px).abs().max().item():.3g} nats",
                   mistake[1] if mistake else "compare your terms with the formula, term by term.",
                   mistake[0] if mistake else "")
    grad = got.get("largest_gradient")
    require(grad is not None, "the result carries no gradient to mu and logvar: compute it with torch operations.")
    require(0 <= grad.item() <= 1e-6, f"largest |dF/d(mu, logvar)| at the posterior is {grad.item():.3g}, above 1e-6. "
             "Hint: the ELBO must be stationary at the exact posterior.")
    return "equals log p(x) at the exact posterior, and is stationary there"


def _check_linear_elbo_hidden(got: dict, want: dict) -> str:
    for name, what in [("random_model", "on a random linear model"), ("one_point_float32", "on a float32 example")]:
        value = get_value(got, name, tuple(want[name].shape), f"linear_elbo {what}")
        if not torch.allclose(value, want[name].double(), rtol=1e-8 if name == "random_model" else 1e-5,
                              atol=1e-8 if name == "random_model" else 1e-3):
            raise Fail(f"wrong values {what} (a W that is not orthogonal, random Q). Hint: the expected "
                        "log-likelihood needs sum_j s_j^2 ||w_j||^2 with the column norms of W, and the KL term.")
    return "right on the hidden inputs"


def _check_toy_run(got: dict) -> None:
    """The visible check's toy run: under a constant gradient Adam moves each parameter by the learning rate of each
    step, so a cosine decay over T steps, stepped after every optimizer step, moves it lr (T + 1) / 2 in all."""
    steps, lr = probes.TOY_STEPS, probes.TOY_LR
    calls = int(got["toy_calls"].item()) if "toy_calls" in got else -1
    require(calls == steps, f"{calls} ELBO evaluations for {steps} steps on a toy objective",
            "evaluate elbo_fn once per step on all points at once, not in a loop over points.",
            "loop_over_points" if calls > steps else "")
    init_after = get_value(got, "toy_init_after", (2, 6, 2), "init after the call")
    gen = torch.Generator().manual_seed(3)
    torch.rand(6, 5, generator=gen)
    init = torch.stack([torch.randn(6, 2, generator=gen), torch.randn(6, 2, generator=gen) - 1]).double()
    require(torch.equal(init_after, init), "per_point_inference changed the tensors given as init: the initial values "
            "are aliased instead of cloned.", "start from copies, e.g. init[0].detach().clone().",
            "init_modified_in_place")
    moved_mu = (get_value(got, "toy_mu", (6, 2), "mu of the toy run") - init[0]).mean().item()
    moved_logvar = (get_value(got, "toy_logvar", (6, 2), "logvar of the toy run") - init[1]).mean().item()
    moved, expected = (moved_mu + moved_logvar) / 2, lr * (steps + 1) / 2
    if abs(moved - expected) <= 0.01 * expected:
        return
    if abs(moved_logvar) < 1e-12:
        raise Fail("on a toy objective logvar never moved", "give both mu and logvar to the optimizer.",
                   "logvar_not_optimized")
    if moved < 0:
        raise Fail("on a toy objective the parameters went downhill", "minimize the loss -sum_i F_i (not +F).",
                   "elbo_minimized")
    if abs(moved - lr * steps) < 0.02 * lr * steps:
        raise Fail("on a toy objective the learning rate never decayed: the learning-rate schedule is never stepped",
                   "call schedule.step() after every optimizer.step().", "schedule_not_stepped")
    raise Fail(f"on a toy objective the parameters moved {moved / expected:.3g} times the distance of Adam with lr "
               "and a cosine decay over the steps", "use the lr you are given and CosineAnnealingLR(optimizer, steps).")


def _check_per_point_visible(got: dict, want: dict) -> str:
    P = _ppca_and_log_px()
    calls = int(got["calls"].item()) if "calls" in got else -1
    require(STEPS <= calls <= STEPS + 2, f"{calls} ELBO evaluations for {STEPS} steps",
            "evaluate elbo_fn once per step on all points at once, not in a loop over points." if calls > STEPS
            else "take `steps` optimizer steps.", "loop_over_points" if calls > STEPS else "")
    _check_toy_run(got)
    mu = get_value(got, "mu", (1000, LATENT), "per_point_inference mu")
    logvar = get_value(got, "logvar", (1000, LATENT), "per_point_inference logvar")
    gap = P["log_px"] - _linear_elbo(P["x_test64"], mu, logvar, P["W"], P["b"], P["s2"])
    zeros = torch.zeros(1000, LATENT, dtype=torch.float64)
    gap_prior = (P["log_px"] - _linear_elbo(P["x_test64"], zeros, zeros, P["W"], P["b"], P["s2"])).mean()
    if (logvar == 0).all():
        hint = "logvar never moved: give both mu and logvar to the optimizer, with requires_grad."
        diagnosis = "logvar_not_optimized"
    elif gap.mean() > gap_prior:
        hint, diagnosis = ("the ELBO got worse than at the start: minimize the loss -sum_i F_i (not +F), with a positive "
                           "learning rate.", "elbo_minimized")
    else:
        hint, diagnosis = ("not converged: use the cosine decay of the learning rate, PER_POINT_STEPS steps, starting at "
                           "the prior.", "")
    # The check cell's limits: a gap of at most 0.01 nats = KL(Q_i || posterior) bounds |dmu|/s by 0.15 and |dlogvar|
    # by 0.2; -2e-3 allows the float32 rounding of the ELBO.
    require(gap.min() >= -2e-3, f"smallest log p(x) - ELBO is {gap.min().item():.3g} < -2e-3 nats: an ELBO above log p(x) "
             "is impossible. Hint: per_point_inference must return the (mu, logvar) it optimized.", diagnosis="elbo_above_log_px")
    require(gap.max() <= 0.01, f"largest log p(x) - ELBO = KL(Q_i || posterior) is {gap.max().item():.3g} nats "
            "(at most 0.01)", hint, diagnosis)
    dmu = ((mu - P["post_mean"]) / P["post_var"].sqrt()).abs().max().item()
    require(dmu <= 0.15, f"largest |mu - posterior mean| / posterior std is {dmu:.3g} (at most 0.15)", hint, diagnosis)
    dlogvar = (logvar - P["post_var"].log()).abs().max().item()
    require(dlogvar <= 0.2, f"largest |logvar - log posterior variance| is {dlogvar:.3g} (at most 0.2)", hint, diagnosis)
    # Non-linear decoder: the student's per-point optimum against the instructor's, paired per image, within 3 SE.
    elbo_nl = _nl_evaluate(get_value(got, "mu_nl", (1000, LATENT), "mu (non-linear decoder)"),
                           get_value(got, "logvar_nl", (1000, LATENT), "logvar (non-linear decoder)"))
    diff = elbo_nl - _nl_reference()["pp"]
    se = diff.std().item() / math.sqrt(len(diff))
    require(torch.isfinite(diff).all() and diff.mean().item() >= -3 * se,
             f"on a non-linear decoder (Monte Carlo ELBO) your per-point ELBOs are {-diff.mean().item():.3g} nats/point "
             f"below the per-point optimum, more than 3 standard errors ({se:.2g}). Hint: check the sign of the loss and "
             "the cosine decay; call elbo_fn once per step.")
    return f"within {gap.max().item():.1e} nats of the exact posterior; non-linear decoder: at the per-point optimum"


def _check_per_point_hidden(got: dict, want: dict) -> str:
    W, b, s2, x = probes._random_linear(32, 200, torch.float64)
    mean, logvar_opt, best = _best_diagonal_and_elbo(x, W, b, s2)
    mu = get_value(got, "mu", (200, 3), "per_point_inference mu")
    logvar = get_value(got, "logvar", (200, 3), "per_point_inference logvar")
    gap = best - _linear_elbo(x, mu, logvar, W, b, s2)
    require(gap.min().item() >= -1e-3 and gap.max().item() <= 0.01,
             "on another linear model (full posterior covariance) the result is not within 0.01 nats of the best "
             "diagonal Q. Hint: Adam on both mu and logvar, loss -sum_i F_i, cosine decay over `steps` steps.")
    require((logvar - logvar_opt).abs().max().item() <= 0.2, "on another linear model logvar is more than 0.2 from "
             "the optimal log-variances.")
    mu_i = get_value(got, "mu_init", (200, 3), "mu when started from init")
    logvar_i = get_value(got, "logvar_init", (200, 3), "logvar when started from init")
    init = probes._hidden_init()
    require(torch.allclose(torch.cat([mu_i, logvar_i]), torch.cat(init).double(), rtol=1e-4, atol=1e-4),
            "started at init with a tiny learning rate, the result moved away.",
            "start from a copy of init when it is given.", "init_ignored")
    init_after = get_value(got, "init_after", (2, *mean.shape))
    require(torch.equal(init_after, torch.stack(init).double()),
            "per_point_inference modified init in place: clone it.", diagnosis="init_modified_in_place")
    return "right on the hidden inputs"


def _check_encoder_visible(got: dict, want: dict) -> str:
    P = _ppca_and_log_px()
    mu = get_value(got, "mu", (1000, LATENT), "Encoder mu")
    logvar = get_value(got, "logvar", (1000, LATENT), "Encoder logvar")
    elbo_enc = _linear_elbo(P["x_test64"], mu, logvar, P["W"], P["b"], P["s2"])
    zeros = torch.zeros_like(mu)
    # The per-point optimum of the linear model is the exact posterior (PPCA's is diagonal): its ELBO is log p(x).
    gap_prior = (P["log_px"] - _linear_elbo(P["x_test64"], zeros, zeros, P["W"], P["b"], P["s2"])).mean().item()
    gap = (P["log_px"] - elbo_enc).mean().item()
    if gap > gap_prior:
        hint = "the encoder is worse than Q = p(z): the loss is the mean of -ELBO over the batch (check its sign)."
    elif logvar.min() >= 0:
        hint = "logvar is never negative: remove the activation after the output layer (logvar must reach about -4.9)."
    elif gap > gap_prior / 2:
        hint = "the encoder barely trained: check the loss (mean of -ELBO over the batch), the epochs and the learning rate."
    else:
        hint = "train longer or with a higher learning rate; does forward split the output into mu and logvar correctly?"
    require((elbo_enc - P["log_px"]).max().item() <= 2e-3, "an encoder ELBO above log p(x) is impossible: does forward "
             "return (mu, logvar) in that order?")
    require(gap <= 2.0, f"linear model: amortization gap {gap:.3g} nats/point (at most 2; Q = p(z) gives "
             f"{gap_prior:.0f}). Hint: {hint}")
    # Fixed non-linear decoder: train_encoder with its defaults must close at least 90% of the gap between Q = p(z)
    # and the per-point optimum, and not beat that optimum by more than 3 standard errors (paired, 1,000 images).
    ref = _nl_reference()
    elbo_nl = _nl_evaluate(get_value(got, "mu_nl", (1000, LATENT), "mu (non-linear decoder)"),
                           get_value(got, "logvar_nl", (1000, LATENT), "logvar (non-linear decoder)"))
    diff = ref["pp"] - elbo_nl
    se = diff.std().item() / math.sqrt(len(diff))
    gap_prior_nl = (ref["pp"] - ref["prior"]).mean().item()
    closed = 1 - diff.mean().item() / gap_prior_nl
    require(diff.mean().item() >= -3 * se, "on a non-linear decoder the encoder beats per-point optimization by more "
             "than 3 standard errors, which is impossible: does forward return (mu, logvar)?")
    require(closed >= 0.9, f"train_encoder on a non-linear decoder closes {closed:.1%} of the prior's gap (at least 90%). "
             f"Hint: {hint}")
    n = int(got["forward_passes"].item()) if "forward_passes" in got else -1
    require(n == 1, f"{n} forward passes to infer Q for 1,000 new points. Hint: infer Q for all points with one call "
             "encoder(x).", diagnosis="encoder_called_per_point")
    return f"amortization gap {gap:.2f} nats/point (linear); closes {closed:.1%} of the prior's gap (non-linear)"


def _check_encoder_hidden(got: dict, want: dict) -> str:
    require(bool(got.get("is_tuple", torch.tensor(False)).item()), "Encoder's forward must return a tuple (mu, logvar).")
    mu_s = get_value(got, "mu_small", (5, 2), "Encoder(13, 7, 2) mu")
    logvar_s = get_value(got, "logvar_small", (5, 2), "Encoder(13, 7, 2) logvar")
    require(not torch.allclose(mu_s, logvar_s), "Encoder returns the same tensor as mu and logvar: split the output.")
    W, b, s2, x = probes._random_linear(33, 2500, torch.float32, skip=lambda g: torch.randn(5, 13, generator=g))
    W, b, s2, x_new = W.double(), b.double(), s2.double(), x[2000:].double()
    mean, logvar_opt, best = _best_diagonal_and_elbo(x_new, W, b, s2)
    mu = get_value(got, "mu", (500, 3), "the trained encoder's mu")
    logvar = get_value(got, "logvar", (500, 3), "the trained encoder's logvar")
    zeros = torch.zeros_like(mean)
    ratio = ((best - _linear_elbo(x_new, mu, logvar, W, b, s2)).mean()
             / (best - _linear_elbo(x_new, zeros, zeros, W, b, s2)).mean()).item()
    require(-1e-4 <= ratio <= 0.1, "train_encoder on another linear model: the amortization gap is more than 10% of "
             "the prior's gap. Hint: train.fit with loss = mean negative ELBO, a linear output layer, the given epochs, "
             "lr, batch_size, hidden_dim and seed.")
    return "right on the hidden inputs"


_ROW_KEYS = ("elbo_per_point", "elbo_encoder", "amortization_gap", "approximation_gap", "params_per_point",
             "params_encoder")


def _row_common(row: dict, prefix: str = "") -> None:
    require(bool(row.get(f"{prefix}is_dict", torch.tensor(False)).item()), "tradeoff_row must return a dict.")
    present = row.get(f"{prefix}keys_present")
    missing = [k for k, p in zip(_ROW_KEYS, present.tolist(), strict=True) if not p] if present is not None else _ROW_KEYS
    require(not missing, f"missing keys {sorted(missing)}.")
    require(bool(row[f"{prefix}numbers"].item()), "the values must be Python numbers: convert with .item() or int(...).")


def _check_tradeoff_visible(got: dict, want: dict) -> str:
    _row_common(got)
    hints = {"amortization_gap": "per-point ELBO minus encoder ELBO: the gap is >= 0.",
             "approximation_gap": "log p(x) minus the per-point ELBO.",
             "params_per_point": "mu_i and log sigma^2_i: 2 d numbers for every one of the n_points points.",
             "params_encoder": "count the biases too: every element of every parameter tensor."}
    if got["approximation_gap"].item() == 0:
        raise Fail("approximation_gap is 0, expected 0.6", "the approximation gap is hard-coded to 0: compute log p(x) "
                   "minus the per-point ELBO.", "approximation_gap_hard_coded")
    if not bool(got["nan_float"].item()):
        raise Fail("without log p(x) the approximation gap must be float('nan')",
                   "do not hard-code 0, return NaN." if bool(got["zero_when_unknown"].item()) else "",
                   "approximation_gap_hard_coded" if bool(got["zero_when_unknown"].item()) else "")
    for key in _ROW_KEYS:  # the visible example: the expected numbers are known by construction (3.0, 0.6, 300, 74)
        g, w = got[key].item(), want[key].item()
        exact = key.startswith("params")
        if not (g == w if exact else math.isclose(g, w, rel_tol=1e-6, abs_tol=1e-8)):
            raise Fail(f"{key} is {g:g}, expected {w:g}" + (f". Hint: {hints[key]}" if key in hints else ""))
    return "right on the visible example"


def _check_tradeoff_hidden(got: dict, want: dict) -> str:
    for prefix in ("unknown.", "known."):
        _row_common(got, prefix)
    require(bool(got["nan_float"].item()), "approximation_gap must be the float NaN when log_px is None.")
    for prefix in ("unknown.", "known."):
        for key in _ROW_KEYS:
            name = prefix + key
            if key == "approximation_gap" and prefix == "unknown.":
                continue
            ok = torch.allclose(got[name].double(), want[name].double(), rtol=1e-9, atol=1e-9)
            require(bool(ok), f"{key} is wrong on the hidden inputs"
                     + (" (count every element of every parameter tensor, biases included)" if key == "params_encoder"
                        else " (2 d numbers for each of the n_points points)" if key == "params_per_point" else ""))
    return "right on the hidden inputs"


def _semi_elbos(got: dict, ks: list[int], x, W, b, s2) -> list[float]:
    out = []
    for k in ks:
        mu = get_value(got, f"mu_{k}", (len(x), W.shape[1]), f"semi_amortized[{k}] mu")
        logvar = get_value(got, f"logvar_{k}", (len(x), W.shape[1]), f"semi_amortized[{k}] logvar")
        out.append(_linear_elbo(x, mu, logvar, W, b, s2).mean().item())
    return out


def _check_semi_visible(got: dict, want: dict) -> str:
    P = _ppca_and_log_px()
    require(bool(got["is_dict"].item()), "semi_amortized must return a dict {K: (mu, logvar)}.")
    require(bool(got["keys"].all().item()), "semi_amortized must return one entry per K in ks.")
    enc = torch.cat([get_value(got, "encoder_mu"), get_value(got, "encoder_logvar")])
    k0 = torch.cat([get_value(got, "mu_0", (1000, LATENT)), get_value(got, "logvar_0", (1000, LATENT))])
    require(torch.allclose(k0, enc, rtol=1e-6, atol=1e-6), "K = 0 must be the encoder's output. Hint: K = 0 means no "
             "step: return the encoder's mu and logvar.", diagnosis="k0_not_encoder_output")
    if "toy_together_0" in got:
        require(torch.allclose(got["toy_together_5"], got["toy_alone_5"], rtol=1e-5, atol=1e-6),
                "on a toy problem the result for K = 5 depends on the other K asked for: the refinement accumulates "
                "steps across K.", "run a separate per_point_inference of K steps for each K, each from the "
                "encoder's output (and never modify that output in place).", "steps_accumulated_across_k")
    calls = int(got["calls"].item())
    require(sum(K_VALUES) <= calls <= sum(K_VALUES) + 2 * len(K_VALUES), f"{calls} ELBO evaluations for K in "
             f"{K_VALUES} (expected {sum(K_VALUES)}). Hint: one per_point_inference of K steps for each K.")
    elbos = _semi_elbos(got, K_VALUES, P["x_test64"], P["W"], P["b"], P["s2"])
    log_px = P["log_px"].mean().item()
    gaps = [log_px - e for e in elbos]  # the per-point optimum of PPCA is the exact posterior: its ELBO is log p(x)
    hint = "start from the encoder's output (init=...), not from the prior, with a small lr."
    r10, r100 = gaps[K_VALUES.index(10)] / gaps[0], gaps[-1] / gaps[0]
    require(-0.01 <= r10 <= 1.0, f"gap after 10 steps / gap after 0 is {r10:.3g} (at most 1). Hint: {hint}")
    require(-0.01 <= r100 <= 0.1, f"gap after 100 steps / gap after 0 is {r100:.3g} (at most 0.1). Hint: {hint}")
    return f"100 steps close {1 - r100:.1%} of the amortization gap"


def _check_semi_hidden(got: dict, want: dict) -> str:
    require(bool(got["is_dict"].item()) and bool(got["same_keys"].item()),
             "semi_amortized must return one entry per K in ks (and no others).")
    W, b, s2, x = (t.double() for t in probes._semi_hidden_model())
    x_new = x[1000:]
    f = _semi_elbos(got, [0, 3, 30], x_new, W, b, s2)
    f_enc = _linear_elbo(x_new, get_value(got, "encoder_mu"), get_value(got, "encoder_logvar"), W, b, s2).mean().item()
    require(math.isclose(f[0], f_enc, rel_tol=1e-6, abs_tol=1e-6), "K = 0 on another model is not the encoder's output.")
    require(f[1] - f[0] >= -1e-3, "the ELBO got worse after 3 steps. Hint: start from the encoder's output (init=...), "
             "not from the prior.")
    require(f[2] - f[1] >= -1e-3, "the ELBO got worse from 3 to 30 steps.")
    return "right on the hidden inputs"


JUDGES = {
    "ex3_1a_visible": criteria("linear_elbo", _check_linear_elbo_visible),
    "ex3_1a_hidden": criteria("linear_elbo", _check_linear_elbo_hidden),
    "ex3_1b_visible": criteria("per_point_inference", _check_per_point_visible),
    "ex3_1b_hidden": criteria("per_point_inference", _check_per_point_hidden),
    "ex3_2_visible": criteria("Encoder / train_encoder", _check_encoder_visible),
    "ex3_2_hidden": criteria("Encoder / train_encoder", _check_encoder_hidden),
    "ex3_3_visible": criteria("tradeoff_row", _check_tradeoff_visible),
    "ex3_3_hidden": criteria("tradeoff_row", _check_tradeoff_hidden),
    "ex3_4_visible": criteria("semi_amortized", _check_semi_visible),
    "ex3_4_hidden": criteria("semi_amortized", _check_semi_hidden),
}

