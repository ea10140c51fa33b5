"""The check cells of notebook 05 (the VAE), one call each.

Every check tests properties (shapes, gradients, identities, statistics over many draws) or compares with numbers
stored here, computed once offline by the reference solution on fixed, seeded inputs. No function here computes an
exercise's answer. Checks of later exercises name an earlier exercise that fails its own check ("uses your
negative_elbo from 5.2, which fails its check"), so a student fixes the cause first.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Mapping

import torch
from torch import nn

from utils import checks

PIXELS = 784

# ------------------------------------------------------------------------------------------------ 5.1 reparameterize
VISIBLE_MU = ((0.5, -1.0, 2.0),)
VISIBLE_LOGVAR = ((-1.2, 0.3, 1.1),)


def _variance_diagnosis(var: torch.Tensor, logvar: torch.Tensor, n_draws: int) -> str:
    """Name the usual wrong scale of the noise from the sample variance of many draws ('' when none fits)."""
    if float(var.max()) < 1e-12:
        return "z does not vary: no noise was added. Draw eps ~ N(0, I) and return mu + sigma * eps."
    sigma2 = logvar.exp()
    candidates = {"used logvar as the standard deviation σ (z = mu + logvar * eps)": logvar**2,
                  "used logvar as the variance σ² (z = mu + sqrt(logvar) * eps or similar)": logvar.abs(),
                  "forgot the ½: exp(logvar) is σ², not σ (σ = exp(logvar / 2))": sigma2**2,
                  "used exp(logvar / 4) or sqrt(σ) as the standard deviation": sigma2.sqrt()}
    for label, candidate in candidates.items():  # a candidate fits when every coordinate is within 5 SE of it
        if ((var - candidate).abs() <= 5 * candidate * (2 / n_draws) ** 0.5 + 1e-12).all():
            return f"you probably {label}."
    return "the noise must be scaled by σ = exp(logvar / 2)."


def _reparameterize_case(f: Callable, mu: torch.Tensor, logvar: torch.Tensor, n_draws: int, seed: int,
                         name: str, show_expected: bool) -> None:
    mu, logvar = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
    try:
        z = f(mu, logvar, torch.Generator().manual_seed(seed))
    except NotImplementedError:
        raise  # unanswered: the notebook says so in one line
    except RuntimeError as exc:
        if "inplace" in str(exc) or "in-place" in str(exc):
            checks.fail(name, "an in-place operation on mu or logvar breaks autograd.", "build new tensors.")
        raise
    checks.check_shape(name, z, mu.shape)
    checks.check_finite(name, z, hint="NaN from sqrt(logvar) with logvar < 0? logvar is log σ², so σ = "
                                      "exp(logvar / 2).")
    # Diagnose first, from many draws: each coordinate's sample mean has standard error σ/√n and its sample
    # variance σ²√(2/n) (Gaussian data); 5 standard errors, a false alarm below 1e-5 per coordinate.
    with torch.no_grad():
        draws = f(mu.detach().expand(n_draws, -1), logvar.detach().expand(n_draws, -1),
                  torch.Generator().manual_seed(seed + 1)).double()
        checks.check_shape(f"{name} on {n_draws} rows", draws, (n_draws, mu.shape[1]))
        sigma2, m, lv = logvar.detach().double().exp()[0], mu.detach().double()[0], logvar.detach().double()[0]
        var = draws.var(0)
        if ((draws.mean(0) - m).abs() > 5 * (sigma2 / n_draws).sqrt() + 1e-9).any():
            checks.fail(name, "the sample mean of many draws is not mu (beyond 5 standard errors).",
                        "z = mu + sigma * eps: add mu to the scaled noise.")
        if ((var - sigma2).abs() > 5 * sigma2 * (2 / n_draws) ** 0.5).any():
            checks.fail(name, "the sample variance of many draws is not exp(logvar) (beyond 5 standard errors).",
                        _variance_diagnosis(var, lv, n_draws))
    if not z.requires_grad:
        checks.fail(name, "no gradient reaches mu or logvar: z is detached from them.",
                    "do not detach, and do not sample with torch.normal(mu, std) (it has no gradient).")
    z.sum().backward()
    if mu.grad is None:
        checks.fail(name, "no gradient reaches mu (dz/dmu is missing).", "z = mu + sigma * eps.")
    if logvar.grad is None:
        checks.fail(name, "no gradient reaches logvar.", "sigma = exp(logvar / 2) must be computed from logvar.")
    checks.check_close(f"{name}: dz/dmu", mu.grad, torch.ones_like(mu), show_expected=show_expected)
    # dz/dlogvar = ½ σ ε = ½ (z − μ) whatever ε was drawn: an identity, no reference needed.
    checks.check_close(f"{name}: dz/dlogvar", logvar.grad, 0.5 * (z - mu).detach(), rtol=1e-4, atol=1e-6,
                       show_expected=show_expected, hint="z must be mu + exp(logvar / 2) * eps.")
    again = f(mu, logvar, torch.Generator().manual_seed(seed))
    if not torch.equal(z, again):
        checks.fail(name, "equal seeds give different samples.",
                    "with a generator, draw eps = torch.randn(mu.shape, generator=generator); randn_like ignores it.")


def check_reparameterize(f: Callable, mu: torch.Tensor | None = None, logvar: torch.Tensor | None = None,
                         n_draws: int = 100_000, seed: int = 0, name: str = "reparameterize",
                         show_expected: bool = True) -> None:
    """Check 5.1: shape, finiteness, mean and variance over `n_draws` draws (diagnosed first), gradients, seeds.

    mu, logvar: (1, d) tensors (default: the visible example); the many-draw test expands them to (n_draws, d).
    """
    mu = torch.tensor(VISIBLE_MU) if mu is None else mu
    logvar = torch.tensor(VISIBLE_LOGVAR) if logvar is None else logvar
    _reparameterize_case(f, mu, logvar, n_draws, seed, name, show_expected)
    checks.passed(name, "shape, mean and variance over many draws, gradients, reproducibility")


# ------------------------------------------------------------------------------------------------ 5.2 negative ELBO
def elbo_inputs(seed: int = 3, batch: int = 8, latent: int = 5) -> tuple[torch.Tensor, ...]:
    """Fixed inputs (x binary (B, 784), logits (B, 784), mu (B, d), logvar (B, d)), seeded."""
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, PIXELS, generator=gen) > 0.5).float()
    logits = 2 * torch.randn(batch, PIXELS, generator=gen)
    mu, logvar = torch.randn(batch, latent, generator=gen), torch.randn(batch, latent, generator=gen)
    return x, logits, mu, logvar


# Stored by the reference solution on elbo_inputs(3, 8, 5) (float64 of float32 results): the right reconstruction
# and KL, and two wrong terms that depend on the inputs (sigmoid applied twice; logvar read as log σ).
VISIBLE_ELBO = {"reconstruction": 837.68994140625, "kl": 4.032519817352295,
                "reconstruction_of_probabilities": 576.8750610351562, "kl_with_log_std": 9.313657760620117}


def _named_mistake(got: torch.Tensor, stored: Mapping[str, float], x: torch.Tensor, logvar: torch.Tensor) -> str:
    """The usual mistake that (loss, reconstruction, kl) reproduces on the stored example, or ''."""
    rec, kl, batch, latent = stored["reconstruction"], stored["kl"], len(x), logvar.shape[1]
    half_log = 0.5 * float(logvar.double().sum()) / batch
    variants = {
        "the KL term's sign is flipped (loss = reconstruction - KL)": (rec - kl, rec, -kl),
        "the reconstruction is a mean over pixels instead of a sum": (rec / PIXELS + kl, rec / PIXELS, kl),
        "everything is summed over the batch instead of averaged": (batch * (rec + kl), batch * rec, batch * kl),
        "logvar is treated as log σ (log-std) instead of log σ²": (rec + stored["kl_with_log_std"], rec,
                                                                  stored["kl_with_log_std"]),
        "probabilities were passed where logits were expected (sigmoid applied twice)":
            (stored["reconstruction_of_probabilities"] + kl, stored["reconstruction_of_probabilities"], kl),
        "the KL term is missing from the loss (loss = reconstruction)": (rec, rec, kl),
        "the KL term is missing (kl = 0)": (rec, rec, 0.0),
        "the KL is missing its factor ½": (rec + 2 * kl, rec, 2 * kl),
        "the KL is missing its -1 inside the sum": (rec + kl + latent / 2, rec, kl + latent / 2),
        "the KL is missing its -log σ² term": (rec + kl + half_log, rec, kl + half_log),
        "the KL is a mean over latent dimensions instead of a sum": (rec + kl / latent, rec, kl / latent),
        "the reconstruction is summed over the batch but the KL averaged": (batch * rec + kl, batch * rec, kl),
    }
    return checks.match_variant(got, {k: torch.tensor(v, dtype=torch.float64) for k, v in variants.items()}) or ""


def _elbo_triple(name: str, got: object) -> torch.Tensor:
    if not (isinstance(got, tuple) and len(got) == 3):
        checks.fail(name, f"expected a tuple (loss, reconstruction, kl), got {type(got).__name__}.")
    for part, value in zip(("loss", "reconstruction", "kl"), got, strict=True):
        checks.check_shape(f"{name} {part}", value, (), hint="reduce to one number: sum over dimensions, mean "
                                                             "over the batch.")
    stacked = torch.stack([g.detach().double() for g in got])
    checks.check_finite(name, stacked)
    return stacked


def check_negative_elbo(f: Callable, inputs: tuple[torch.Tensor, ...] | None = None,
                        stored: Mapping[str, float] | None = None, name: str = "negative_elbo",
                        show_expected: bool = True) -> None:
    """Check 5.2 on one fixed example: the three numbers against stored values, the usual mistakes named first.

    inputs: (x, logits, mu, logvar) (default `elbo_inputs()`); stored: the reference's numbers on them
    (default VISIBLE_ELBO).
    """
    inputs = elbo_inputs() if inputs is None else inputs
    stored = VISIBLE_ELBO if stored is None else stored
    got = _elbo_triple(name, f(*inputs))
    right = torch.tensor([stored["reconstruction"] + stored["kl"], stored["reconstruction"], stored["kl"]],
                         dtype=torch.float64)
    if not torch.allclose(got, right, rtol=1e-4):
        mistake = _named_mistake(got, stored, inputs[0], inputs[3])
        if mistake:
            checks.fail(name, f"the result matches a known mistake: {mistake}.")
        if not torch.allclose(got[0], got[1] + got[2], rtol=1e-5):
            checks.fail(name, "loss is not reconstruction + kl.", "return (reconstruction + kl, reconstruction, kl).")
        for i, part in ((1, "reconstruction"), (2, "kl")):
            hint = ("re-derive the KL: E_q[log q - log p], summed over latent dimensions, batch-averaged."
                    if part == "kl" else "Bernoulli cross-entropy from logits, summed over pixels, averaged over "
                                         "the batch.")
            checks.check_close(f"{name} {part}", got[i], right[i], rtol=1e-4, show_expected=show_expected,
                               hint=hint)
    checks.passed(name, "(loss, reconstruction, kl) right on the stored example")


def check_kl_properties(f: Callable, name: str = "negative_elbo kl") -> None:
    """KL >= 0 for 20 random (mu, logvar), exactly 0 at the prior, and independent of x and the logits."""
    x, logits, mu, logvar = elbo_inputs()
    for seed in range(20):
        g = torch.Generator().manual_seed(100 + seed)
        kl = f(x, logits, 3 * torch.randn(8, 5, generator=g), 3 * torch.randn(8, 5, generator=g))[2]
        if not torch.isfinite(kl) or kl < 0:
            checks.fail(name, f"KL = {float(kl):.3g} for some mu, logvar.", "KL(q || p) is never negative: did "
                        "you use log σ where log σ² was meant, or flip a sign?")
    at_prior = float(f(x, logits, torch.zeros(8, 5), torch.zeros(8, 5))[2])
    if at_prior != 0.0:
        checks.fail(name, f"KL = {at_prior:.3g} at mu = 0, logvar = 0; it must be exactly 0.",
                    "the -1 inside the sum cancels exp(0) = 1: is a term missing?")
    if not torch.equal(f(x, logits, mu, logvar)[2], f(1 - x, -logits, mu, logvar)[2]):
        checks.fail(name, "the KL changes with x or the logits.", "KL(q(z|x) || p(z)) depends on mu and logvar "
                                                                  "only.")
    checks.passed(name, "non-negative on 20 random inputs, exactly 0 at the prior, independent of x")


# -------------------------------------------------------------------------------------------------- 5.3 the model
def _is_affine(fn: Callable[[torch.Tensor], torch.Tensor], a: torch.Tensor, b: torch.Tensor) -> bool:
    """True when fn maps the midpoint of a and b to the midpoint of fn(a) and fn(b) everywhere (an affine map)."""
    with torch.no_grad():
        middle, ends = fn((a + b) / 2), (fn(a) + fn(b)) / 2
    return torch.allclose(middle, ends, rtol=1e-4, atol=1e-5)


def check_vae(vae_class: type, latent_dim: int = 20, hidden: int = 400, name: str = "VAE",
              show_expected: bool = True) -> None:
    """Check 5.3: layer sizes, logits out, encode/forward agree, sampling, and non-linear encoder and decoder."""
    torch.manual_seed(0)
    model = vae_class(latent_dim, hidden)
    expected = {"hidden": (PIXELS, hidden), "mu": (hidden, latent_dim), "logvar": (hidden, latent_dim)}
    for attr, (fan_in, fan_out) in expected.items():
        layer = getattr(model, attr, None)
        if not isinstance(layer, nn.Linear) or (layer.in_features, layer.out_features) != (fan_in, fan_out):
            checks.fail(name, f"self.{attr} should be Linear({fan_in}, {fan_out}), got {layer}.")
    want = [(latent_dim, hidden), (hidden, PIXELS)]
    linears = [(m.in_features, m.out_features) for m in model.decoder.modules() if isinstance(m, nn.Linear)]
    if linears != want:
        checks.fail(name, f"decoder Linear layers are {linears}, expected {want}.")
    if any(isinstance(m, nn.Sigmoid) for m in model.decoder.modules()):
        checks.fail(name, "the decoder ends with a sigmoid.", "return logits; the loss applies the sigmoid itself.")
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(6, PIXELS, generator=gen)
    logits, mu, logvar = model(x)
    checks.check_shape(f"{name} logits", logits, (6, PIXELS))
    checks.check_shape(f"{name} mu", mu, (6, latent_dim))
    mu_e, logvar_e = model.encode(x)
    checks.check_close(f"{name} forward returns encode's mu", mu, mu_e, show_expected=show_expected)
    checks.check_close(f"{name} forward returns encode's logvar", logvar, logvar_e, show_expected=show_expected)
    if torch.equal(model(x)[0], model(x)[0]):
        checks.fail(name, "two forward passes give identical logits: no sampling.",
                    "decode reparameterize(mu, logvar), not mu.")
    x2 = torch.rand(6, PIXELS, generator=gen)
    if _is_affine(lambda v: torch.cat(model.encode(v), 1), x, x2):
        checks.fail(name, "the encoder is an affine function of x.", "apply a ReLU after self.hidden.")
    z1, z2 = torch.randn(6, latent_dim, generator=gen), torch.randn(6, latent_dim, generator=gen)
    if _is_affine(model.decoder, z1, z2):
        checks.fail(name, "the decoder is an affine function of z.", "put a ReLU between its two Linear layers.")
    checks.passed(name, f"latent_dim={latent_dim}, hidden={hidden}")


# ----------------------------------------------------------------------- checks of later parts name earlier ones
def _fails_quietly(check: Callable[[], None]) -> bool:
    """True when `check` fails (any exception); its printed ✓ line is swallowed."""
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            check()
        except Exception:  # noqa: BLE001 - any failure of the earlier exercise counts
            return True
    return False


UPSTREAM = {  # function name -> (exercise, its check)
    "reparameterize": ("5.1", check_reparameterize),
    "negative_elbo": ("5.2", check_negative_elbo),
    "VAE": ("5.3", check_vae),
}


def failing_upstream(uses: Mapping[str, object]) -> str:
    """'' or a sentence naming the first earlier exercise whose function fails its own check."""
    for fname, function in uses.items():
        exercise, check = UPSTREAM[fname]
        if _fails_quietly(lambda check=check, function=function: check(function)):
            return f"This part uses your {fname} from {exercise}, which fails its check: fix that first."
    return ""


def check_bound(name: str, value: float, low: float, high: float, hint: str = "",
                uses: Mapping[str, object] | None = None) -> None:
    """checks.check_between, whose failure names an earlier exercise in `uses` ({name: function}) that fails."""
    try:
        checks.check_between(name, value, low, high, hint)
    except checks.CheckFailed as exc:
        upstream = failing_upstream(uses or {})
        if not upstream:
            raise
        raise checks.CheckFailed(f"{exc} {upstream}") from None


# Bounds of the trained models (nats per image on the fixed binarization of the 1,000 offline test digits),
# from the reference solution over 5 seeds (the notebook's closing note has the table).
D20_BOUND = 117.5
D2_BOUND = 166.0
IS_GAP_RANGE = (4.0, 8.0)
D20_CPU_SECONDS = 30.0


def check_trained_vae(history: Mapping[str, list[float]], device: torch.device, uses: Mapping[str, object]) -> None:
    """Check 5.3 (trained): the d = 20 test negative ELBO within its bound, and the training's CPU time."""
    check_bound("d = 20 test negative ELBO (nats per image)", history["eval_loss"][-1], 0.0, D20_BOUND,
                "check negative_elbo's reductions, the encoder's ReLU and that the decoder returns logits.", uses)
    if device.type == "cpu" and torch.get_num_threads() == 1:
        checks.check_between("d = 20 training CPU time (s)", sum(history["cpu_seconds"]), 0.0, D20_CPU_SECONDS,
                             hint="keep the data in one tensor and let fit do the batching; no per-image work.")


