"""Notebook 05's check cells pass the reference answers and name the usual mistakes in wrong ones."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests import nbtools
from utils import checks

DEFINED = ("reparameterize", "negative_elbo", "VAE", "sample_prior", "gaussian_grid", "importance_log_px", "encoder_gradients")
NEEDS_VISIBLE = {"ex5_1_hidden": "ex5_1_visible", "ex5_2_hidden": "ex5_2_visible", "ex5_3_hidden": "ex5_3_visible",
                 "ex5_4_hidden": "ex5_4_visible", "ex5_6_hidden": "ex5_6_visible"}


@pytest.fixture(scope="module")
def nb():
    return nbtools.load("05_vae")


def run_check(nb, grade_id, **overrides):
    ns = {"torch": torch, "nn": nn, "F": F, "math": math, "checks": checks, "PIXELS": 784, "HIDDEN": 400, "LATENT": 20}
    for name in DEFINED:
        assert nbtools.run_source(nbtools.cell_defining(nb, name), ns) is None, name
    ns.update(overrides)
    if grade_id in NEEDS_VISIBLE:  # hidden checks reuse helpers defined in the visible check cell
        nbtools.run_source(nbtools.cell_by_grade_id(nb, NEEDS_VISIBLE[grade_id]), ns)
    return nbtools.run_source(nbtools.cell_by_grade_id(nb, grade_id), ns)


def assert_fails(error, says):
    assert isinstance(error, AssertionError), f"the check passed or crashed: {error!r}"
    assert says in str(error), str(error)


@pytest.mark.parametrize("grade_id", ["ex5_1_visible", "ex5_1_hidden", "ex5_2_visible", "ex5_2_hidden", "ex5_3_visible",
                                      "ex5_3_hidden", "ex5_4_visible", "ex5_4_hidden", "ex5_5_visible", "ex5_5_hidden",
                                      "ex5_6_visible", "ex5_6_hidden"])
def test_reference_answers_pass(nb, grade_id):
    assert run_check(nb, grade_id) is None


def eps_like(mu, generator):
    return torch.randn(mu.shape, generator=generator, dtype=mu.dtype) if generator is not None else torch.randn_like(mu)


REPARAMETERIZE_MISTAKES = [  # (wrong reparameterize, what the checks say)
    (lambda mu, lv, g=None: mu + lv * eps_like(mu, g), "dz/dlogvar"),
    (lambda mu, lv, g=None: mu + torch.exp(lv) * eps_like(mu, g), "dz/dlogvar"),
    (lambda mu, lv, g=None: mu + torch.sqrt(lv) * eps_like(mu, g), "NaN from sqrt(logvar)"),
    (lambda mu, lv, g=None: mu + torch.exp(0.5 * lv) * torch.randn_like(mu), "equal seeds give different samples"),
    (lambda mu, lv, g=None: mu.add_(torch.exp(0.5 * lv) * eps_like(mu, g)), "in-place operation"),
    (lambda mu, lv, g=None: (mu + torch.exp(0.5 * lv) * eps_like(mu, g)).detach(), "no gradient reaches"),
    (lambda mu, lv, g=None: torch.exp(0.5 * lv) * eps_like(mu, g), "dz/dmu"),
]


@pytest.mark.parametrize(("wrong", "says"), REPARAMETERIZE_MISTAKES)
def test_reparameterize_mistakes(nb, wrong, says):
    assert_fails(run_check(nb, "ex5_1_visible", reparameterize=wrong), says)


def test_variance_diagnosis_names_the_forgotten_half(nb):
    """A wrong sampler whose gradients look right locally: the many-draw variance test names the mistake."""

    def forgot_half(mu, logvar, generator=None):
        z = mu + torch.exp(0.5 * logvar) * eps_like(mu, generator)
        if mu.dim() == 2 and len(mu) > 1000:  # only the many-draw test sees the wrong scale
            return mu + torch.exp(logvar) * eps_like(mu, generator)
        return z

    assert_fails(run_check(nb, "ex5_1_visible", reparameterize=forgot_half), "forgot the ½")


def elbo(kind):
    def fn(x, logits, mu, logvar):
        B = len(x)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / B
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum() / B
        if kind == "sign":
            return rec - kl, rec, -kl
        if kind == "pixel_mean":
            return F.binary_cross_entropy_with_logits(logits, x, reduction="mean") + kl, rec / 784, kl
        if kind == "batch_sum":
            return B * (rec + kl), B * rec, B * kl
        if kind == "logstd":
            kl2 = 0.5 * (mu**2 + (2 * logvar).exp() - 1 - 2 * logvar).sum() / B
            return rec + kl2, rec, kl2
        if kind == "probs":
            rp = F.binary_cross_entropy_with_logits(torch.sigmoid(logits), x, reduction="sum") / B
            return rp + kl, rp, kl
        if kind == "no_kl":
            return rec, rec, kl
        if kind == "per_image":
            return rec + kl, F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1), kl
        raise AssertionError(kind)

    return fn


# The kinds of wrong negative ELBO above and what the check says; the hidden tests use the same table.
ELBO_MISTAKES = [
    ("sign", "sign is flipped"),
    ("pixel_mean", "mean over pixels instead of a sum"),
    ("batch_sum", "summed over the batch"),
    ("logstd", "log σ (log-std)"),
    ("probs", "probabilities were passed"),
    ("no_kl", "KL term is missing"),
    ("per_image", "expected shape ()"),
]


@pytest.mark.parametrize(("kind", "says"), ELBO_MISTAKES)
@pytest.mark.parametrize("grade_id", ["ex5_2_visible", "ex5_2_hidden"])
def test_negative_elbo_mistakes_are_named(nb, kind, says, grade_id):
    assert_fails(run_check(nb, grade_id, negative_elbo=elbo(kind)), says)


def wrong_vae_classes(vae_class: type) -> tuple[type, type]:
    """Two typical wrong VAEs built on the right class: one decodes μ (no sampling), one ends with a sigmoid."""

    class DecodesMean(vae_class):
        def forward(self, x):
            mu, logvar = self.encode(x)
            return self.decoder(mu), mu, logvar

    class SigmoidDecoder(vae_class):
        def __init__(self, latent_dim=20, hidden=400):
            super().__init__(latent_dim, hidden)
            self.decoder = nn.Sequential(*self.decoder, nn.Sigmoid())

    return DecodesMean, SigmoidDecoder


def test_vae_without_sampling_or_with_sigmoid_is_named(nb):
    ns = {"torch": torch, "nn": nn, "F": F, "PIXELS": 784, "HIDDEN": 400, "LATENT": 20}
    nbtools.run_source(nbtools.cell_defining(nb, "reparameterize"), ns)
    nbtools.run_source(nbtools.cell_defining(nb, "VAE"), ns)
    DecodesMean, SigmoidDecoder = wrong_vae_classes(ns["VAE"])
    assert_fails(run_check(nb, "ex5_3_visible", VAE=DecodesMean), "no sampling")
    assert_fails(run_check(nb, "ex5_3_visible", VAE=SigmoidDecoder), "ends with a sigmoid")


# Typical sampling and scoring mistakes (tests/grading/test_hidden_05.py uses them too).
def uniform_codes(decoder, n, latent_dim, generator=None):
    with torch.no_grad():
        return torch.sigmoid(decoder(torch.rand(n, latent_dim, generator=generator)))


def logits_not_probs(decoder, n, latent_dim, generator=None):
    with torch.no_grad():
        return decoder(torch.randn(n, latent_dim, generator=generator))


def entropy_in_bits(classifier, images):
    p = F.softmax(classifier(images), 1).detach()
    return p.max(1).values.mean().item(), -(p * p.clamp_min(1e-30).log2()).sum(1).mean().item()


def test_sampling_and_scoring_mistakes(nb):
    assert_fails(run_check(nb, "ex5_4_visible", sample_prior=uniform_codes), "torch.randn (standard normal)")
    assert_fails(run_check(nb, "ex5_4_visible", sample_prior=logits_not_probs), "outside [0, 1]")
    assert_fails(run_check(nb, "ex5_4_visible", prediction_scores=entropy_in_bits), "natural log")


def test_grid_mistakes(nb):
    assert_fails(run_check(nb, "ex5_5_visible", gaussian_grid=lambda n, low=0.05, high=0.95: torch.linspace(low, high, n)),
                 "probabilities themselves")
    assert_fails(run_check(nb, "ex5_5_visible", gaussian_grid=lambda n, low=0.05, high=0.95: torch.linspace(-1.645, 1.645, n)),
                 "evenly spaced values, not quantiles")


def test_importance_sampling_mistakes(nb):
    ns = {"torch": torch, "nn": nn, "F": F, "math": math}
    nbtools.run_source(nbtools.cell_defining(nb, "reparameterize"), ns)
    nbtools.run_source(nbtools.cell_defining(nb, "importance_log_px"), ns)
    right = ns["importance_log_px"]

    def no_log_k(model, x, k, generator=None):
        return right(model, x, k, generator) + math.log(k)

    def q_without_constant(model, x, k, generator=None):
        mu, _ = model.encode(x)
        return right(model, x, k, generator) + 0.5 * math.log(2 * math.pi) * mu.shape[1]

    assert_fails(run_check(nb, "ex5_6_visible", importance_log_px=no_log_k), "off by log k")
    assert_fails(run_check(nb, "ex5_6_visible", importance_log_px=q_without_constant), "same constants")
