"""Judges of the hidden tests for 05_vae (instructor material: never released to students).

Run in the trusted grader only (never in the student's kernel); they never call student code. Trained models come back
as plain weights (``state_dict``); the judges rebuild the reference architecture below, load them strictly and
evaluate them on data they load themselves (the offline MNIST split, which is what the grader's sandbox always sees).
Stochastic exercises are judged statistically, with tolerances of 5 standard errors derived next to each test (a false
alarm has probability below 1e-5 per test for an honest answer).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from instructor.grading.judge import Fail, Judge, Verdict, criteria, flag, match_mistake, require_all_close
from instructor.grading.spec import probes_beside
from utils.checks_vae import D2_BOUND, D20_BOUND, IS_GAP_RANGE, unit_variance_offset

probes = probes_beside(__file__)

DIAGNOSES = (  # the typical mistakes these judges name (Verdict.diagnosis), counted by the class report
    "in_place_operation",
    "z_detached",
    "mu_not_added",
    "inputs_modified_in_place",
    "generator_ignored",
    "logvar_as_std",
    "logvar_as_variance",
    "half_missing_in_std",
    "kl_sign_flipped",
    "mean_over_pixels",
    "sum_over_batch",
    "logvar_as_log_sigma",
    "sigmoid_applied_twice",
    "kl_missing_from_loss",
    "negative_kl",
    "decoder_returns_probabilities",
    "samples_carry_gradients",
    "logits_for_probabilities",
    "uniform_prior_samples",
    "sample_prior_generator_ignored",
    "grid_of_probabilities",
    "grid_evenly_spaced",
    "log_k_missing",
    "gradients_generator_ignored",
    "backward_for_autograd_grad",
    "no_noise",
    "sqrt_sigma_as_std",
    "kl_missing_half",
    "kl_missing_minus_one",
    "kl_missing_log_variance",
    "kl_mean_over_latent",
    "kl_zero",
    "encoder_affine",
    "decoder_affine",
    "log_q_unit_variance",
    "upstream_failed",
)

# the probes' constants (inputs, sizes, seeds), which the judges use too
GROUPS = probes.GROUPS
GROUP_SIZES = probes.GROUP_SIZES
HIDDEN = probes.HIDDEN
HIDDEN_GRIDS = probes.HIDDEN_GRIDS
HIDDEN_IS_CASES = probes.HIDDEN_IS_CASES
HIDDEN_VAE_CASES = probes.HIDDEN_VAE_CASES
IS_KS = probes.IS_KS
LATENT = probes.LATENT
PIXELS = probes.PIXELS
SUBSET = probes.SUBSET


# ----------------------------------------------------------------------------------------------------- helpers
class ReferenceVAE(nn.Module):
    """The architecture the notebook prescribes (attribute names included); only the judges use it."""

    def __init__(self, latent_dim: int = LATENT, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.hidden = nn.Linear(PIXELS, hidden)
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, PIXELS))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.hidden(x))
        return self.mu(h), self.logvar(h)


def _load_strict(module: nn.Module, values: dict, prefix: str) -> nn.Module:
    """Load the weights the probe returned under `prefix.` into `module`; a clear ValueError when they do not fit."""
    state = {k[len(prefix) + 1:]: v for k, v in values.items() if k.startswith(prefix + ".")}
    expected = module.state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise ValueError(f"the weights do not fit the prescribed architecture (missing {missing[:4]}, "
                         f"unexpected {extra[:4]}); keep the layers and attribute names of the exercise")
    for key, tensor in expected.items():
        if state[key].shape != tensor.shape:
            raise ValueError(f"{key} has shape {tuple(state[key].shape)}, the architecture needs {tuple(tensor.shape)}")
    module.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return module.eval()


def _negative_elbo_per_image(model: ReferenceVAE, x: torch.Tensor, draws: int, seed: int) -> torch.Tensor:
    """(N,) negative ELBO in nats per image: analytic KL + reconstruction averaged over `draws` seeded samples."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        reconstruction = torch.zeros(len(x), dtype=torch.float64)
        for _ in range(draws):
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen)
            reconstruction += F.binary_cross_entropy_with_logits(model.decoder(z), x, reduction="none").sum(1).double()
        return reconstruction / draws + kl.double()


def _judge_trained(prefix: str, latent_dim: int, high: float, hint: str) -> Judge:
    """Judge of a trained model: the student's weights in the reference VAE, negative ELBO on the offline test split.

    20 draws per image over the 1,000 binarized test digits: the mean's standard error is about 0.03 nats, far
    below the margins between the reference solution over 5 seeds and the bounds (utils.checks_vae: d = 20 mean
    115.7, worst 116.1, bound 117.5; d = 2 mean 161.9, worst 162.6, bound 166).
    """

    @criteria(f"d = {latent_dim} test negative ELBO (nats per image, reference VAE with your weights)")
    def judge(got: dict, want: dict) -> str:  # noqa: ARG001 - evaluated here, no reference
        try:
            model = _load_strict(ReferenceVAE(latent_dim), got, prefix)
        except ValueError as exc:
            raise Fail(f"the trained model could not be evaluated ({str(exc)[:200]})") from None
        value = _negative_elbo_per_image(model, probes._offline_test_images(), draws=20, seed=0).mean().item()
        if not (math.isfinite(value) and 0.0 <= value <= high):
            raise Fail(f"{value:.4g}, outside the accepted range [0, {high:.4g}]", hint)
        return f"{value:.4g} (at most {high:.4g})"

    return judge


