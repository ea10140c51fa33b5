"""Probes of the hidden tests for 05_vae (instructor material: never released to students).

The only hidden-test code that enters the student's kernel (`instructor.grading.runner`): each probe builds inputs,
calls the student's functions and returns plain tensors. Nothing here computes an answer: no reference
implementation, no expected value, no table of typical wrong answers; those live in ``judges.py``, which only the
trusted grader imports (and which rebuilds the inputs with the builders below).
"""

from __future__ import annotations

import torch
from torch import nn

PIXELS, HIDDEN, LATENT = 784, 400, 20


def _offline_test_images() -> torch.Tensor:
    """The offline test digits binarized once (seed 0), as the notebook's x_test_bin."""
    from utils import data

    return data.load_mnist(split="test", flatten=True, binarize_mode="dynamic", seed=0)[0]


def _trained(ns: dict, name: str) -> nn.Module:
    """The notebook's trained model `name`, with a clear error when the training cell did not create it."""
    if not isinstance(ns.get(name), nn.Module):
        raise LookupError(f"the notebook has no trained model `{name}`: did its training cell run without errors?")
    return ns[name]


def _weights(model: nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------------------- 5.1 reparameterize
def _reparameterize_case(f, mu: torch.Tensor, logvar: torch.Tensor, seed: int, n_draws: int) -> dict:
    """What check_reparameterize looks at, as data: the sample, its gradients, a repeat, many-draw statistics."""
    m, lv = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
    try:
        z = f(m, lv, torch.Generator().manual_seed(seed))
    except NotImplementedError:  # a RuntimeError too, but an unanswered exercise, not an in-place operation
        raise
    except RuntimeError:
        return {"runtime_error": True}
    out = {"runtime_error": False, "z": z.detach()}
    if z.requires_grad:  # the gradients are exported only when they exist: the judge reads their absence
        z.sum().backward()
        if m.grad is not None:
            out["mu_grad"] = m.grad
        if lv.grad is not None:
            out["logvar_grad"] = lv.grad
    out["again"] = f(m, lv, torch.Generator().manual_seed(seed)).detach()
    with torch.no_grad():
        draws = f(m.expand(n_draws, -1), lv.expand(n_draws, -1), torch.Generator().manual_seed(seed + 1)).double()
    # The draws themselves (float32; the judge computes their statistics) and the inputs after the calls (the judge
    # compares them with its own copy: changed in place?).
    out.update(draws=draws.float(), inputs_after=torch.stack([m.detach(), lv.detach()]))
    return out


def _visible_reparameterize_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor([[0.5, -1.0, 2.0]]), torch.tensor([[-1.2, 0.3, 1.1]])


def _hidden_reparameterize_inputs() -> list[tuple[str, torch.Tensor, torch.Tensor, int, int]]:
    gen = torch.Generator().manual_seed(31)
    check_mu, check_logvar = torch.randn(1, 6, generator=gen), torch.randn(1, 6, generator=gen) - 0.5
    gen = torch.Generator().manual_seed(5150)  # new: wide range of variances, including tiny and large ones
    new_mu = 3 * torch.randn(1, 5, generator=gen)
    new_logvar = torch.tensor([[-6.0, -2.0, 0.0, 1.5, 3.0]])
    return [("check", check_mu, check_logvar, 7, 80_000), ("new", new_mu, new_logvar, 12, 60_000)]


def probe_reparameterize_visible(ns: dict) -> dict:
    mu, logvar = _visible_reparameterize_inputs()
    return _reparameterize_case(ns["reparameterize"], mu, logvar, seed=0, n_draws=100_000)


def probe_reparameterize_hidden(ns: dict) -> dict:
    f = ns["reparameterize"]
    out = {name: _reparameterize_case(f, mu, logvar, seed, n) for name, mu, logvar, seed, n in
           _hidden_reparameterize_inputs()}
    torch.manual_seed(0)
    out["batch3d_shape"] = torch.tensor(f(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)).shape)
    out["batch3d_seeded_shape"] = torch.tensor(
        f(torch.ones(3, 2, 5), torch.full((3, 2, 5), -1.0), torch.Generator().manual_seed(2)).shape)
    return out