def check_trained_2d(history: Mapping[str, list[float]], uses: Mapping[str, object]) -> None:
    """Check 5.5 (trained): the d = 2 test negative ELBO within its bound."""
    check_bound("d = 2 test negative ELBO (nats per image)", history["eval_loss"][-1], 0.0, D2_BOUND,
                "train the d = 2 model as prescribed (30 epochs, learning rate 3e-3).", uses)


# ------------------------------------------------------------------------------------------------ 5.4 generation
class ProbeDecoder(nn.Module):
    """Logits equal to the code's first coordinate for every pixel."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, :1].expand(-1, PIXELS) + self.dummy


class FixedLogits(nn.Module):
    """A 'classifier' whose first image is certain (class 3) and whose other images are uniform over 10 classes."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(len(images), 10)
        logits[0, 3] = 100.0
        return logits


def check_sample_prior(sample_prior: Callable, n: int = 4000, latent_dim: int = 3, seed: int = 0,
                       name: str = "sample_prior") -> None:
    """Check 5.4: shape, probabilities, no gradients, codes from N(0, I), reproducible."""
    samples = sample_prior(ProbeDecoder(), n, latent_dim, torch.Generator().manual_seed(seed))
    checks.check_shape(name, samples, (n, PIXELS))
    if samples.min() < 0 or samples.max() > 1:
        checks.fail(name, "values outside [0, 1].", "return torch.sigmoid(logits), the pixel probabilities.")
    if samples.requires_grad:
        checks.fail(name, "the samples carry gradients.", "decode under torch.no_grad().")
    # The mean of sigmoid(z), z ~ N(0, 1), is ½ by symmetry; its sd is about 0.21: 5 standard errors of the mean.
    mean_pixel = samples[:, 0].mean().item()
    if abs(mean_pixel - 0.5) > 5 * 0.21 / n**0.5:
        checks.fail(name, f"mean pixel value {mean_pixel:.3f}, expected 0.5 for codes from N(0, I).",
                    "draw z with torch.randn (standard normal), not torch.rand (uniform).")
    if not torch.equal(samples, sample_prior(ProbeDecoder(), n, latent_dim, torch.Generator().manual_seed(seed))):
        checks.fail(name, "equal seeds give different samples.", "draw z with generator=generator.")
    checks.passed(name)