def _judge_reparameterize_case(values: dict, mu: torch.Tensor, logvar: torch.Tensor, n_draws: int) -> None:
    """Raise `Fail` with what check_reparameterize would say (no expected values are shown)."""
    if flag(values, "runtime_error"):
        raise Fail("raised a RuntimeError", "an in-place operation on mu or logvar breaks autograd: build new "
                                            "tensors.", diagnosis="in_place_operation")
    z = values.get("z")
    if z is None or z.shape != mu.shape:
        raise Fail(f"returned shape {None if z is None else tuple(z.shape)}, expected {tuple(mu.shape)}")
    if not torch.isfinite(z).all():
        raise Fail("returned NaN or inf", "NaN from sqrt(logvar) with logvar < 0? logvar is log σ², so "
                                          "σ = exp(logvar / 2).")
    draws = values.get("draws")
    if draws is None or draws.shape != (n_draws, mu.shape[1]):
        raise Fail(f"wrong shape for a batch of {n_draws} rows")
    # Diagnosed first, from many draws: each coordinate's sample mean has standard error σ/√n, its sample variance
    # σ²√(2/n) (Gaussian data): 5 SE.
    sigma2 = logvar.double().exp()[0]
    mean, var = draws.double().mean(0), draws.double().var(0)
    if not (torch.isfinite(mean).all() and torch.isfinite(var).all()):
        raise Fail("NaN or inf among many draws")
    if ((mean - mu.double()[0]).abs() > 5 * (sigma2 / n_draws).sqrt() + 1e-9).any():
        raise Fail("the sample mean of many draws is not mu (beyond 5 standard errors)", "add mu to the scaled noise.",
                   diagnosis="mu_not_added")
    if ((var - sigma2).abs() > 5 * sigma2 * (2 / n_draws) ** 0.5).any():
        if float(var.max()) < 1e-12:
            raise Fail("z does not vary: no noise was added", "draw eps ~ N(0, I) and return mu + sigma * eps.",
                       diagnosis="no_noise")
        lv = logvar.double()[0]
        candidates = {"logvar_as_std": ("used logvar as the standard deviation σ (z = mu + logvar * eps)", lv**2),
                      "logvar_as_variance": ("used logvar as the variance σ²", lv.abs()),
                      "half_missing_in_std": ("forgot the ½: exp(logvar) is σ², not σ", sigma2**2),
                      "sqrt_sigma_as_std": ("used exp(logvar / 4) or sqrt(σ) as the standard deviation",
                                            sigma2.sqrt())}
        for diagnosis, (label, candidate) in candidates.items():
            if ((var - candidate).abs() <= 5 * candidate * (2 / n_draws) ** 0.5 + 1e-12).all():
                raise Fail("the sample variance is not exp(logvar) (beyond 5 standard errors)",
                           f"you probably {label}.", diagnosis)
        raise Fail("the sample variance is not exp(logvar) (beyond 5 standard errors)",
                   "the noise must be scaled by σ = exp(logvar / 2).")
    if "mu_grad" not in values and "logvar_grad" not in values:
        raise Fail("no gradient reaches mu or logvar: z is detached from them",
                   "do not detach, and do not sample with torch.normal(mu, std) (it has no gradient).", diagnosis="z_detached")
    if "mu_grad" not in values:
        raise Fail("no gradient reaches mu (dz/dmu is missing)", "z = mu + sigma * eps: did you forget to "
                                                                 "add mu?", diagnosis="mu_not_added")
    if "logvar_grad" not in values:
        raise Fail("no gradient reaches logvar", "sigma = exp(logvar / 2) must be computed from logvar.")
    after = values.get("inputs_after")
    if after is None or after.shape != (2, *mu.shape) or not torch.equal(after, torch.stack([mu, logvar]).to(after.dtype)):
        raise Fail("changed mu or logvar in place", "build new tensors.", diagnosis="inputs_modified_in_place")
    mu_grad, logvar_grad = values.get("mu_grad"), values.get("logvar_grad")
    if mu_grad is None or mu_grad.shape != mu.shape or not torch.allclose(mu_grad, torch.ones_like(mu), rtol=1e-5,
                                                                             atol=1e-8):
        raise Fail("dz/dmu is not 1", "z = mu + sigma * eps.")
    # dz/dlogvar = ½ σ ε = ½ (z - μ) for z = μ + σ ε, whatever ε was drawn.
    if logvar_grad is None or logvar_grad.shape != mu.shape or not torch.allclose(
            logvar_grad.double(), 0.5 * (z.double() - mu.double()), rtol=1e-4, atol=1e-6):
        raise Fail("wrong dz/dlogvar", "z must be mu + exp(logvar / 2) * eps.")
    again = values.get("again")
    if again is None or not torch.equal(again, z):
        raise Fail("equal seeds give different samples",
                   "with a generator, draw eps = torch.randn(mu.shape, generator=generator); randn_like ignores it.",
                   diagnosis="generator_ignored")
    return None


