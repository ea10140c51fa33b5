"""Probes of the hidden tests for 03_amortized_inference (instructor material: never released to students).

The only hidden-test code that enters the student's kernel (`instructor.grading.runner`): each probe builds inputs,
calls the student's functions and returns plain tensors. Nothing here computes an answer: no reference
implementation, no expected value, no table of typical wrong answers; those live in ``judges.py``, which only the
trusted grader imports (and which rebuilds the inputs with the builders below).
"""

from __future__ import annotations

import contextlib
import math

import torch

LATENT = 8


STEPS, LR = 300, 0.3  # the notebook's PER_POINT_STEPS, PER_POINT_LR


K_VALUES, SEMI_LR = [0, 1, 2, 5, 10, 20, 50, 100], 0.02


_CACHE: dict = {}


# ---- models and objectives (the judges rebuild the same models; their exact ELBOs are in judges.py) -----------------
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
                          "post_mean": (x64 - b) @ W @ M_inv.T, "post_var": (s2 * M_inv).diagonal()}
    return _CACHE["ppca"]


def _kl(mu, logvar):
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(-1)


def _linear_objective(x, mu, logvar, W, b, s2):
    """What per-point inference and the encoders maximize on a linear-Gaussian model, (N,): its ELBO up to the
    constant −½ D log(2π s2), so the same gradients and optimum, but not the answer of exercise 3.1a."""
    r = x - b - mu @ W.T
    spread = (logvar.exp() * (W * W).sum(0)).sum(-1)
    return -0.5 * ((r * r).sum(-1) + spread) / s2 - _kl(mu, logvar)


def _linear_fn(dtype=torch.float32):
    """elbo_fn(x, mu, logvar) of the notebook's PPCA model, parameters in `dtype` (float32 like W_dev)."""
    P = _ppca()
    W, b, s2 = P["W"].to(dtype), P["b"].to(dtype), P["s2"].to(dtype)
    return lambda x, mu, logvar: _linear_objective(x, mu, logvar, W, b, s2)


def _nl_mean(z, W, b):
    return torch.sigmoid(6 * (b + z @ W.T) - 3)


def _nl_objective(x, mu, logvar, W, b, s2, n_samples=1, generator=None):
    """Monte Carlo ELBO of the fixed non-linear decoder p(x|z) = N(sigmoid(6 (b + W z) - 3), s2 I), (N,), up to the
    constant −½ D log(2π s2) (the judges add it back)."""
    total = 0.0
    for _ in range(n_samples):
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
        mean = _nl_mean(mu + (0.5 * logvar).exp() * eps, W, b)
        total = total - 0.5 * ((x - mean) ** 2).sum(-1) / s2
    return total / n_samples - _kl(mu, logvar)


def _nl_fn():
    """elbo_fn(x, mu, logvar) of the fixed non-linear decoder, one sample (torch's global generator), float32."""
    P = _ppca()
    W, b, s2 = P["W"].float(), P["b"].float(), P["s2"].float()
    return lambda x, mu, logvar: _nl_objective(x, mu, logvar, W, b, s2)


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


def _hidden_init() -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded (mu0, logvar0), each (200, 3) float32, for per_point_inference's init on the hidden linear model."""
    gen = torch.Generator().manual_seed(36)
    return torch.randn(200, 3, generator=gen), torch.randn(200, 3, generator=gen) - 1


def _f64(value) -> torch.Tensor:
    return torch.tensor(float(value), dtype=torch.float64)


class _Counter:
    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


TOY_STEPS, TOY_LR = 20, 0.1  # the visible check's toy run (utils/checks_amortized.per_point_schedule)


def _toy_run(per_point_inference) -> dict:
    """per_point_inference on an objective whose gradient is +1 for every mu and logvar, from a seeded init: the
    visible check's toy run (what it moves, how often it calls elbo_fn, init afterwards)."""
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(6, 5, generator=gen)
    init = (torch.randn(6, 2, generator=gen), torch.randn(6, 2, generator=gen) - 1)
    counter = _Counter(lambda x_, mu, logvar: (mu + logvar).sum(-1) + 0.0 * x_.sum(-1))
    mu, logvar = per_point_inference(counter, x, 2, steps=TOY_STEPS, lr=TOY_LR, init=init)
    return {"toy_calls": counter.calls, "toy_mu": mu, "toy_logvar": logvar, "toy_init_after": torch.stack(init)}


class _ToyEncoder(torch.nn.Module):
    """The visible check's fixed affine toy encoder x (N, 4) -> (mu, logvar), each (N, 2)."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(4)
        self.weight = torch.nn.Parameter(0.5 * torch.randn(4, 4, generator=gen), requires_grad=False)

    def forward(self, x):
        mu, logvar = (x @ self.weight).chunk(2, dim=-1)
        return mu, logvar - 1


def _toy_objective(x, mu, logvar):
    return -((mu - x[:, :2]) ** 2).sum(-1) - ((logvar + 2 - x[:, 2:]) ** 2).sum(-1)


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
    return {"calls": counter.calls, "mu": mu, "logvar": logvar, "mu_nl": mu_nl, "logvar_nl": logvar_nl,
            **_toy_run(ns["per_point_inference"])}


def probe_per_point_hidden(ns: dict) -> dict:
    """The hidden check's random linear model (full posterior covariance), and a seeded init: start there (a tiny
    learning rate keeps the result there), leave it unchanged."""
    W, b, s2, x = _random_linear(32, 200, torch.float64)
    W32, b32, s232 = W.float(), b.float(), s2.float()

    def elbo_fn(x_, mu, logvar):
        return _linear_objective(x_, mu, logvar, W32, b32, s232)

    torch.manual_seed(5)
    mu, logvar = ns["per_point_inference"](elbo_fn, x.float(), 3, steps=STEPS, lr=LR)
    init = _hidden_init()
    mu_i, logvar_i = ns["per_point_inference"](elbo_fn, x.float(), 3, steps=2, lr=1e-6, init=init)
    # init after the call: the judge compares it with its own copy (modified in place?)
    return {"mu": mu, "logvar": logvar, "mu_init": mu_i, "logvar_init": logvar_i, "init_after": torch.stack(init)}


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
    encoder, _ = ns["train_encoder"](lambda x_, mu, lv: _linear_objective(x_, mu, lv, W, b, s2), x[:2000].clone(), 3,
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
    row = _row(ns, elbo_pp, elbo_enc, n_points=50, latent_dim=3, encoder=toy, log_px=log_px)
    unknown = ns["tradeoff_row"](elbo_pp, elbo_enc, n_points=50, latent_dim=3, encoder=toy)
    gap = unknown.get("approximation_gap") if isinstance(unknown, dict) else None
    row["nan_float"] = isinstance(gap, float) and math.isnan(gap)
    row["zero_when_unknown"] = gap == 0
    return row


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
    x_toy = torch.rand(7, 4, generator=torch.Generator().manual_seed(5))
    alone = ns["semi_amortized"](_ToyEncoder(), _toy_objective, x_toy, [5], lr=0.05)
    together = ns["semi_amortized"](_ToyEncoder(), _toy_objective, x_toy, [0, 2, 5], lr=0.05)
    if isinstance(alone, dict) and isinstance(together, dict) and 5 in alone and 5 in together and 0 in together:
        out["toy_alone_5"], out["toy_together_5"] = torch.cat(alone[5]), torch.cat(together[5])
        out["toy_together_0"] = torch.cat(together[0])
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
        return _linear_objective(x_, mu, logvar, W, b, s2)

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