def check_prediction_scores(prediction_scores: Callable, name: str = "prediction_scores") -> None:
    """Check 5.4: on logits with known probabilities (one certain image, one uniform), floats in nats."""
    max_prob, entropy = prediction_scores(FixedLogits(), torch.zeros(2, PIXELS))
    checks.check_type(name, max_prob, float, hint="return Python floats (.item()).")
    checks.check_close(f"{name} (max-probability, entropy)", torch.tensor([max_prob, entropy]),
                       torch.tensor([(1 + 0.1) / 2, (0 + math.log(10)) / 2]), rtol=1e-4,
                       hint="entropy in nats uses the natural log; average over images.")


MARGINS = (0.04, 0.15)  # VAE minus AE max-probability, AE minus VAE entropy (nats)


def check_sample_margin(scores: Mapping[str, tuple[float, float]], uses: Mapping[str, object]) -> None:
    """Check 5.4: the VAE's prior samples score as more digit-like than the autoencoder's."""
    (vae_conf, vae_ent), (ae_conf, ae_ent) = scores["VAE, z ~ N(0, I)"], scores["autoencoder, z ~ N(0, I)"]
    check_bound("VAE minus AE mean max-probability", vae_conf - ae_conf, MARGINS[0], 1.0, uses=uses)
    check_bound("AE minus VAE mean entropy (nats)", ae_ent - vae_ent, MARGINS[1], math.log(10), uses=uses)