@criteria("reparameterize")
def judge_reparameterize_visible(got: dict, want: dict) -> str:  # noqa: ARG001 - statistical, no reference
    mu, logvar = probes._visible_reparameterize_inputs()
    _judge_reparameterize_case(got, mu, logvar, 100_000)
    return "shape, gradients, reproducibility, mean and variance over many draws"


@criteria("reparameterize (hidden)")
def judge_reparameterize_hidden(got: dict, want: dict) -> str:  # noqa: ARG001 - statistical, no reference
    for name, mu, logvar, _, n in probes._hidden_reparameterize_inputs():
        values = {k[len(name) + 1:]: v for k, v in got.items() if k.startswith(name + ".")}
        _judge_reparameterize_case(values, mu, logvar, n)
    for key, shape in (("batch3d_shape", [2, 3, 4]), ("batch3d_seeded_shape", [3, 2, 5])):
        if got.get(key) is None or got[key].tolist() != shape:
            raise Fail("reparameterize on a 3-d batch returned the wrong shape", "z has the shape of mu, whatever it "
                                                                                 "is.")
    return "right on the hidden inputs"


# --------------------------------------------------------------------------------------------- 5.2 negative ELBO
def _elbo_right_and_wrong(x, logits, mu, logvar) -> tuple[torch.Tensor, dict[str, tuple[str, torch.Tensor]]]:
    """The right (loss, reconstruction, kl) and the usual wrong ones (the check cell's list: diagnosis -> (hint,
    value)), float64."""
    x, logits, mu, logvar = (t.double() for t in (x, logits, mu, logvar))
    B = len(x)
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / B
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum() / B
    kl_logstd = 0.5 * (mu**2 + (2 * logvar).exp() - 1 - 2 * logvar).sum() / B
    rec_probs = F.binary_cross_entropy_with_logits(torch.sigmoid(logits), x, reduction="sum") / B
    mistakes = {
        "kl_sign_flipped": ("the KL term's sign is flipped (loss = reconstruction - KL)", (rec - kl, rec, -kl)),
        "mean_over_pixels": ("the reconstruction is a mean over pixels instead of a sum",
                             (rec / PIXELS + kl, rec / PIXELS, kl)),
        "sum_over_batch": ("everything is summed over the batch instead of averaged", (B * (rec + kl), B * rec, B * kl)),
        "logvar_as_log_sigma": ("logvar is treated as log σ (log-std) instead of log σ²", (rec + kl_logstd, rec, kl_logstd)),
        "sigmoid_applied_twice": ("probabilities were passed where logits were expected (sigmoid applied twice)",
                                  (rec_probs + kl, rec_probs, kl)),
        "kl_missing_from_loss": ("the KL term is missing from the loss", (rec, rec, kl)),
        "kl_missing_half": ("the KL is missing its factor ½", (rec + 2 * kl, rec, 2 * kl)),
        "kl_missing_minus_one": ("the KL is missing its -1 inside the sum",
                                 (rec + kl + mu.shape[1] / 2, rec, kl + mu.shape[1] / 2)),
        "kl_missing_log_variance": ("the KL is missing its -log σ² term",
                                    (rec + kl + 0.5 * logvar.sum() / B, rec, kl + 0.5 * logvar.sum() / B)),
        "kl_mean_over_latent": ("the KL is a mean over latent dimensions instead of a sum",
                                (rec + kl / mu.shape[1], rec, kl / mu.shape[1])),
        "kl_zero": ("the KL term is missing (kl = 0)", (rec, rec, torch.zeros((), dtype=rec.dtype))),
    }
    return torch.stack((rec + kl, rec, kl)), {k: (hint, torch.stack(v)) for k, (hint, v) in mistakes.items()}