def _elbo_cases(hidden: bool) -> list[tuple[torch.Tensor, ...]]:
    if not hidden:
        gen = torch.Generator().manual_seed(3)
        return [(torch.rand(8, PIXELS, generator=gen), 2 * torch.randn(8, PIXELS, generator=gen),
                 torch.randn(8, 5, generator=gen), torch.randn(8, 5, generator=gen))]
    cases = []
    gen = torch.Generator().manual_seed(2024)  # the hidden check cell's inputs
    for batch, d in ((3, 2), (17, 32)):
        x_h = (torch.rand(batch, PIXELS, generator=gen) > 0.6).float()
        cases.append((x_h, 5 * torch.randn(batch, PIXELS, generator=gen), torch.randn(batch, d, generator=gen) * 2,
                      torch.randn(batch, d, generator=gen) - 1))
    gen = torch.Generator().manual_seed(77)  # new: one image with one latent dimension, and grey-level images
    cases.append((torch.rand(1, PIXELS, generator=gen), torch.randn(1, PIXELS, generator=gen),
                  torch.randn(1, 1, generator=gen), torch.randn(1, 1, generator=gen)))
    cases.append((torch.rand(40, PIXELS, generator=gen), 3 * torch.randn(40, PIXELS, generator=gen),
                  torch.randn(40, 7, generator=gen), 2 * torch.randn(40, 7, generator=gen)))
    return cases


def _kl_cases(hidden: bool) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], tuple[int, int]]:
    base = 100 if not hidden else 900
    cases = []
    for seed in range(20):
        g = torch.Generator().manual_seed(base + seed)
        cases.append((3 * torch.randn(8, 5, generator=g), 3 * torch.randn(8, 5, generator=g)))
    return cases, (8, 5)


def _probe_negative_elbo(ns: dict, hidden: bool) -> dict:
    f = ns["negative_elbo"]
    out: dict = {}
    for i, (x, logits, mu, logvar) in enumerate(_elbo_cases(hidden)):
        got = f(x, logits, mu, logvar)
        if not (isinstance(got, tuple) and len(got) == 3):
            out[f"case{i}.triple"] = False
            continue
        out[f"case{i}.triple"] = True
        out[f"case{i}.tensors"] = all(isinstance(g, torch.Tensor) for g in got)
        for part, value in zip(("loss", "reconstruction", "kl"), got, strict=True):
            out[f"case{i}.{part}"] = torch.as_tensor(value.detach() if isinstance(value, torch.Tensor) else value)
    x, logits = _elbo_cases(False)[0][:2]
    kl_cases, shape = _kl_cases(hidden)
    out["kl_random"] = torch.stack([torch.as_tensor(f(x, logits, mu, lv)[2]).detach().reshape(-1)[0]
                                    for mu, lv in kl_cases])
    out["kl_at_prior"] = torch.as_tensor(f(x, logits, torch.zeros(shape), torch.zeros(shape))[2]).detach()
    return out


# --------------------------------------------------------------------------------------------- 5.3 VAE module
def _vae_structure(ns: dict, latent_dim: int, hidden: int) -> dict:
    torch.manual_seed(0)
    model = ns["VAE"](latent_dim, hidden)
    out: dict = {}
    for attr in ("hidden", "mu", "logvar"):
        layer = getattr(model, attr, None)
        out[f"{attr}_layer"] = torch.tensor([layer.in_features, layer.out_features] if isinstance(layer, nn.Linear)
                                            else [-1, -1])
    decoder = getattr(model, "decoder", None)
    modules = list(decoder.modules()) if isinstance(decoder, nn.Module) else []
    out["decoder_linears"] = torch.tensor([[m.in_features, m.out_features] for m in modules if isinstance(m, nn.Linear)],
                                          dtype=torch.int64).reshape(-1, 2)
    out["decoder_sigmoid"] = any(isinstance(m, nn.Sigmoid) for m in modules)
    x = torch.rand(6, PIXELS, generator=torch.Generator().manual_seed(latent_dim * 1000 + hidden))
    with torch.no_grad():
        logits, mu, logvar = model(x)
        mu_e, logvar_e = model.encode(x)
        logits2 = model(x)[0]
    out.update(logits=logits, mu=mu, logvar=logvar, mu_encode=mu_e, logvar_encode=logvar_e, logits_again=logits2)
    # Midpoints (the judge asks whether encoder and decoder are affine maps, i.e. a ReLU is missing).
    gen = torch.Generator().manual_seed(latent_dim * 1000 + hidden + 1)
    x2 = torch.rand(6, PIXELS, generator=gen)
    z1, z2 = torch.randn(6, latent_dim, generator=gen), torch.randn(6, latent_dim, generator=gen)
    try:  # a model of the wrong sizes fails on these inputs; the judge reports its sizes first
        with torch.no_grad():
            out["encoder_middle"] = torch.cat(model.encode((x + x2) / 2), 1)
            out["encoder_ends"] = (torch.cat(model.encode(x), 1) + torch.cat(model.encode(x2), 1)) / 2
            out["decoder_middle"] = model.decoder((z1 + z2) / 2)
            out["decoder_ends"] = (model.decoder(z1) + model.decoder(z2)) / 2
    except RuntimeError:
        pass
    return out


