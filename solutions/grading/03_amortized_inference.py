"""Hidden tests for 03_amortized_inference (instructor material: never released to students).

PROBES run in the student's kernel and only return tensors; JUDGES run in the trusted grader and never call student
code. Every model the probes and judges use is rebuilt here from the offline MNIST set or from a seed: the probabilistic
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

import contextlib
import math

import torch

from instructor.grading.judge import Fail, criteria, get_value

LATENT = 8
STEPS, LR = 300, 0.3  # the notebook's PER_POINT_STEPS, PER_POINT_LR
K_VALUES, SEMI_LR = [0, 1, 2, 5, 10, 20, 50, 100], 0.02
EVAL_SAMPLES = 25
_CACHE: dict = {}


# ---- models shared by probes (in the kernel) and judges (trusted) ---------------------------------------------------
def _ppca() -> dict:
    """The notebook's data and PPCA fit: W (D, d), b (D,), s2 (0-d), float64; x_test (1000, D) float32; CPU."""
    if "ppca" not in _CACHE:
        from utils import data

        x_train, _ = data.load_mnist(split="train", flatten=True)
        x_test, _ = data.load_mnist(split="test", flatten=True)
        x = x_train.double()
        b = x.mean(0)
        cov = (x - b).T @ (x - b) / len(x)
        values, vectors = torch.linalg.eigh(cov)
        values, vectors = values.flip(0), vectors.flip(1)
        s2 = values[LATENT:].mean()
        W = vectors[:, :LATENT] * (values[:LATENT] - s2).sqrt()
        M_inv = torch.linalg.inv(W.T @ W + s2 * torch.eye(LATENT, dtype=W.dtype))
        x64 = x_test.double()
        _CACHE["ppca"] = {"W": W, "b": b, "s2": s2, "x_train": x_train, "x_test": x_test, "x_test64": x64,
                          "post_mean": (x64 - b) @ W @ M_inv.T, "post_var": (s2 * M_inv).diagonal(),
                          "log_px": _log_marginal(x64, W, b, s2)}
    return _CACHE["ppca"]


def _log_marginal(x, W, b, s2):
    D, d = W.shape
    M = W.T @ W + s2 * torch.eye(d, dtype=W.dtype)
    r = x - b
    r_W = r @ W
    quadratic = ((r * r).sum(-1) - (r_W @ torch.linalg.inv(M) * r_W).sum(-1)) / s2
    return -0.5 * (D * math.log(2 * math.pi) + (D - d) * torch.log(s2) + torch.logdet(M) + quadratic)


def _kl(mu, logvar):
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(-1)


def _linear_elbo(x, mu, logvar, W, b, s2):
    """The closed-form ELBO of the linear-Gaussian model (instructor code), (N,)."""
    r = x - b - mu @ W.T
    spread = (logvar.exp() * (W * W).sum(0)).sum(-1)
    return -0.5 * x.shape[-1] * torch.log(2 * math.pi * s2) - 0.5 * ((r * r).sum(-1) + spread) / s2 - _kl(mu, logvar)


def _linear_fn(dtype=torch.float32):
    """elbo_fn(x, mu, logvar) of the notebook's PPCA model, parameters in `dtype` (float32 like W_dev)."""
    P = _ppca()
    W, b, s2 = P["W"].to(dtype), P["b"].to(dtype), P["s2"].to(dtype)
    return lambda x, mu, logvar: _linear_elbo(x, mu, logvar, W, b, s2)


def _nl_mean(z, W, b):
    return torch.sigmoid(6 * (b + z @ W.T) - 3)


def _nl_elbo(x, mu, logvar, W, b, s2, n_samples=1, generator=None):
    """Monte Carlo ELBO of the fixed non-linear decoder p(x|z) = N(sigmoid(6 (b + W z) - 3), s2 I), (N,)."""
    total = 0.0
    for _ in range(n_samples):
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
        mean = _nl_mean(mu + (0.5 * logvar).exp() * eps, W, b)
        total = total - 0.5 * (x.shape[-1] * torch.log(2 * math.pi * s2) + ((x - mean) ** 2).sum(-1) / s2)
    return total / n_samples - _kl(mu, logvar)