def _judge_negative_elbo(hidden: bool) -> Judge:
    @criteria("negative_elbo (hidden)" if hidden else "negative_elbo")
    def judge(got: dict, want: dict) -> str:  # noqa: ARG001 - the right values are recomputed here (instructor code)
        for i, case in enumerate(probes._elbo_cases(hidden)):
            if not flag(got, f"case{i}.triple"):
                raise Fail("expected a tuple (loss, reconstruction, kl)")
            parts = [got.get(f"case{i}.{p}") for p in ("loss", "reconstruction", "kl")]
            if not flag(got, f"case{i}.tensors") or any(p is None or p.shape != () for p in parts):
                raise Fail("loss, reconstruction and kl must each be a scalar tensor (shape ())",
                           "reduce to one number: sum over dimensions, mean over the batch.")
            stacked = torch.stack([p.double() for p in parts])
            if not torch.isfinite(stacked).all():
                raise Fail("returned NaN or inf")
            right, mistakes = _elbo_right_and_wrong(*case)
            if torch.allclose(stacked, right, rtol=1e-4, atol=1e-8):
                continue
            mistake = match_mistake(stacked, mistakes, rtol=1e-4)
            if mistake:
                raise Fail(f"the result matches a known mistake: {mistake[1]}", diagnosis=mistake[0])
            detail = "" if hidden else f" (largest difference {(stacked - right).abs().max().item():.3g})"
            raise Fail(f"wrong (loss, reconstruction, kl){detail}")
        kl_random = got.get("kl_random")
        if kl_random is None or kl_random.shape != (20,) or not torch.isfinite(kl_random).all() or (kl_random < 0).any():
            raise Fail("kl: KL < 0 for some mu, logvar", "KL(q || p) is never negative: did you use log σ "
                                                         "where log σ² was meant, or flip a sign?", diagnosis="negative_kl")
        at_prior = got.get("kl_at_prior")
        if at_prior is None or at_prior.numel() != 1 or at_prior.item() != 0.0:
            raise Fail("kl: KL is not exactly 0 at mu = 0, logvar = 0",
                       "the -1 inside the sum cancels exp(0) = 1: is a term missing?")
        return (f"right {'on the hidden inputs' if hidden else 'on the visible example'}; KL >= 0, and 0 "
                   f"at the prior")

    return judge


def _judge_vae_case(values: dict, latent_dim: int, hidden: int) -> None:
    expected = {"hidden": (PIXELS, hidden), "mu": (hidden, latent_dim), "logvar": (hidden, latent_dim)}
    for attr, sizes in expected.items():
        got = values.get(f"{attr}_layer")
        if got is None or tuple(got.tolist()) != sizes:
            raise Fail(f"self.{attr} should be Linear{sizes}")
    linears = [tuple(r) for r in values.get("decoder_linears", torch.zeros(0, 2)).tolist()]
    if linears != [(latent_dim, hidden), (hidden, PIXELS)]:
        raise Fail(f"decoder Linear layers are {linears}, expected {[(latent_dim, hidden), (hidden, PIXELS)]}")
    if flag(values, "decoder_sigmoid"):
        raise Fail("the decoder ends with a sigmoid", "return logits; the loss applies the sigmoid itself.",
                   diagnosis="decoder_returns_probabilities")
    for key, shape in (("logits", (6, PIXELS)), ("mu", (6, latent_dim)), ("logvar", (6, latent_dim))):
        if values.get(key) is None or tuple(values[key].shape) != shape:
            raise Fail(f"forward's {key} should have shape {shape}")
    for key in ("mu", "logvar"):
        other = values.get(f"{key}_encode")
        if other is None or other.shape != values[key].shape or not torch.allclose(values[key], other, rtol=1e-5,
                                                                                    atol=1e-8):
            raise Fail(f"forward does not return encode's {key}")
    if values.get("logits_again") is not None and torch.equal(values["logits"], values["logits_again"]):
        raise Fail("two forward passes give identical logits: no sampling",
                   "decode reparameterize(mu, logvar), not mu.")
    for part, hint, diagnosis in (("encoder", "apply a ReLU after self.hidden.", "encoder_affine"),
                                  ("decoder", "put a ReLU between its two Linear layers.", "decoder_affine")):
        middle, ends = values.get(f"{part}_middle"), values.get(f"{part}_ends")
        if middle is None or ends is None or middle.shape != ends.shape:
            raise Fail(f"the {part} could not be evaluated at two inputs and their midpoint")
        if torch.allclose(middle, ends, rtol=1e-4, atol=1e-5):
            raise Fail(f"the {part} is an affine function of its input", hint, diagnosis=diagnosis)
    return None


@criteria("VAE")
def judge_vae_visible(got: dict, want: dict) -> str:  # noqa: ARG001 - structural checks, no reference
    _judge_vae_case(got, LATENT, HIDDEN)
    return f"latent_dim={LATENT}, hidden={HIDDEN}"


@criteria("VAE (hidden)")
def judge_vae_hidden(got: dict, want: dict) -> str:  # noqa: ARG001 - structural checks, no reference
    for d, h in HIDDEN_VAE_CASES:
        prefix = f"d{d}_h{h}."
        _judge_vae_case({k[len(prefix):]: v for k, v in got.items() if k.startswith(prefix)}, d, h)
    return "right on the hidden sizes"


def _judge_samples(values: dict, n: int) -> None:
    shape = values.get("shape")
    if shape is None or shape.tolist() != [n, PIXELS]:
        raise Fail(f"returned shape {None if shape is None else tuple(shape.tolist())}, expected {(n, PIXELS)}")
    if not (torch.isfinite(values["min"]) and torch.isfinite(values["max"])) or values["min"] < 0 or values["max"] > 1:
        raise Fail("values outside [0, 1]", "return torch.sigmoid(logits), the pixel probabilities.",
                   diagnosis="logits_for_probabilities")
    if flag(values, "requires_grad"):
        raise Fail("the samples carry gradients", "decode under torch.no_grad().", diagnosis="samples_carry_gradients")
    return None