def probe_vae_visible(ns: dict) -> dict:
    return _vae_structure(ns, LATENT, HIDDEN)


HIDDEN_VAE_CASES = ((3, 64), (1, 32), (7, 50))


def probe_vae_hidden(ns: dict) -> dict:
    return {f"d{d}_h{h}": _vae_structure(ns, d, h) for d, h in HIDDEN_VAE_CASES}


def probe_vae_trained(ns: dict) -> dict:
    return {"vae": _weights(_trained(ns, "vae"))}


# --------------------------------------------------------------------------------------- 5.4 sampling, scores
class _ProbeDecoder(nn.Module):
    """Logits equal to the code's first coordinate for every pixel (the check cell's decoder)."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, z):
        return z[:, :1].expand(-1, PIXELS) + self.dummy


class _FixedLogits(nn.Module):
    def forward(self, images):
        logits = torch.zeros(len(images), 10)
        logits[0, 3] = 100.0  # first image: certain; second image: uniform
        return logits


def _sample_summary(samples: torch.Tensor, rows: int = 4) -> dict:
    flat = samples.detach().reshape(len(samples), -1) if samples.dim() >= 1 else samples.detach().reshape(1, -1)
    return {"shape": torch.tensor(samples.shape), "requires_grad": bool(samples.requires_grad),
            "min": flat.min(), "max": flat.max(), "first_column": flat[:, 0], "rows": flat[:rows]}


def probe_sampling_visible(ns: dict) -> dict:
    sample_prior = ns["sample_prior"]
    samples = sample_prior(_ProbeDecoder(), 4000, 3, torch.Generator().manual_seed(0))
    again = sample_prior(_ProbeDecoder(), 4000, 3, torch.Generator().manual_seed(0))
    scores = ns["prediction_scores"](_FixedLogits(), torch.zeros(2, PIXELS))
    return {"samples": _sample_summary(samples), "again": _sample_summary(again),
            "scores": torch.tensor([float(s) for s in scores]),
            "floats": isinstance(scores, tuple | list) and all(type(s) is float for s in scores)}


def _hidden_classifiers() -> list[tuple[nn.Module, torch.Tensor]]:
    torch.manual_seed(5)
    lin = nn.Linear(PIXELS, 10)
    imgs = torch.rand(50, PIXELS, generator=torch.Generator().manual_seed(5))
    torch.manual_seed(6)
    mlp = nn.Sequential(nn.Linear(PIXELS, 32), nn.ReLU(), nn.Linear(32, 10))
    with torch.no_grad():
        mlp[2].weight.mul_(4.0)  # confident predictions, far from uniform
    imgs2 = torch.rand(30, PIXELS, generator=torch.Generator().manual_seed(6))
    return [(lin, imgs), (mlp, imgs2)]


def probe_sampling_hidden(ns: dict) -> dict:
    out = {}
    for i, (classifier, images) in enumerate(_hidden_classifiers()):
        out[f"scores{i}"] = torch.tensor([float(s) for s in ns["prediction_scores"](classifier, images)])
    sample_prior = ns["sample_prior"]
    out["probe_decoder"] = _sample_summary(sample_prior(_ProbeDecoder(), 7, 9, torch.Generator().manual_seed(1)))
    torch.manual_seed(8)
    decoder = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, PIXELS))
    first = sample_prior(decoder, 5, 4, torch.Generator().manual_seed(3))
    out["mlp_decoder"] = _sample_summary(first)
    out["mlp_again"] = _sample_summary(sample_prior(decoder, 5, 4, torch.Generator().manual_seed(3)))
    return out


def probe_sampling_margin(ns: dict) -> dict:
    return {"vae_decoder": _weights(_trained(ns, "vae").decoder), "ae_decoder": _weights(_trained(ns, "plain_ae").decoder)}


# ------------------------------------------------------------------------------------------ 5.5 Gaussian grid
HIDDEN_GRIDS = ((20, 0.01, 0.99), (7, 0.1, 0.6), (4, 0.05, 0.95))


def probe_grid_visible(ns: dict) -> dict:
    return {"grid5": ns["gaussian_grid"](5)}


def probe_grid_hidden(ns: dict) -> dict:
    out = {}
    for n, low, high in HIDDEN_GRIDS:
        out[f"grid{n}"] = ns["gaussian_grid"](n) if (low, high) == (0.05, 0.95) else ns["gaussian_grid"](n, low, high)
    return out


def probe_vae_2d_trained(ns: dict) -> dict:
    return {"vae_2d": _weights(_trained(ns, "vae_2d"))}


# ------------------------------------------------------------------------------- 5.6 importance-sampled log p(x)
class _KnownModel(nn.Module):
    """Decoder that ignores z, q(z|x) = N(mu, e^logvar) for every x: p(x) is known exactly (the check cell's model)."""

    def __init__(self, logits, latent_dim=3, mu=0.0, logvar=0.0):
        super().__init__()
        self.logits, self.latent_dim, self.m, self.lv = logits, latent_dim, mu, logvar

    def encode(self, x):
        shape = (len(x), self.latent_dim)
        return torch.full(shape, self.m), torch.full(shape, self.lv)

    def decoder(self, z):
        return self.logits.expand(*z.shape[:-1], PIXELS)


def _known_visible():
    gen = torch.Generator().manual_seed(9)
    x = (torch.rand(4, PIXELS, generator=gen) > 0.5).float()
    return x, torch.randn(PIXELS, generator=gen)


# (name, data seed, batch, threshold, latent_dim, mu, logvar, k, sampling seed); the first is the check cell's.
# q wider than the prior and off its centre, so a wrong variance in log q shows (>= 10 standard errors).
HIDDEN_IS_CASES = (("check", 21, 3, 0.3, 3, 0.5, 0.8, 3000, 4), ("new", 22, 5, 0.5, 2, -0.6, 1.2, 3000, 5))


def _known_hidden(seed, batch, threshold):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, PIXELS, generator=gen) > threshold).float()
    return x, torch.randn(PIXELS, generator=gen)


