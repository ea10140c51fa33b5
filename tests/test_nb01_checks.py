"""Notebook 01's check cells pass the reference answers and fail, naming the mistake, on typical wrong ones."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests import nbtools
from utils import checks, data

EXERCISE_FUNCTIONS = ("Encoder", "Decoder", "Autoencoder", "reconstruction_loss", "linear_probe_accuracy",
                      "fit_gaussian", "sample_gaussian", "corrupt")


@pytest.fixture(scope="module")
def nb():
    return nbtools.load("01_autoencoders")


def namespace(nb, **overrides):
    ns = {"torch": torch, "nn": nn, "F": F, "checks": checks, "data": data}
    assert nbtools.run_source(nbtools.cell_defining(nb, "Encoder"), ns) is None
    for name in EXERCISE_FUNCTIONS[3:]:
        assert nbtools.run_source(nbtools.cell_defining(nb, name), ns) is None
    ns.update(overrides)
    return ns


def run_check(nb, grade_id, **overrides):
    ns = namespace(nb, **overrides)
    if grade_id == "ex1_1_hidden":  # uses check_architecture, defined in the visible check cell
        assert nbtools.run_source(nbtools.cell_by_grade_id(nb, "ex1_1_visible"), ns) is None
    return nbtools.run_source(nbtools.cell_by_grade_id(nb, grade_id), ns)


def assert_fails(error, says):
    assert isinstance(error, AssertionError), f"the check passed or crashed: {error!r}"
    assert says in str(error), str(error)


@pytest.mark.parametrize("grade_id", ["ex1_1_visible", "ex1_1_hidden", "ex1_2_visible", "ex1_2_hidden", "ex1_3_visible",
                                      "ex1_3_hidden", "ex1_4_visible", "ex1_4_hidden", "ex1_5_visible"])
def test_reference_answers_pass(nb, grade_id):
    assert run_check(nb, grade_id) is None


# --- 1.1: architecture ----------------------------------------------------------------------------------------------
def wrong_decoder_classes(ns, decoder_net):
    class Decoder(nn.Module):
        def __init__(self, code_dim=20, hidden=400):
            super().__init__()
            self.net = decoder_net(code_dim, hidden)

        def forward(self, z):
            return self.net(z)

    class Autoencoder(nn.Module):
        def __init__(self, code_dim=20, hidden=400):
            super().__init__()
            self.encoder = ns["Encoder"](code_dim, hidden)
            self.decoder = Decoder(code_dim, hidden)

        def forward(self, x):
            z = self.encoder(x.reshape(len(x), 784))
            return z, self.decoder(z)

    return Autoencoder


def test_sigmoid_decoder_is_named(nb):
    ns = namespace(nb)
    ae = wrong_decoder_classes(ns, lambda d, h: nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, 784), nn.Sigmoid()))
    assert_fails(run_check(nb, "ex1_1_visible", Autoencoder=ae), "returns probabilities")


def test_wrong_layer_is_named(nb):
    ns = namespace(nb)
    ae = wrong_decoder_classes(ns, lambda d, h: nn.Sequential(nn.Linear(d, 256), nn.ReLU(), nn.Linear(256, 784)))
    assert_fails(run_check(nb, "ex1_1_visible", Autoencoder=ae), "decoder Linear layer 1 maps 20 -> 256, expected 20 -> 400")


def test_forward_without_flatten_fails(nb):
    ns = namespace(nb)

    class NoFlatten(ns["Autoencoder"]):
        def forward(self, x):
            z = self.encoder(x)
            return z, self.decoder(z)

    error = run_check(nb, "ex1_1_visible", Autoencoder=NoFlatten)
    assert error is not None  # a shape error from the Linear layer on (B, 1, 28, 28)


# --- 1.2: reconstruction loss -----------------------------------------------------------------------------------------
# Typical loss mistakes and what the check says (the check cell; the hidden test's words for the last one: "should have
# shape ()"); tests/grading/test_hidden_01.py uses the same wrong losses.
RECONSTRUCTION_LOSS_MISTAKES = [
    (lambda x, lg: F.binary_cross_entropy_with_logits(lg, x.reshape(len(x), -1)), "a mean over pixels"),
    (lambda x, lg: F.binary_cross_entropy_with_logits(lg, x.reshape(len(x), -1), reduction="sum"), "a sum over the batch"),
    (lambda x, lg: F.binary_cross_entropy_with_logits(torch.sigmoid(lg), x.reshape(len(x), -1), reduction="sum") / len(x),
     "probabilities passed where logits"),
    (lambda x, lg: ((torch.sigmoid(lg) - x.reshape(len(x), -1)) ** 2).sum() / len(x), "squared error"),
    (lambda x, lg: F.binary_cross_entropy_with_logits(lg, x.reshape(len(x), -1), reduction="none").sum(1),
     "expected shape ()"),
]


def naive_bce(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The textbook formula through sigmoid and log: right for moderate logits, NaN or inf for large ones."""
    x = x.reshape(len(x), -1)
    p = torch.sigmoid(logits)
    return -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(1).mean()