def _sub(values: dict, prefix: str) -> dict:
    return {k[len(prefix) + 1:]: v for k, v in values.items() if k.startswith(prefix + ".")}


@criteria("sample_prior and prediction_scores")
def judge_sampling_visible(got: dict, want: dict) -> str:  # noqa: ARG001 - known answers, no reference
    samples = _sub(got, "samples")
    _judge_samples(samples, 4000)
    # mean of sigmoid(z), z ~ N(0, 1) is ½ by symmetry; its sd is about 0.21, so the mean of 4,000 has SE 0.0033: 5 SE.
    mean_pixel = samples["first_column"].double().mean().item()
    if abs(mean_pixel - 0.5) > 5 * 0.21 / 4000**0.5:
        raise Fail(f"mean pixel value {mean_pixel:.3f}, expected 0.5 for codes from N(0, I)",
                   "draw z with torch.randn (standard normal), not torch.rand (uniform).", diagnosis="uniform_prior_samples")
    again = _sub(got, "again")
    if not all(k in again and torch.equal(again[k], samples[k]) for k in ("shape", "first_column", "rows")):
        raise Fail("equal seeds give different samples", "draw z with generator=generator.",
                   diagnosis="sample_prior_generator_ignored")
    if not flag(got, "floats"):
        raise Fail("prediction_scores should return Python floats", "return Python floats (.item()).")
    scores = got.get("scores")
    expected = torch.tensor([(1 + 0.1) / 2, (0 + math.log(10)) / 2], dtype=torch.float64)
    if scores is None or scores.shape != (2,) or not torch.allclose(scores.double(), expected, rtol=1e-4, atol=1e-8):
        raise Fail(f"prediction_scores (max-probability, entropy) = {scores.tolist() if scores is not None else None}, "
                   f"expected {[round(v, 4) for v in expected.tolist()]}",
                   "entropy in nats uses the natural log; average over images.")
    return "right on the visible examples"


@criteria("sample_prior and prediction_scores (hidden)")
def judge_sampling_hidden(got: dict, want: dict) -> str:
    require_all_close(got, {key: want[key] for key in ("scores0", "scores1")}, rtol=1e-4, atol=1e-6, hidden=True,
                      hints=dict.fromkeys(("scores0", "scores1"), "max-probability and entropy (natural log) of the "
                                          "softmax, each averaged over the images."))
    for prefix, n in (("probe_decoder", 7), ("mlp_decoder", 5)):
        _judge_samples(_sub(got, prefix), n)
    first, again = _sub(got, "mlp_decoder"), _sub(got, "mlp_again")
    if not all(k in again and torch.equal(again[k], first[k]) for k in ("shape", "first_column", "rows")):
        raise Fail("equal seeds give different samples", "draw z with generator=generator.",
                   diagnosis="sample_prior_generator_ignored")
    return "right on the hidden inputs"


_CLASSIFIER: list = []


def _trusted_classifier() -> nn.Module:
    """The notebook's digit classifier, trained here (trusted) exactly as the notebook does, once per process."""
    if not _CLASSIFIER:
        from utils import data, train

        x_train, y_train = data.load_mnist(split="train", flatten=True)
        train.seed_everything(0)
        classifier = nn.Sequential(nn.Linear(PIXELS, 256), nn.ReLU(), nn.Linear(256, 10))
        train.fit(classifier, lambda m, b: F.cross_entropy(m(b[0]), b[1]), (x_train, y_train), epochs=10,
                  progress=False)
        _CLASSIFIER.append(classifier.eval())
    return _CLASSIFIER[0]


def _prior_scores(values: dict, prefix: str, gen: torch.Generator, n: int) -> tuple[float, float]:
    decoder, classifier = _load_strict(ReferenceVAE().decoder, values, prefix), _trusted_classifier()
    with torch.no_grad():
        images = torch.sigmoid(decoder(torch.randn(n, LATENT, generator=gen)))
        log_p = F.log_softmax(classifier(images), dim=1)
    p = log_p.exp()
    return p.max(1).values.mean().item(), -(p * log_p).sum(1).mean().item()