def _nl_fn():
    """elbo_fn(x, mu, logvar) of the fixed non-linear decoder, one sample (torch's global generator), float32."""
    P = _ppca()
    W, b, s2 = P["W"].float(), P["b"].float(), P["s2"].float()
    return lambda x, mu, logvar: _nl_elbo(x, mu, logvar, W, b, s2)


def _nl_evaluate(mu, logvar) -> torch.Tensor:
    """25-sample ELBO (float64) of the held-out images under the fixed non-linear decoder, common random numbers."""
    P = _ppca()
    with torch.no_grad():
        return _nl_elbo(P["x_test64"], mu.double(), logvar.double(), P["W"], P["b"], P["s2"], EVAL_SAMPLES,
                        torch.Generator().manual_seed(1234))


def _nl_reference() -> dict:
    """Trusted side: the instructor's per-point optimum for the non-linear decoder (Adam + cosine, 300 steps from the
    prior, like the notebook) and the prior's ELBO, on the held-out images; computed once per grading process."""
    if "nl_reference" not in _CACHE:
        P = _ppca()
        x = P["x_test"]
        mu = torch.zeros(len(x), LATENT, requires_grad=True)
        logvar = torch.zeros(len(x), LATENT, requires_grad=True)
        optimizer = torch.optim.Adam([mu, logvar], lr=LR)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, STEPS)
        fn = _nl_fn()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(2027)
            for _ in range(STEPS):
                loss = -fn(x, mu, logvar).sum()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
        zeros = torch.zeros(len(x), LATENT)
        _CACHE["nl_reference"] = {"pp": _nl_evaluate(mu.detach(), logvar.detach()), "prior": _nl_evaluate(zeros, zeros)}
    return _CACHE["nl_reference"]


def _random_linear(seed: int, n: int, dtype, skip=None):
    """The hidden checks' random linear model: D = 20, d = 3, W = 0.7 randn, b = rand, s2 = 0.1, n points.

    `skip(gen)` draws whatever the check cell draws from the generator first (so the numbers are the same)."""
    gen = torch.Generator().manual_seed(seed)
    if skip is not None:
        skip(gen)
    W = 0.7 * torch.randn(20, 3, generator=gen, dtype=dtype)
    b = torch.rand(20, generator=gen, dtype=dtype)
    s2 = torch.tensor(0.1, dtype=dtype)
    x = torch.randn(n, 3, generator=gen, dtype=dtype) @ W.T + b + s2.sqrt() * torch.randn(n, 20, generator=gen,
                                                                                           dtype=dtype)
    return W, b, s2, x


def _best_diagonal(x, W, b, s2):
    """Mean-field optimum of the linear model: the posterior mean and variances 1 / P_jj; and its ELBO."""
    M_inv = torch.linalg.inv(W.T @ W + s2 * torch.eye(W.shape[1], dtype=W.dtype))
    mean = (x - b) @ W @ M_inv.T
    logvar = (1 / torch.linalg.inv(s2 * M_inv).diagonal()).log().expand(len(x), -1)
    return mean, logvar, _linear_elbo(x, mean, logvar, W, b, s2)


def _f64(value) -> torch.Tensor:
    return torch.tensor(float(value), dtype=torch.float64)


class _Counter:
    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


# ---- probes ---------------------------------------------------------------------------------------------------------
def probe_linear_elbo_visible(ns: dict) -> dict:
    """The visible check's inputs: 200 held-out images at the exact posterior (float64)."""
    P = _ppca()
    mu = P["post_mean"][:200].clone().requires_grad_(True)
    logvar = P["post_var"].log().expand(200, -1).clone().requires_grad_(True)
    elbo = ns["linear_elbo"](P["x_test64"][:200].clone(), mu, logvar, P["W"].clone(), P["b"].clone(), P["s2"].clone())
    out = {"elbo": elbo}
    if isinstance(elbo, torch.Tensor) and elbo.shape == (200,) and elbo.requires_grad:
        grad_mu, grad_logvar = torch.autograd.grad(elbo.sum(), (mu, logvar))
        out["largest_gradient"] = max(grad_mu.abs().max(), grad_logvar.abs().max())
    return out