def probe_importance_visible(ns: dict) -> dict:
    x, logits = _known_visible()
    return {f"k{k}": ns["importance_log_px"](_KnownModel(logits), x, k, torch.Generator().manual_seed(k))
            for k in (1, 7)}


def probe_importance_hidden(ns: dict) -> dict:
    out = {}
    for name, seed, batch, threshold, d, mu, logvar, k, sampling_seed in HIDDEN_IS_CASES:
        x, logits = _known_hidden(seed, batch, threshold)
        out[name] = ns["importance_log_px"](_KnownModel(logits, d, mu, logvar), x, k,
                                            torch.Generator().manual_seed(sampling_seed))
    return out


IS_KS = (1, 10, 100, 1000)


def probe_importance_result(ns: dict) -> dict:
    vae = _trained(ns, "vae")
    x_eval = _offline_test_images()[:100].to(next(vae.parameters()).device)
    gen = torch.Generator().manual_seed(0)
    estimates = {f"k{k}": ns["importance_log_px"](vae, x_eval, k, gen) for k in IS_KS}
    return {"vae": _weights(vae), "estimates": estimates}


# --------------------------------------------------------------------------- 5.7 score function vs pathwise
REPEATS = 200


SUBSET = 128  # coordinates per encoder layer returned for the variance ratio (a seeded random subset)


GROUPS = ("hidden", "mu", "logvar")


GROUP_SIZES = {"hidden": PIXELS * HIDDEN + HIDDEN, "mu": HIDDEN * LATENT + LATENT, "logvar": HIDDEN * LATENT + LATENT}


_GRADIENT_CACHE: list = []


def _subset_indices(size: int) -> torch.Tensor:
    return torch.randperm(size, generator=torch.Generator().manual_seed(77))[:SUBSET]


def _repeated_gradients(ns: dict) -> dict:
    """The notebook's experiment: REPEATS estimates per method on the first 16 offline test digits (generator seed 0).

    Shared by the two 5.7 probes (computed once per kernel): the mu layer's bias and a fixed random subset of each
    layer's coordinates, for every repeat.
    """
    f, vae = ns["encoder_gradients"], _trained(ns, "vae")
    for entry in _GRADIENT_CACHE:
        if entry[0] is f and entry[1] is vae:
            return entry[2]
    x_batch = _offline_test_images()[:16].to(next(vae.parameters()).device)
    gen = torch.Generator().manual_seed(0)
    indices = {g: _subset_indices(GROUP_SIZES[g]) for g in GROUPS}
    result: dict = {}
    for method in ("score", "pathwise"):
        runs = [f(vae, x_batch, method, gen) for _ in range(REPEATS)]
        result[method] = {"mu_bias": torch.stack([r["mu"].detach()[-LATENT:] for r in runs]).cpu(),
                          **{g: torch.stack([r[g].detach()[indices[g]] for r in runs]).cpu() for g in GROUPS}}
        result[f"{method}_sizes"] = torch.tensor([runs[0][g].numel() for g in GROUPS])
    _GRADIENT_CACHE[:] = [(f, vae, result)]
    return result