@criteria("prior samples of the VAE and of the autoencoder")
def judge_sampling_margin(got: dict, want: dict) -> str:  # noqa: ARG001 - evaluated here, no reference
    """Both decoders in the reference architecture, 10,000 prior samples each, scored by a classifier trained here.

    The trusted classifier reproduces the notebook's (same seed and training; test accuracy 0.921) and its scores
    of the solution's samples. On binarized digits the reference solution's margins are 0.067-0.099 (mean 0.084,
    sd 0.011; max-probability) and 0.22-0.29 nats (mean 0.263, sd 0.025; entropy) over 5 seeds, against the check
    cell's 0.04 and 0.15 (mean - 4 sd). Per-image spreads of 0.21 and 0.48 give the margins standard errors of
    0.21·√(2/10⁴) ≈ 0.003 and 0.48·√(2/10⁴) ≈ 0.007 with 10,000 samples per model, so the bounds are about 15
    standard errors below the reference's mean: sampling noise cannot decide, the spread over seeds is the margin.
    """
    try:
        gen = torch.Generator().manual_seed(0)
        vae_conf, vae_ent = _prior_scores(got, "vae_decoder", gen, 10_000)
        ae_conf, ae_ent = _prior_scores(got, "ae_decoder", gen, 10_000)
    except Exception as exc:  # noqa: BLE001 - malformed weights are a failed check, with the reason
        raise Fail(f"the decoders could not be evaluated ({str(exc)[:200]})") from None
    if not vae_conf - ae_conf >= 0.04:
        raise Fail(f"VAE minus AE mean max-probability = {vae_conf - ae_conf:.3f}, below 0.04",
                   "the VAE's prior samples should look more like digits: check the KL term and the training.")
    if not ae_ent - vae_ent >= 0.15:
        raise Fail(f"AE minus VAE mean entropy = {ae_ent - vae_ent:.3f} nats, below 0.15",
                   "the VAE's prior samples should look more like digits: check the KL term and the training.")
    return (f"the VAE's beat the autoencoder's: max-probability {vae_conf:.3f} vs {ae_conf:.3f}, "
               f"entropy {vae_ent:.3f} vs {ae_ent:.3f} nats")


def _judge_grid(grid: torch.Tensor | None, n: int, low: float, high: float) -> None:
    if grid is None or tuple(grid.shape) != (n,):
        raise Fail(f"returned shape {None if grid is None else tuple(grid.shape)}, expected ({n},)")
    grid = grid.double()
    probabilities = torch.linspace(low, high, n, dtype=torch.float64)
    if torch.allclose(grid, probabilities, atol=1e-5):
        raise Fail("these are the probabilities themselves", "apply the inverse CDF (icdf) to them.",
                   diagnosis="grid_of_probabilities")
    if n > 2 and torch.allclose(grid, torch.linspace(grid[0].item(), grid[-1].item(), n, dtype=torch.float64),
                                atol=1e-3):
        raise Fail("evenly spaced values, not quantiles", "apply icdf to evenly spaced probabilities.",
                   diagnosis="grid_evenly_spaced")
    if not torch.isfinite(grid).all() or not torch.allclose(torch.distributions.Normal(0.0, 1.0).cdf(grid),
                                                            probabilities, rtol=1e-4, atol=1e-6):
        raise Fail(f"Φ(values) are not the evenly spaced probabilities from {low} to {high}",
                   "the standard normal's icdf of torch.linspace(low, high, n).")
    return None


@criteria("gaussian_grid")
def judge_grid_visible(got: dict, want: dict) -> str:  # noqa: ARG001 - known answer
    _judge_grid(got.get("grid5"), 5, 0.05, 0.95)
    return "gaussian_grid(5) right"


@criteria("gaussian_grid (hidden)")
def judge_grid_hidden(got: dict, want: dict) -> str:  # noqa: ARG001 - known answers
    for n, low, high in HIDDEN_GRIDS:
        _judge_grid(got.get(f"grid{n}"), n, low, high)
    return "right on the hidden inputs"


def _exact_log_px(x, logits):
    return -F.binary_cross_entropy_with_logits(logits.double().expand(len(x), -1), x.double(), reduction="none").sum(1)


@criteria("importance_log_px")
def judge_importance_visible(got: dict, want: dict) -> str:  # noqa: ARG001 - exact answer computed here
    x, logits = probes._known_visible()
    exact = _exact_log_px(x, logits)
    for k in (1, 7):
        estimate = got.get(f"k{k}")
        if estimate is None or tuple(estimate.shape) != (4,):
            raise Fail(f"importance_log_px returned shape {None if estimate is None else tuple(estimate.shape)}, "
                       "expected (4,)", "one estimate per image: logsumexp over the k samples only.")
        estimate = estimate.double()
        if k > 1 and torch.allclose(estimate, exact + math.log(k), atol=1e-3):
            raise Fail("off by log k", "average the weights: logsumexp(log w) - log k.", diagnosis="log_k_missing")
        if not torch.isfinite(estimate).all() or not torch.allclose(estimate, exact, rtol=1e-5, atol=1e-3):
            raise Fail(f"importance_log_px with q = prior (k = {k}): wrong values (largest difference "
                       f"{(estimate - exact).abs().max().item():.3g})",
                        "log p(z) and log q(z|x) must both be full Gaussian log-densities, with the same constants.")
    return "exact when q is the prior (k = 1 and 7)"


def _importance_se(d: int, mu: float, logvar: float, k: int) -> float:
    """Delta method: SE(log mean w) ≈ sd(w) / (√k E[w]) = √(E_q[(p/q)²] - 1) / √k with E_q[(p/q)²] = (∫ p²/q)^d."""
    zz = torch.linspace(-12, 12, 20001, dtype=torch.float64)
    per_dim = torch.trapezoid(torch.exp(2 * torch.distributions.Normal(0.0, 1.0).log_prob(zz)
                                        - torch.distributions.Normal(mu, math.exp(logvar / 2)).log_prob(zz)), zz).item()
    return math.sqrt(per_dim**d - 1) / math.sqrt(k)