def probe_linear_elbo_hidden(ns: dict) -> dict:
    """A random linear model whose W is not orthogonal (full posterior covariance), random Q, float64; and one point
    in a larger latent space, in float32."""
    gen = torch.Generator().manual_seed(31)
    W = torch.randn(12, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(12, generator=gen, dtype=torch.float64)
    s2 = torch.tensor(0.3, dtype=torch.float64)
    x = 2 * torch.randn(50, 12, generator=gen, dtype=torch.float64) + b
    mu = torch.randn(50, 3, generator=gen, dtype=torch.float64)
    logvar = torch.randn(50, 3, generator=gen, dtype=torch.float64) - 1
    W1, b1 = torch.randn(30, 6, generator=gen), torch.rand(30, generator=gen)
    x1, mu1, logvar1 = torch.rand(1, 30, generator=gen), torch.randn(1, 6, generator=gen), torch.randn(1, 6, generator=gen)
    return {"random_model": ns["linear_elbo"](x, mu, logvar, W, b, s2),
            "one_point_float32": ns["linear_elbo"](x1, mu1, logvar1, W1, b1, torch.tensor(0.05))}


def probe_per_point_visible(ns: dict) -> dict:
    """per_point_inference on the 1,000 held-out images: PPCA (exact ELBO, counted) and the fixed non-linear decoder."""
    P = _ppca()
    counter = _Counter(_linear_fn())
    torch.manual_seed(0)
    mu, logvar = ns["per_point_inference"](counter, P["x_test"].clone(), LATENT, steps=STEPS, lr=LR)
    torch.manual_seed(0)
    mu_nl, logvar_nl = ns["per_point_inference"](_nl_fn(), P["x_test"].clone(), LATENT, steps=STEPS, lr=LR)
    return {"calls": counter.calls, "mu": mu, "logvar": logvar, "mu_nl": mu_nl, "logvar_nl": logvar_nl}


def probe_per_point_hidden(ns: dict) -> dict:
    """The hidden check's random linear model (full posterior covariance), and init: start there, leave it unchanged."""
    W, b, s2, x = _random_linear(32, 200, torch.float64)
    mean, logvar_opt, _ = _best_diagonal(x, W, b, s2)
    W32, b32, s232 = W.float(), b.float(), s2.float()

    def elbo_fn(x_, mu, logvar):
        return _linear_elbo(x_, mu, logvar, W32, b32, s232)

    torch.manual_seed(5)
    mu, logvar = ns["per_point_inference"](elbo_fn, x.float(), 3, steps=STEPS, lr=LR)
    init = (mean.float(), logvar_opt.float().contiguous())
    copy = tuple(t.clone() for t in init)
    mu_i, logvar_i = ns["per_point_inference"](elbo_fn, x.float(), 3, steps=2, lr=1e-6, init=init)
    return {"mu": mu, "logvar": logvar, "mu_init": mu_i, "logvar_init": logvar_i,
            "init_unchanged": all(torch.equal(a, c) for a, c in zip(init, copy, strict=True))}


def probe_encoder_visible(ns: dict) -> dict:
    """The student's trained encoder_linear on the held-out images (one forward pass, counted), and train_encoder with
    its defaults on the fixed non-linear decoder."""
    P = _ppca()
    encoder = ns["encoder_linear"]
    calls = [0]
    handle = encoder.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        with torch.no_grad():
            mu, logvar = encoder(P["x_test"].clone())
    finally:
        handle.remove()
    encoder_nl, _ = ns["train_encoder"](_nl_fn(), P["x_train"].clone(), LATENT)
    with torch.no_grad():
        mu_nl, logvar_nl = encoder_nl(P["x_test"].clone())
    return {"forward_passes": calls[0], "mu": mu, "logvar": logvar, "mu_nl": mu_nl, "logvar_nl": logvar_nl}


def probe_encoder_hidden(ns: dict) -> dict:
    """Encoder(13, 7, 2) shapes; train_encoder on the hidden check's random linear model, outputs on 500 new points."""
    gen = torch.Generator().manual_seed(33)
    torch.manual_seed(33)
    out = ns["Encoder"](13, 7, 2)(torch.randn(5, 13, generator=gen))
    values = {"is_tuple": isinstance(out, tuple)}
    if isinstance(out, tuple) and len(out) == 2:
        values.update(mu_small=out[0], logvar_small=out[1])
    W, b, s2, x = _random_linear(33, 2500, torch.float32, skip=lambda g: torch.randn(5, 13, generator=g))
    encoder, _ = ns["train_encoder"](lambda x_, mu, lv: _linear_elbo(x_, mu, lv, W, b, s2), x[:2000].clone(), 3,
                                     hidden_dim=32, epochs=20, seed=7)
    with torch.no_grad():
        mu, logvar = encoder(x[2000:].clone())
    return {**values, "mu": mu, "logvar": logvar}


def _row(ns: dict, *args, **kwargs) -> dict:
    row = ns["tradeoff_row"](*args, **kwargs)
    if not isinstance(row, dict):
        return {"is_dict": False}
    keys = ("elbo_per_point", "elbo_encoder", "amortization_gap", "approximation_gap", "params_per_point",
            "params_encoder")
    out = {"is_dict": True, "keys_present": torch.tensor([k in row for k in keys]), "numbers": all(
        isinstance(v, (int, float)) for v in row.values())}
    for k in keys:
        if k in row:
            with contextlib.suppress(TypeError, ValueError, RuntimeError):
                out[k] = _f64(row[k])
    return out


def probe_tradeoff_visible(ns: dict) -> dict:
    """The visible check's inputs, answers known by construction."""
    log_px = torch.tensor([-3.0, 10.0, 2.5])
    elbo_pp = log_px - torch.tensor([0.5, 0.6, 0.7])
    elbo_enc = elbo_pp - torch.tensor([1.0, 2.0, 6.0])
    torch.manual_seed(0)
    toy = torch.nn.Sequential(torch.nn.Linear(10, 4), torch.nn.ReLU(), torch.nn.Linear(4, 6))
    return _row(ns, elbo_pp, elbo_enc, n_points=50, latent_dim=3, encoder=toy, log_px=log_px)


def probe_tradeoff_hidden(ns: dict) -> dict:
    """Other inputs, float64, without log p(x) (the approximation gap is unknown), a deeper encoder with a bias-free
    layer; and a second row with log p(x) and n_points different from the number of ELBOs."""
    gen = torch.Generator().manual_seed(34)
    pp = 10 * torch.randn(40, generator=gen, dtype=torch.float64)
    enc = pp - torch.rand(40, generator=gen, dtype=torch.float64) * 4
    torch.manual_seed(34)
    net = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3),
                              torch.nn.Linear(3, 2, bias=False))
    unknown = _row(ns, pp, enc, n_points=123, latent_dim=5, encoder=net)
    row = ns["tradeoff_row"](pp, enc, n_points=123, latent_dim=5, encoder=net)
    gap = row.get("approximation_gap") if isinstance(row, dict) else None
    log_px = pp + torch.rand(40, generator=gen, dtype=torch.float64)
    known = _row(ns, pp[:10], enc[:10], n_points=4000, latent_dim=2, encoder=net, log_px=log_px[:10])
    return {"unknown": unknown, "nan_float": isinstance(gap, float) and math.isnan(gap), "known": known}