@pytest.mark.parametrize(("wrong", "says"), RECONSTRUCTION_LOSS_MISTAKES)
def test_reconstruction_loss_mistakes(nb, wrong, says):
    assert_fails(run_check(nb, "ex1_2_visible", reconstruction_loss=wrong), says)


def test_unstable_loss_fails_hidden_check(nb):
    assert run_check(nb, "ex1_2_visible", reconstruction_loss=naive_bce) is None  # fine for moderate logits ...
    assert_fails(run_check(nb, "ex1_2_hidden", reconstruction_loss=naive_bce), "softplus")  # ... not for large ones


# --- 1.3: linear probe ------------------------------------------------------------------------------------------------
def test_probe_measured_on_training_data_fails_hidden(nb):
    ns = namespace(nb)
    right = ns["linear_probe_accuracy"]

    def train_accuracy(train_features, train_labels, test_features, test_labels, **kw):
        return right(train_features, train_labels, train_features, train_labels, **kw)

    assert_fails(run_check(nb, "ex1_3_hidden", linear_probe_accuracy=train_accuracy), "not on the training data")


def test_probe_returning_a_tensor_fails(nb):
    ns = namespace(nb)
    right = ns["linear_probe_accuracy"]
    assert_fails(run_check(nb, "ex1_3_visible", linear_probe_accuracy=lambda *a, **k: torch.tensor(right(*a, **k))),
                 "expected a float")


# --- 1.4: Gaussian fit and sampling --------------------------------------------------------------------------------------
def test_biased_covariance_is_named(nb):
    def biased(codes):
        return codes.mean(0), torch.cov(codes.T, correction=0)

    assert_fails(run_check(nb, "ex1_4_visible", fit_gaussian=biased), "biased covariance")


@pytest.mark.parametrize(
    ("sampler", "says"),
    [
        (lambda m, c, n, g=None: m + torch.randn(n, len(m), generator=g, dtype=m.dtype) @ c.T, "covariance Σ², not Σ"),
        (lambda m, c, n, g=None: m + torch.randn(n, len(m), generator=g, dtype=m.dtype) * c.diagonal().sqrt(),
         "5 standard errors"),
        (lambda m, c, n, g=None: m + torch.randn(n, len(m), dtype=m.dtype) @ torch.linalg.cholesky(c).T, "equally seeded"),
        (lambda m, c, n, g=None: torch.randn(n, len(m), generator=g, dtype=m.dtype) @ torch.linalg.cholesky(c).T, "add the mean"),
    ],
)
def test_sampling_mistakes(nb, sampler, says):
    assert_fails(run_check(nb, "ex1_4_visible", sample_gaussian=sampler), says)


# --- 1.5: masking noise -------------------------------------------------------------------------------------------------
def test_keep_probability_confusion_is_named(nb):
    def keeps_p(x, p, generator=None):
        return x * (torch.rand(x.shape, generator=generator) < p)

    assert_fails(run_check(nb, "ex1_5_visible", corrupt=keeps_p), "probability of *dropping*")


def test_in_place_corruption_is_named(nb):
    def in_place(x, p, generator=None):
        return x.mul_(torch.rand(x.shape, generator=generator) >= p)

    assert_fails(run_check(nb, "ex1_5_visible", corrupt=in_place), "modified in place")