@criteria("importance_log_px (hidden)")
def judge_importance_hidden(got: dict, want: dict) -> str:  # noqa: ARG001 - exact answer and SE computed here
    for name, seed, batch, threshold, d, mu, logvar, k, _ in HIDDEN_IS_CASES:
        x, logits = probes._known_hidden(seed, batch, threshold)
        estimate = got.get(name)
        if estimate is None or tuple(estimate.shape) != (batch,):
            raise Fail("wrong shape", "one estimate per image, shape (B,).")
        signed = estimate.double() - _exact_log_px(x, logits)
        se = _importance_se(d, mu, logvar, k)
        if not torch.isfinite(signed).all() or (signed.abs() > 5 * se).any():
            if torch.isfinite(signed).all() and ((signed - unit_variance_offset(d, mu, logvar)).abs() <= 5 * se).all():
                raise Fail("the estimate converges where a unit-variance q would put it",
                           "log q(z|x) must use q's own variance σ² = exp(logvar), not 1.",
                           diagnosis="log_q_unit_variance")
            raise Fail("estimate off by more than 5 standard errors when q differs from "
                       "the prior", "log q(z|x) must use q's own mean and variance.")
    return "within 5 standard errors of the exact value on the hidden inputs"


@criteria("importance_log_px on the trained VAE")
def judge_importance_result(got: dict, want: dict) -> str:  # noqa: ARG001 - ELBO computed here from the weights
    """The check cell's three conditions, with the ELBO computed here (reference VAE, the student's weights).

    The ELBO of the 100 images uses 200 draws each (standard error about 0.03 nats, negligible against the tolerance
    below). E[L_1] is the ELBO: the mean of the 100 L_1 lies within 5 standard errors (SE from L_1's spread, a
    conservative choice, as in the check cell).
    """
    try:
        model = _load_strict(ReferenceVAE(), got, "vae")
        elbo = -_negative_elbo_per_image(model, probes._offline_test_images()[:100], draws=200, seed=1).mean().item()
    except Exception as exc:  # noqa: BLE001 - malformed weights are a failed check, with the reason
        raise Fail(f"the trained VAE could not be evaluated ({str(exc)[:200]})") from None
    estimates = {k: got.get(f"estimates.k{k}") for k in IS_KS}
    if any(e is None or tuple(e.shape) != (100,) or not torch.isfinite(e).all() for e in estimates.values()):
        raise Fail("expected 100 finite estimates (one per image) for each k")
    l1 = estimates[1].double()
    if abs(l1.mean().item() - elbo) > 5 * l1.std().item() / len(l1) ** 0.5:
        raise Fail("L_1 does not average to the ELBO", "with k = 1 the estimate is log w of one "
                                                       "sample.")
    means = [estimates[k].double().mean().item() for k in IS_KS]
    if not all(later > earlier for earlier, later in zip(means, means[1:], strict=False)):
        raise Fail(f"the estimates do not rise with k: {[round(m, 2) for m in means]}")
    gap = means[-1] - elbo
    low, high = IS_GAP_RANGE
    if not low <= gap <= high:
        raise Fail(f"L_1000 minus ELBO = {gap:.2f} nats, outside [{low:g}, {high:g}]")
    return (f"L_1 averages to the ELBO ({elbo:.2f}), the estimates rise with k, L_1000 is {gap:.2f} nats above it")


@criteria("encoder_gradients")
def judge_gradients_visible(got: dict, want: dict) -> str:  # noqa: ARG001 - statistical, no reference
    expected = [GROUP_SIZES[g] for g in GROUPS]
    for method in ("score", "pathwise"):
        sizes = got.get(f"sizes_{method}")
        if sizes is None or sizes.tolist() != expected:
            raise Fail(f"encoder_gradients ({method}): the flat vectors have sizes "
                       f"{None if sizes is None else sizes.tolist()}, expected {expected} for {list(GROUPS)}")
    if got.get("same0") is None or got.get("same1") is None or not torch.equal(got["same0"], got["same1"]):
        raise Fail("equal seeds give different estimates", "pass the generator to reparameterize.",
                   diagnosis="gradients_generator_ignored")
    if flag(got, "grads_left"):
        raise Fail(".grad was filled in", "use torch.autograd.grad instead of .backward().",
                   diagnosis="backward_for_autograd_grad")
    bias_s, bias_p = got.get("mu_bias_score"), got.get("mu_bias_pathwise")
    if bias_s is None or bias_p is None or bias_s.shape != (probes.REPEATS, LATENT) or bias_p.shape != (probes.REPEATS, LATENT):
        raise Fail("wrong shape of the mu layer's estimates")
    bias_s, bias_p = bias_s.double(), bias_p.double()
    # Both estimators are unbiased for the same gradient: the difference of means over R repeats has
    # SE = √(var_score / R + var_pathwise / R); 5 SE, as in the check cell.
    se = (bias_s.var(0) / probes.REPEATS + bias_p.var(0) / probes.REPEATS).sqrt()
    if not torch.isfinite(se).all() or ((bias_s.mean(0) - bias_p.mean(0)).abs() > 5 * se).any():
        raise Fail("score-function and pathwise means disagree beyond 5 standard errors",
                   "score: detach z and log p(x|z), differentiate log q(z|x); pathwise: keep z = mu + sigma * eps "
                    "attached.")
    return "shapes, reproducible, unbiased (means agree within 5 SE)"