def probe_semi_visible(ns: dict) -> dict:
    """semi_amortized from the student's encoder_linear on the held-out images, counted; the K = 0 reference output."""
    P = _ppca()
    encoder = ns["encoder_linear"]
    counter = _Counter(_linear_fn())
    torch.manual_seed(0)
    semi = ns["semi_amortized"](encoder, counter, P["x_test"].clone(), list(K_VALUES), lr=SEMI_LR)
    with torch.no_grad():
        mu0, logvar0 = encoder(P["x_test"].clone())
    out = {"calls": counter.calls, "encoder_mu": mu0, "encoder_logvar": logvar0, "is_dict": isinstance(semi, dict)}
    if isinstance(semi, dict):
        out["keys"] = torch.tensor([k in semi for k in K_VALUES])
        for k in K_VALUES:
            if k in semi:
                out[f"mu_{k}"], out[f"logvar_{k}"] = semi[k]
    return out


def _semi_hidden_model():
    W, b, s2, x = _random_linear(35, 1200, torch.float32)
    return W, b, s2, x


def probe_semi_hidden(ns: dict) -> dict:
    """The hidden check's recipe: an encoder trained briefly (150 Adam steps) on a random linear model, other K."""
    W, b, s2, x = _semi_hidden_model()

    def elbo_fn(x_, mu, logvar):
        return _linear_elbo(x_, mu, logvar, W, b, s2)

    torch.manual_seed(8)
    net = torch.nn.Sequential(torch.nn.Linear(20, 16), torch.nn.ReLU(), torch.nn.Linear(16, 6))
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(150):
        loss = -elbo_fn(x[:1000], *net(x[:1000]).chunk(2, -1)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    net.requires_grad_(False)

    class SplitEncoder(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x_):
            return tuple(self.inner(x_).chunk(2, -1))

    ks = [0, 3, 30]
    semi = ns["semi_amortized"](SplitEncoder(net), elbo_fn, x[1000:].clone(), list(ks), lr=0.02)
    with torch.no_grad():
        mu0, logvar0 = net(x[1000:]).chunk(2, -1)
    out = {"encoder_mu": mu0, "encoder_logvar": logvar0, "is_dict": isinstance(semi, dict)}
    if isinstance(semi, dict):
        out["same_keys"] = sorted(semi) == ks
        for k in ks:
            if k in semi:
                out[f"mu_{k}"], out[f"logvar_{k}"] = semi[k]
    return out


PROBES = {
    "ex3_1a_visible": probe_linear_elbo_visible,
    "ex3_1a_hidden": probe_linear_elbo_hidden,
    "ex3_1b_visible": probe_per_point_visible,
    "ex3_1b_hidden": probe_per_point_hidden,
    "ex3_2_visible": probe_encoder_visible,
    "ex3_2_hidden": probe_encoder_hidden,
    "ex3_3_visible": probe_tradeoff_visible,
    "ex3_3_hidden": probe_tradeoff_hidden,
    "ex3_4_visible": probe_semi_visible,
    "ex3_4_hidden": probe_semi_hidden,
}


# ---- judges (trusted) -----------------------------------------------------------------------------------------------
def _require(condition: bool, message: str) -> None:
    if not condition:
        raise Fail(message)


def _check_linear_elbo_visible(got: dict, want: dict) -> str:
    P = _ppca()
    if "elbo" in got and tuple(got["elbo"].shape) != (200,):
        raise Fail(f"the result has shape {tuple(got['elbo'].shape)} for 200 points, expected (200,). Hint: one ELBO "
                    "per data point: sum over pixels and latent dimensions, not over the points.")
    elbo = get_value(got, "elbo", (200,), "linear_elbo's result")
    log_px = P["log_px"][:200]
    mu, logvar = P["post_mean"][:200], P["post_var"].log().expand(200, -1)
    w2 = (P["W"] ** 2).sum(0)
    kl_prior = _kl(mu, logvar)
    spread = (logvar.exp() * w2).sum(-1) / (2 * P["s2"])
    logvar_term = (logvar * w2).sum(-1) / (2 * P["s2"])
    if not torch.allclose(elbo, log_px, rtol=1e-9, atol=1e-6):
        variants = {"the KL term is added instead of subtracted.": log_px + 2 * kl_prior,
                    "the variance term sum_j s_j^2 ||w_j||^2 is missing.": log_px + spread,
                    "log(s^2) is used where the variance s^2 = exp(logvar) belongs.": log_px + spread - logvar_term}
        named = [why for why, v in variants.items() if torch.allclose(elbo, v, rtol=1e-4, atol=1e-8)]
        offset = (elbo - log_px).mean()
        if not named and torch.allclose(elbo - offset, log_px, rtol=1e-6, atol=1e-4):
            named = ["off by a constant: check the -D/2 log(2 pi sigma2) term."]
        raise Fail(f"at the exact posterior the ELBO must equal log p(x); largest difference "
                    f"{(elbo - log_px).abs().max().item():.3g} nats. Hint: "
                    + (named[0] if named else "compare your terms with the formula, term by term."))
    grad = got.get("largest_gradient")
    _require(grad is not None, "the result carries no gradient to mu and logvar: compute it with torch operations.")
    _require(0 <= grad.item() <= 1e-6, f"largest |dF/d(mu, logvar)| at the posterior is {grad.item():.3g}, above 1e-6. "
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


def _check_per_point_visible(got: dict, want: dict) -> str:
    P = _ppca()
    calls = int(got["calls"].item()) if "calls" in got else -1
    _require(STEPS <= calls <= STEPS + 2, f"{calls} ELBO evaluations for {STEPS} steps. Hint: " + (
        "evaluate elbo_fn once per step on all points at once, not in a loop over points." if calls > STEPS
        else "take `steps` optimizer steps."))
    mu = get_value(got, "mu", (1000, LATENT), "per_point_inference mu")
    logvar = get_value(got, "logvar", (1000, LATENT), "per_point_inference logvar")
    gap = P["log_px"] - _linear_elbo(P["x_test64"], mu, logvar, P["W"], P["b"], P["s2"])
    zeros = torch.zeros(1000, LATENT, dtype=torch.float64)
    gap_prior = (P["log_px"] - _linear_elbo(P["x_test64"], zeros, zeros, P["W"], P["b"], P["s2"])).mean()
    if (logvar == 0).all():
        hint = "logvar never moved: give both mu and logvar to the optimizer, with requires_grad."
    elif gap.mean() > gap_prior:
        hint = "the ELBO got worse than at the start: minimize the loss -sum_i F_i (not +F), with a positive learning rate."
    else:
        hint = "not converged: use the cosine decay of the learning rate, PER_POINT_STEPS steps, starting at the prior."
    # The check cell's limits: a gap of at most 0.01 nats = KL(Q_i || posterior) bounds |dmu|/s by 0.15 and |dlogvar|
    # by 0.2; -2e-3 allows the float32 rounding of the ELBO.
    _require(gap.min() >= -2e-3, f"smallest log p(x) - ELBO is {gap.min().item():.3g} < -2e-3 nats: an ELBO above log p(x) "
             "is impossible. Hint: per_point_inference must return the (mu, logvar) it optimized.")
    _require(gap.max() <= 0.01, f"largest log p(x) - ELBO = KL(Q_i || posterior) is {gap.max().item():.3g} nats "
             f"(at most 0.01). Hint: {hint}")
    dmu = ((mu - P["post_mean"]) / P["post_var"].sqrt()).abs().max().item()
    _require(dmu <= 0.15, f"largest |mu - posterior mean| / posterior std is {dmu:.3g} (at most 0.15). Hint: {hint}")
    dlogvar = (logvar - P["post_var"].log()).abs().max().item()
    _require(dlogvar <= 0.2, f"largest |logvar - log posterior variance| is {dlogvar:.3g} (at most 0.2). Hint: {hint}")
    # Non-linear decoder: the student's per-point optimum against the instructor's, paired per image, within 3 SE.
    elbo_nl = _nl_evaluate(get_value(got, "mu_nl", (1000, LATENT), "mu (non-linear decoder)"),
                           get_value(got, "logvar_nl", (1000, LATENT), "logvar (non-linear decoder)"))
    diff = elbo_nl - _nl_reference()["pp"]
    se = diff.std().item() / math.sqrt(len(diff))
    _require(torch.isfinite(diff).all() and diff.mean().item() >= -3 * se,
             f"on a non-linear decoder (Monte Carlo ELBO) your per-point ELBOs are {-diff.mean().item():.3g} nats/point "
             f"below the per-point optimum, more than 3 standard errors ({se:.2g}). Hint: check the sign of the loss and "
             "the cosine decay; call elbo_fn once per step.")
    return f"within {gap.max().item():.1e} nats of the exact posterior; non-linear decoder: at the per-point optimum"


def _check_per_point_hidden(got: dict, want: dict) -> str:
    W, b, s2, x = _random_linear(32, 200, torch.float64)
    mean, logvar_opt, best = _best_diagonal(x, W, b, s2)
    mu = get_value(got, "mu", (200, 3), "per_point_inference mu")
    logvar = get_value(got, "logvar", (200, 3), "per_point_inference logvar")
    gap = best - _linear_elbo(x, mu, logvar, W, b, s2)
    _require(gap.min().item() >= -1e-3 and gap.max().item() <= 0.01,
             "on another linear model (full posterior covariance) the result is not within 0.01 nats of the best "
             "diagonal Q. Hint: Adam on both mu and logvar, loss -sum_i F_i, cosine decay over `steps` steps.")
    _require((logvar - logvar_opt).abs().max().item() <= 0.2, "on another linear model logvar is more than 0.2 from "
             "the optimal log-variances.")
    mu_i = get_value(got, "mu_init", (200, 3), "mu when started from init")
    logvar_i = get_value(got, "logvar_init", (200, 3), "logvar when started from init")
    _require(torch.allclose(torch.cat([mu_i, logvar_i]), torch.cat([mean, logvar_opt]).float().double(), rtol=1e-4,
                            atol=1e-4), "started at the optimum with a tiny learning rate, the result moved away. "
             "Hint: start from a copy of init when it is given.")
    _require(bool(got.get("init_unchanged", torch.tensor(False)).item()),
             "per_point_inference modified init in place: clone it.")
    return "right on the hidden inputs"


def _check_encoder_visible(got: dict, want: dict) -> str:
    P = _ppca()
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
        hint = "logvar is never negative: remove the activation after the output layer (logvar must reach about -4.5)."
    elif gap > gap_prior / 2:
        hint = "the encoder barely trained: check the loss (mean of -ELBO over the batch), the epochs and the learning rate."
    else:
        hint = "train longer or with a higher learning rate; does forward split the output into mu and logvar correctly?"
    _require((elbo_enc - P["log_px"]).max().item() <= 2e-3, "an encoder ELBO above log p(x) is impossible: does forward "
             "return (mu, logvar) in that order?")
    _require(gap <= 2.0, f"linear model: amortization gap {gap:.3g} nats/point (at most 2; Q = p(z) gives "
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
    _require(diff.mean().item() >= -3 * se, "on a non-linear decoder the encoder beats per-point optimization by more "
             "than 3 standard errors, which is impossible: does forward return (mu, logvar)?")
    _require(closed >= 0.9, f"train_encoder on a non-linear decoder closes {closed:.1%} of the prior's gap (at least 90%). "
             f"Hint: {hint}")
    n = int(got["forward_passes"].item()) if "forward_passes" in got else -1
    _require(n == 1, f"{n} forward passes to infer Q for 1,000 new points. Hint: infer Q for all points with one call "
             "encoder(x).")
    return f"amortization gap {gap:.2f} nats/point (linear); closes {closed:.1%} of the prior's gap (non-linear)"


def _check_encoder_hidden(got: dict, want: dict) -> str:
    _require(bool(got.get("is_tuple", torch.tensor(False)).item()), "Encoder's forward must return a tuple (mu, logvar).")
    mu_s = get_value(got, "mu_small", (5, 2), "Encoder(13, 7, 2) mu")
    logvar_s = get_value(got, "logvar_small", (5, 2), "Encoder(13, 7, 2) logvar")
    _require(not torch.allclose(mu_s, logvar_s), "Encoder returns the same tensor as mu and logvar: split the output.")
    W, b, s2, x = _random_linear(33, 2500, torch.float32, skip=lambda g: torch.randn(5, 13, generator=g))
    W, b, s2, x_new = W.double(), b.double(), s2.double(), x[2000:].double()
    mean, logvar_opt, best = _best_diagonal(x_new, W, b, s2)
    mu = get_value(got, "mu", (500, 3), "the trained encoder's mu")
    logvar = get_value(got, "logvar", (500, 3), "the trained encoder's logvar")
    zeros = torch.zeros_like(mean)
    ratio = ((best - _linear_elbo(x_new, mu, logvar, W, b, s2)).mean()
             / (best - _linear_elbo(x_new, zeros, zeros, W, b, s2)).mean()).item()
    _require(-1e-4 <= ratio <= 0.1, "train_encoder on another linear model: the amortization gap is more than 10% of "
             "the prior's gap. Hint: train.fit with loss = mean negative ELBO, a linear output layer, the given epochs, "
             "lr, batch_size, hidden_dim and seed.")
    return "right on the hidden inputs"


_ROW_KEYS = ("elbo_per_point", "elbo_encoder", "amortization_gap", "approximation_gap", "params_per_point",
             "params_encoder")


def _row_common(row: dict, prefix: str = "") -> None:
    _require(bool(row.get(f"{prefix}is_dict", torch.tensor(False)).item()), "tradeoff_row must return a dict.")
    present = row.get(f"{prefix}keys_present")
    missing = [k for k, p in zip(_ROW_KEYS, present.tolist(), strict=True) if not p] if present is not None else _ROW_KEYS
    _require(not missing, f"missing keys {sorted(missing)}.")
    _require(bool(row[f"{prefix}numbers"].item()), "the values must be Python numbers: convert with .item() or int(...).")


def _check_tradeoff_visible(got: dict, want: dict) -> str:
    _row_common(got)
    hints = {"amortization_gap": "per-point ELBO minus encoder ELBO: the gap is >= 0.",
             "approximation_gap": "log p(x) minus the per-point ELBO.",
             "params_per_point": "mu_i and log sigma^2_i: 2 d numbers for every one of the n_points points.",
             "params_encoder": "count the biases too: sum(p.numel() for p in encoder.parameters())."}
    for key in _ROW_KEYS:  # the visible example: the expected numbers are known by construction (3.0, 0.6, 300, 74)
        g, w = got[key].item(), want[key].item()
        exact = key.startswith("params")
        if not (g == w if exact else math.isclose(g, w, rel_tol=1e-6, abs_tol=1e-8)):
            raise Fail(f"{key} is {g:g}, expected {w:g}" + (f". Hint: {hints[key]}" if key in hints else ""))
    return "right on the visible example"


def _check_tradeoff_hidden(got: dict, want: dict) -> str:
    for prefix in ("unknown.", "known."):
        _row_common(got, prefix)
    _require(bool(got["nan_float"].item()), "approximation_gap must be the float NaN when log_px is None.")
    for prefix in ("unknown.", "known."):
        for key in _ROW_KEYS:
            name = prefix + key
            if key == "approximation_gap" and prefix == "unknown.":
                continue
            ok = torch.allclose(got[name].double(), want[name].double(), rtol=1e-9, atol=1e-9)
            _require(bool(ok), f"{key} is wrong on the hidden inputs"
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
    P = _ppca()
    _require(bool(got["is_dict"].item()), "semi_amortized must return a dict {K: (mu, logvar)}.")
    _require(bool(got["keys"].all().item()), "semi_amortized must return one entry per K in ks.")
    enc = torch.cat([get_value(got, "encoder_mu"), get_value(got, "encoder_logvar")])
    k0 = torch.cat([get_value(got, "mu_0", (1000, LATENT)), get_value(got, "logvar_0", (1000, LATENT))])
    _require(torch.allclose(k0, enc, rtol=1e-6, atol=1e-6), "K = 0 must be the encoder's output. Hint: K = 0 means no "
             "step: return the encoder's mu and logvar.")
    calls = int(got["calls"].item())
    _require(sum(K_VALUES) <= calls <= sum(K_VALUES) + 2 * len(K_VALUES), f"{calls} ELBO evaluations for K in "
             f"{K_VALUES} (expected {sum(K_VALUES)}). Hint: one per_point_inference of K steps for each K.")
    elbos = _semi_elbos(got, K_VALUES, P["x_test64"], P["W"], P["b"], P["s2"])
    log_px = P["log_px"].mean().item()
    gaps = [log_px - e for e in elbos]  # the per-point optimum of PPCA is the exact posterior: its ELBO is log p(x)
    hint = "start from the encoder's output (init=...), not from the prior, with a small lr."
    r10, r100 = gaps[K_VALUES.index(10)] / gaps[0], gaps[-1] / gaps[0]
    _require(-0.01 <= r10 <= 1.0, f"gap after 10 steps / gap after 0 is {r10:.3g} (at most 1). Hint: {hint}")
    _require(-0.01 <= r100 <= 0.1, f"gap after 100 steps / gap after 0 is {r100:.3g} (at most 0.1). Hint: {hint}")
    return f"100 steps close {1 - r100:.1%} of the amortization gap"


def _check_semi_hidden(got: dict, want: dict) -> str:
    _require(bool(got["is_dict"].item()) and bool(got["same_keys"].item()),
             "semi_amortized must return one entry per K in ks (and no others).")
    W, b, s2, x = (t.double() for t in _semi_hidden_model())
    x_new = x[1000:]
    f = _semi_elbos(got, [0, 3, 30], x_new, W, b, s2)
    f_enc = _linear_elbo(x_new, get_value(got, "encoder_mu"), get_value(got, "encoder_logvar"), W, b, s2).mean().item()
    _require(math.isclose(f[0], f_enc, rel_tol=1e-6, abs_tol=1e-6), "K = 0 on another model is not the encoder's output.")
    _require(f[1] - f[0] >= -1e-3, "the ELBO got worse after 3 steps. Hint: start from the encoder's output (init=...), "
             "not from the prior.")
    _require(f[2] - f[1] >= -1e-3, "the ELBO got worse from 3 to 30 steps.")
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