def probe_gradients_visible(ns: dict) -> dict:
    f, vae = ns["encoder_gradients"], _trained(ns, "vae")
    x_batch = _offline_test_images()[:16].to(next(vae.parameters()).device)
    vae.zero_grad(set_to_none=True)
    same = [f(vae, x_batch, "pathwise", torch.Generator().manual_seed(1))["mu"].detach() for _ in range(2)]
    grads_left = any(p.grad is not None for p in vae.parameters())
    repeated = _repeated_gradients(ns)
    return {"same0": same[0], "same1": same[1], "grads_left": grads_left,
            "sizes_score": repeated["score_sizes"], "sizes_pathwise": repeated["pathwise_sizes"],
            "mu_bias_score": repeated["score"]["mu_bias"], "mu_bias_pathwise": repeated["pathwise"]["mu_bias"]}


def probe_gradients_result(ns: dict) -> dict:
    repeated = _repeated_gradients(ns)
    return {f"{method}.{g}": repeated[method][g] for method in ("score", "pathwise") for g in GROUPS}


# ------------------------------------------------------------------- earlier exercises a later part depends on
def _upstream(ns: dict, parts: tuple[str, ...]) -> dict:
    """What the earlier parts' visible probes see, under "upstream.<grade_id>." (a failed probe: ".error" = 1),
    so the judge of a later part can say which earlier exercise fails its check."""
    out: dict = {}
    for part in parts:
        try:
            values = PROBES[part](ns)
        except Exception:  # noqa: BLE001 - any failure of the earlier exercise is reported as such
            out[f"upstream.{part}.error"] = torch.tensor(True)
            continue
        for key, value in _flatten(values).items():
            out[f"upstream.{part}.{key}"] = value
    return out


def _flatten(values: dict, prefix: str = "") -> dict:
    out: dict = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value if isinstance(value, torch.Tensor) else torch.tensor(value)
    return out


UPSTREAM = {  # later part -> the visible parts of the exercises it uses
    "ex5_3_trained": ("ex5_1_visible", "ex5_2_visible", "ex5_3_visible"),
    "ex5_4_margin": ("ex5_1_visible", "ex5_2_visible", "ex5_3_visible"),
    "ex5_5_trained": ("ex5_1_visible", "ex5_2_visible", "ex5_3_visible"),
    "ex5_6_result": ("ex5_1_visible", "ex5_2_visible"),
    "ex5_7_result": ("ex5_1_visible",),
}


def _with_upstream(part: str, probe):
    def wrapped(ns: dict) -> dict:
        return {**probe(ns), **_upstream(ns, UPSTREAM[part])}

    return wrapped


# ---------------------------------------------------------------------------------------------- registration
PROBES = {
    "ex5_1_visible": probe_reparameterize_visible,
    "ex5_1_hidden": probe_reparameterize_hidden,
    "ex5_2_visible": lambda ns: _probe_negative_elbo(ns, hidden=False),
    "ex5_2_hidden": lambda ns: _probe_negative_elbo(ns, hidden=True),
    "ex5_3_visible": probe_vae_visible,
    "ex5_3_hidden": probe_vae_hidden,
    "ex5_3_trained": probe_vae_trained,
    "ex5_4_visible": probe_sampling_visible,
    "ex5_4_hidden": probe_sampling_hidden,
    "ex5_4_margin": probe_sampling_margin,
    "ex5_5_visible": probe_grid_visible,
    "ex5_5_hidden": probe_grid_hidden,
    "ex5_5_trained": probe_vae_2d_trained,
    "ex5_6_visible": probe_importance_visible,
    "ex5_6_hidden": probe_importance_hidden,
    "ex5_6_result": probe_importance_result,
    "ex5_7_visible": probe_gradients_visible,
    "ex5_7_result": probe_gradients_result,
}
for _part in UPSTREAM:
    PROBES[_part] = _with_upstream(_part, PROBES[_part])