@criteria("encoder_gradients: variance ratio")
def judge_gradients_result(got: dict, want: dict) -> str:  # noqa: ARG001 - computed here from the estimates
    """Variance ratio score / pathwise per layer, from the student's repeated estimates on a fixed coordinate subset.

    The ratio of the mean per-coordinate variances over 128 random coordinates estimates the check cell's ratio over
    all coordinates; the reference solution's is about 10,000 in each layer, the bound 10, so the subset's sampling
    error (a factor of 2 at most) cannot decide the verdict.
    """
    ratios = {}
    for g in GROUPS:
        s, p = got.get(f"score.{g}"), got.get(f"pathwise.{g}")
        if s is None or p is None or s.shape != (probes.REPEATS, SUBSET) or p.shape != (probes.REPEATS, SUBSET):
            raise Fail(f"encoder_gradients['{g}']: wrong shape of the repeated estimates")
        v_s, v_p = s.double().var(0).mean().item(), p.double().var(0).mean().item()
        ratios[g] = v_s / v_p if v_p > 0 else math.inf if v_s > 0 else math.nan
        if not (math.isfinite(v_s) and math.isfinite(v_p)) or not ratios[g] >= 10.0:
            raise Fail(f"variance ratio score / pathwise, {g} layer = {ratios[g]:.3g}, below 10",
                       "the score-function estimator multiplies log p(x|z) (about -100) into every gradient entry; "
                        "check that each method is the one named.")
    return ("score / pathwise: " + ", ".join(f"{g} {r:.3g}" for g, r in ratios.items()))


JUDGES = {
    "ex5_1_visible": judge_reparameterize_visible,
    "ex5_1_hidden": judge_reparameterize_hidden,
    "ex5_2_visible": _judge_negative_elbo(hidden=False),
    "ex5_2_hidden": _judge_negative_elbo(hidden=True),
    "ex5_3_visible": judge_vae_visible,
    "ex5_3_hidden": judge_vae_hidden,
    # The check cell's 120-nat bound on the trained d = 20 model, measured here; its CPU-time bound is not graded
    # (a timing from the student's kernel cannot be trusted; the grader's cell time limit bounds the training).
    "ex5_3_trained": _judge_trained("vae", LATENT, D20_BOUND,
                                    "check negative_elbo's reductions and that the decoder returns logits."),
    "ex5_4_visible": judge_sampling_visible,
    "ex5_4_hidden": judge_sampling_hidden,
    "ex5_4_margin": judge_sampling_margin,
    "ex5_5_visible": judge_grid_visible,
    "ex5_5_hidden": judge_grid_hidden,
    "ex5_5_trained": _judge_trained("vae_2d", 2, D2_BOUND,
                                    "train the d = 2 model as prescribed (30 epochs, learning rate 3e-3)."),
    "ex5_6_visible": judge_importance_visible,
    "ex5_6_hidden": judge_importance_hidden,
    "ex5_6_result": judge_importance_result,
    "ex5_7_visible": judge_gradients_visible,
    "ex5_7_result": judge_gradients_result,
}

EXERCISE_OF = {"ex5_1_visible": ("reparameterize", "5.1"), "ex5_2_visible": ("negative_elbo", "5.2"),
               "ex5_3_visible": ("VAE", "5.3")}


def _naming_upstream(part: str, judge: Judge) -> Judge:
    """The judge of a later part whose failure names the first earlier exercise that fails its own check."""

    def wrapped(got: dict, want: dict) -> Verdict:
        verdict = judge(got, want)
        if verdict.passed:
            return verdict
        for upstream in probes.UPSTREAM[part]:
            prefix = f"upstream.{upstream}."
            values = {k[len(prefix):]: v for k, v in got.items() if k.startswith(prefix)}
            if not values:  # results without the earlier exercise's probe: nothing to say about it
                continue
            if flag(values, "error") or not JUDGES[upstream](values, {}).passed:
                name, exercise = EXERCISE_OF[upstream]
                return Verdict(False, f"{verdict.message} This part uses your {name} from {exercise}, which fails "
                                      "its check: fix that first.", "upstream_failed")
        return verdict

    wrapped.__name__ = getattr(judge, "__name__", "judge")
    return wrapped


for _part in probes.UPSTREAM:
    JUDGES[_part] = _naming_upstream(_part, JUDGES[_part])