# ------------------------------------------------------------------------------------------------ 5.5 the grid
def check_gaussian_grid(gaussian_grid: Callable, n: int = 5, low: float = 0.05, high: float = 0.95,
                        name: str = "gaussian_grid") -> None:
    """Check 5.5: Φ(values) are the evenly spaced probabilities; the two usual mistakes named."""
    grid = gaussian_grid(n) if (low, high) == (0.05, 0.95) else gaussian_grid(n, low, high)
    checks.check_shape(name, grid, (n,))
    probabilities = torch.linspace(low, high, n)
    if torch.allclose(grid, probabilities):
        checks.fail(name, "these are the probabilities themselves.", "apply the inverse CDF (icdf) to them.")
    if n > 2 and torch.allclose(grid, torch.linspace(float(grid[0]), float(grid[-1]), n), atol=1e-3):
        checks.fail(name, "evenly spaced values, not quantiles.", "apply icdf to evenly spaced probabilities.")
    checks.check_close(f"Phi({name}({n}))", torch.distributions.Normal(0.0, 1.0).cdf(grid), probabilities,
                       rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------------- 5.6 importance sampling
class KnownModel(nn.Module):
    """A decoder that ignores z, and q(z|x) = N(mu, e^logvar) for every x: p(x) is known exactly."""

    def __init__(self, logits: torch.Tensor, latent_dim: int = 3, mu: float = 0.0, logvar: float = 0.0) -> None:
        super().__init__()
        self.logits, self.latent_dim, self.m, self.lv = logits, latent_dim, mu, logvar

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (len(x), self.latent_dim)
        return torch.full(shape, self.m), torch.full(shape, self.lv)

    def decoder(self, z: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(*z.shape[:-1], PIXELS)


def _log_bernoulli(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log p(x) of the known model: the decoder ignores z, so p(x | z) = p(x) for every z. (B,)"""
    return -torch.nn.functional.binary_cross_entropy_with_logits(logits.expand(len(x), -1), x,
                                                                 reduction="none").sum(1)


def _per_dim_integral(fn: Callable[[torch.Tensor], torch.Tensor]) -> float:
    zz = torch.linspace(-14, 14, 28001, dtype=torch.float64)
    return torch.trapezoid(fn(zz), zz).item()


def importance_standard_error(d: int, mu: float, logvar: float, k: int) -> float:
    """Delta method: SE(log mean w) ≈ √(E_q[(p/q)²] − 1) / √k, with E_q[(p/q)²] = (∫ p²/q dz)^d."""
    p, q = torch.distributions.Normal(0.0, 1.0), torch.distributions.Normal(mu, math.exp(logvar / 2))
    per_dim = _per_dim_integral(lambda z: torch.exp(2 * p.log_prob(z) - q.log_prob(z)))
    return math.sqrt(per_dim**d - 1) / math.sqrt(k)


def unit_variance_offset(d: int, mu: float, logvar: float) -> float:
    """Where the estimate converges when log q is taken with unit variance: log p(x) + d log ∫ p q / N(mu, 1)."""
    p, q = torch.distributions.Normal(0.0, 1.0), torch.distributions.Normal(mu, math.exp(logvar / 2))
    unit = torch.distributions.Normal(mu, 1.0)
    return d * math.log(_per_dim_integral(lambda z: torch.exp(p.log_prob(z) + q.log_prob(z) - unit.log_prob(z))))


def known_inputs(seed: int = 9, batch: int = 4, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary images (B, 784) and the known model's logits (784,), seeded."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, PIXELS, generator=gen) > threshold).float(), torch.randn(PIXELS, generator=gen)


WIDE_Q = (2, -0.4, 1.0, 4000)  # latent_dim, mu, logvar, k: a q wider than the prior and off its centre


def check_importance_exact(importance_log_px: Callable, name: str = "importance_log_px") -> None:
    """Check 5.6: with q = the prior and a decoder that ignores z, every weight is p(x): exact for any k."""
    x, logits = known_inputs()
    exact = _log_bernoulli(x, logits)
    for k in (1, 7):
        estimate = importance_log_px(KnownModel(logits), x, k, torch.Generator().manual_seed(k))
        checks.check_shape(name, estimate, (4,), hint="one estimate per image: logsumexp over the k samples only.")
        checks.check_finite(name, estimate, hint="use torch.logsumexp, never log(sum(exp(...))).")
        if k > 1 and torch.allclose(estimate, exact + math.log(k), atol=1e-3):
            checks.fail(name, "off by log k.", "average the weights: logsumexp(log w) - log k.")
        checks.check_close(f"{name} with q = prior (k = {k})", estimate, exact, rtol=1e-5, atol=1e-3,
                           hint="log p(z) and log q(z|x) must both be full Gaussian log-densities, with the same "
                                "constants.")


def check_importance_wide_q(importance_log_px: Callable, case: tuple = WIDE_Q, seed: int = 3,
                            name: str = "importance_log_px, q unlike the prior") -> None:
    """Check 5.6: q = N(mu, e^logvar) wider than the prior: the estimate is within 5 standard errors of log p(x)."""
    d, mu, logvar, k = case
    x, logits = known_inputs(21, 3, 0.3)
    estimate = importance_log_px(KnownModel(logits, d, mu, logvar), x, k, torch.Generator().manual_seed(seed))
    checks.check_shape(name, estimate, (3,))
    checks.check_finite(name, estimate)
    error = (estimate.double() - _log_bernoulli(x, logits).double())
    se = importance_standard_error(d, mu, logvar, k)
    if (error.abs() > 5 * se).any():
        if ((error - unit_variance_offset(d, mu, logvar)).abs() <= 5 * se).all():
            checks.fail(name, "the estimate converges where a unit-variance q would put it.",
                        "log q(z|x) must use q's own variance σ² = exp(logvar), not 1.")
        checks.fail(name, f"off by {error.abs().max().item():.3g} nats (5 standard errors: {5 * se:.3g}).",
                    "log q(z|x) must use q's own mean and variance, and the weights p(x|z) p(z) / q(z|x).")
    checks.passed(name, f"within 5 standard errors ({5 * se:.2g} nats) of log p(x)")


def check_importance_result(is_estimates: Mapping[int, torch.Tensor], elbo: float,
                            uses: Mapping[str, object]) -> None:
    """Check 5.6 on the trained VAE: E[L_1] = ELBO (5 SE), estimates rise with k, L_1000 − ELBO in its range."""
    ks = sorted(is_estimates)
    for k in ks:
        checks.check_finite(f"importance_log_px (k = {k})", is_estimates[k])
    l1 = is_estimates[1].double()
    if abs(l1.mean().item() - elbo) > 5 * l1.std().item() / len(l1) ** 0.5:
        checks.fail("importance_log_px", "L_1 does not average to the ELBO.",
                    "with k = 1 the estimate is log w of one sample.")
    means = [is_estimates[k].mean().item() for k in ks]
    if not all(later > earlier for earlier, later in zip(means, means[1:], strict=False)):
        checks.fail("importance_log_px", f"the estimates do not rise with k: {[round(m, 2) for m in means]}.")
    check_bound(f"L_{ks[-1]} minus ELBO (nats)", means[-1] - elbo, *IS_GAP_RANGE, uses=uses)


# --------------------------------------------------------------------- 5.7 score function vs pathwise
def check_encoder_gradients(encoder_gradients: Callable, model: nn.Module, x: torch.Tensor,
                            stacked: Mapping[str, Mapping[str, torch.Tensor]], latent: int = 20) -> None:
    """Check 5.7: sizes, reproducible, no .grad left, and the two estimators' means agree within 5 SE."""
    sizes = {g: sum(p.numel() for p in getattr(model, g).parameters()) for g in ("hidden", "mu", "logvar")}
    for group, size in sizes.items():
        for method in stacked:
            checks.check_shape(f"encoder_gradients['{group}'] ({method})", stacked[method][group][0], (size,))
    model.zero_grad(set_to_none=True)  # training left gradients behind; start clean
    same = [encoder_gradients(model, x, "pathwise", torch.Generator().manual_seed(1))["mu"] for _ in range(2)]
    if not torch.equal(*same):
        checks.fail("encoder_gradients", "equal seeds give different estimates.", "pass the generator to "
                                                                                  "reparameterize.")
    if any(p.grad is not None for p in model.parameters()):
        checks.fail("encoder_gradients", ".grad was filled in.", "use torch.autograd.grad instead of .backward().")
    # Unbiased estimators of one gradient: over R repeats two means differ by SE = √(var_a / R + var_b / R).
    bias_p = stacked["pathwise"]["mu"][:, -latent:]
    for method in (m for m in stacked if m != "pathwise"):
        bias_s = stacked[method]["mu"][:, -latent:]
        se = (bias_s.var(0) / len(bias_s) + bias_p.var(0) / len(bias_p)).sqrt()
        if not torch.isfinite(se).all() or ((bias_s.mean(0) - bias_p.mean(0)).abs() > 5 * se).any():
            checks.fail("encoder_gradients", f"{method} and pathwise means disagree beyond 5 standard errors.",
                        "score: detach z and the reward, differentiate log q(z|x); a baseline must not depend "
                        "on z; pathwise: keep z = mu + sigma * eps attached.")
    checks.passed("encoder_gradients", "shapes, reproducible, unbiased (means agree within 5 SE)")


def check_variance_ratios(variance_ratio: Mapping[str, float], uses: Mapping[str, object], low: float = 10.0,
                          name: str = "variance ratio score / pathwise") -> None:
    """Check 5.7: a ratio of two estimators' variances is at least `low` in every encoder layer."""
    for group, ratio in variance_ratio.items():
        check_bound(f"{name}, {group} layer", ratio, low, float("inf"), uses=uses)
