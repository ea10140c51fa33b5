"""Hidden tests of 01_autoencoders: the solution passes, typical wrong answers fail with a message that says why.

Trained-model parts use the solution's trained weights from the reference results (built once per checkout), an untrained
model, or deliberately wrong models.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests import nbtools
from tests.grading.gradetools import assert_fails, assignment_and_reference, judge
from tests.test_nb01_checks import RECONSTRUCTION_LOSS_MISTAKES, _own, _probe, naive_bce, wrong_decoder_classes
from utils import data

NAME = "01_autoencoders"
NB = nbtools.load(NAME)
CHECKS = ["ex1_1_visible", "ex1_1_hidden", "ex1_2_visible", "ex1_2_hidden", "ex1_3_visible", "ex1_3_hidden",
          "ex1_4_visible", "ex1_4_hidden", "ex1_5_visible"]


def _namespace(**overrides) -> dict:
    ns: dict = {"torch": torch, "nn": nn, "F": F, "data": data}
    for name in ("Encoder", "reconstruction_loss", "linear_probe_accuracy", "fit_gaussian", "corrupt"):
        assert nbtools.run_source(nbtools.cell_defining(NB, name), ns) is None, name
    ns.update(overrides)
    return ns


def _trained(name: str, grade_id: str = "ex1_5_result") -> nn.Module:
    """The solution's Autoencoder with the trained weights `name` ("autoencoder" or "denoiser") of the reference."""
    _, reference = assignment_and_reference(NAME)
    model = _namespace()["Autoencoder"]()
    for part in ("encoder", "decoder"):
        linears = [m for m in getattr(model, part).modules() if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for i, layer in enumerate(linears):
                layer.weight.copy_(reference[grade_id][f"{name}.{part}.{i}.weight"])
                layer.bias.copy_(reference[grade_id][f"{name}.{part}.{i}.bias"])
    return model.eval()


def fails(grade_id: str, says: str, **wrong) -> str:
    return assert_fails(NAME, grade_id, _namespace(**wrong), says)


@pytest.mark.parametrize("grade_id", CHECKS)
def test_solution_passes_every_hidden_test(grade_id):
    verdict = judge(NAME, grade_id, _namespace())
    assert verdict.passed, verdict.message


@pytest.fixture(scope="module")
def trained_models():
    return {"autoencoder": _trained("autoencoder"), "denoiser": _trained("denoiser")}


def test_trained_solution_passes_the_trained_parts(trained_models):
    for gid in ("ex1_2_trained", "ex1_3_gain", "ex1_5_result"):
        verdict = judge(NAME, gid, _namespace(**trained_models))
        assert verdict.passed, verdict.message


# ---- 1.1 -------------------------------------------------------------------------------------------------------------

def test_sigmoid_decoder_is_named():
    ae = wrong_decoder_classes(_namespace(), lambda d, h: nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, 784),
                                                                          nn.Sigmoid()))
    fails("ex1_1_visible", "returns probabilities", Autoencoder=ae)


def test_wrong_layer_is_named():
    ae = wrong_decoder_classes(_namespace(), lambda d, h: nn.Sequential(nn.Linear(d, 256), nn.ReLU(), nn.Linear(256, 784)))
    fails("ex1_1_visible", "decoder Linear layer 1 maps 20 -> 256, expected 20 -> 400", Autoencoder=ae)
    fails("ex1_1_hidden", "decoder Linear layer 1 maps", Autoencoder=ae)


def test_forward_without_flatten_fails():
    ns = _namespace()

    class NoFlatten(ns["Autoencoder"]):
        def forward(self, x):
            z = self.encoder(x)
            return z, self.decoder(z)

    fails("ex1_1_visible", "the encoder expects (B, 784)", Autoencoder=NoFlatten)


def test_hard_coded_sizes_fail_the_hidden_sizes():
    ns = _namespace()
    base = ns["Autoencoder"]

    class FixedHidden(base):  # ignores `hidden` (uses 400, or 64 for the visible d = 2 model)
        def __init__(self, code_dim=20, hidden=400):
            super().__init__(code_dim, 64 if code_dim == 2 else 400)

    assert judge(NAME, "ex1_1_visible", _namespace(Autoencoder=FixedHidden)).passed
    fails("ex1_1_hidden", "expected", Autoencoder=FixedHidden)


def test_forward_returning_the_wrong_logits_fails_hidden():
    ns = _namespace()

    class Swapped(ns["Autoencoder"]):
        def forward(self, x):
            z = self.encoder(x.reshape(len(x), 784))
            return z, self.decoder(torch.zeros_like(z))

    message = fails("ex1_1_hidden", "forward must return (z, decoder(z))", Autoencoder=Swapped)
    assert "largest difference" not in message


# ---- 1.2 -------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("wrong", "says"), RECONSTRUCTION_LOSS_MISTAKES)
def test_reconstruction_loss_mistakes_are_named(wrong, says):
    fails("ex1_2_visible", says.replace("expected shape", "should have shape"), reconstruction_loss=wrong)


def test_unstable_loss_fails_the_hidden_test():
    fails("ex1_2_visible", "underflows", reconstruction_loss=naive_bce)
    fails("ex1_2_hidden", "softplus", reconstruction_loss=naive_bce)


def test_loss_memorised_for_the_visible_example_fails_hidden():
    right = _namespace()["reconstruction_loss"]

    def memorised(x, logits):
        return right(x, logits) if len(x) in (16, 4) else torch.tensor(100.0)  # the visible inputs' sizes

    assert judge(NAME, "ex1_2_visible", _namespace(reconstruction_loss=memorised)).passed
    message = fails("ex1_2_hidden", "wrong values", reconstruction_loss=memorised)
    assert "largest difference" not in message


def test_untrained_or_misshapen_autoencoder_fails_the_trained_part():
    torch.manual_seed(0)
    untrained = _namespace()["Autoencoder"]()
    fails("ex1_2_trained", "outside [0, 95]", autoencoder=untrained)
    ae = wrong_decoder_classes(_namespace(), lambda d, h: nn.Sequential(nn.Linear(d, 256), nn.ReLU(), nn.Linear(256, 784)))
    fails("ex1_2_trained", "do not fit the specified architecture", autoencoder=ae())


# ---- 1.3 -------------------------------------------------------------------------------------------------------------

def test_probe_measured_on_training_data_fails_hidden():
    right = _namespace()["linear_probe_accuracy"]

    def train_accuracy(train_features, train_labels, test_features, test_labels, **kw):
        return right(train_features, train_labels, train_features, train_labels, **kw)

    assert judge(NAME, "ex1_3_visible", _namespace(linear_probe_accuracy=train_accuracy)).passed
    fails("ex1_3_hidden", "not on the training data", linear_probe_accuracy=train_accuracy)


def test_probe_returning_a_tensor_fails():
    right = _namespace()["linear_probe_accuracy"]
    fails("ex1_3_visible", "not a Python float", linear_probe_accuracy=lambda *a, **k: torch.tensor(right(*a, **k)))


def test_constant_visible_accuracy_fails_hidden():
    fails("ex1_3_hidden", "not on the training data", linear_probe_accuracy=lambda *a, **k: 0.99)


def test_untrained_encoder_gives_no_gain():
    torch.manual_seed(5)
    fails("ex1_3_gain", "at least 0.15", autoencoder=_namespace()["Autoencoder"]())


# ---- 1.4 -------------------------------------------------------------------------------------------------------------

def test_biased_covariance_is_named():
    fails("ex1_4_visible", "biased covariance", fit_gaussian=lambda codes: (codes.mean(0), torch.cov(codes.T, correction=0)))


@pytest.mark.parametrize(("sampler", "says"), [
    (lambda m, c, n, g=None: m + torch.randn(n, len(m), generator=g, dtype=m.dtype) @ c.T, "covariance Σ², not Σ"),
    (lambda m, c, n, g=None: m + torch.randn(n, len(m), generator=g, dtype=m.dtype) * c.diagonal().sqrt(),
     "5 standard errors"),
    (lambda m, c, n, g=None: m + torch.randn(n, len(m), dtype=m.dtype) @ torch.linalg.cholesky(c).T, "equally seeded"),
    (lambda m, c, n, g=None: torch.randn(n, len(m), generator=g, dtype=m.dtype) @ torch.linalg.cholesky(c).T,
     "add the mean"),
])
def test_sampling_mistakes_are_named(sampler, says):
    fails("ex1_4_visible", says, sample_gaussian=sampler)


def test_sampling_with_another_random_stream_passes():
    def other_stream(mean, cov, n, generator=None):  # eps drawn transposed: the same distribution, other numbers
        eps = torch.randn(len(mean), n, generator=generator, dtype=mean.dtype).T
        return mean + eps @ torch.linalg.cholesky(cov).T

    for gid in ("ex1_4_visible", "ex1_4_hidden"):
        verdict = judge(NAME, gid, _namespace(sample_gaussian=other_stream))
        assert verdict.passed, verdict.message


def test_elementwise_sqrt_fails_the_hidden_gaussian():
    fails("ex1_4_hidden", "outside 5 standard errors",
          sample_gaussian=lambda m, c, n, g=None: m + torch.randn(n, len(m), generator=g, dtype=m.dtype) * c.diagonal().sqrt())


# ---- 1.5 -------------------------------------------------------------------------------------------------------------

def test_keep_probability_confusion_is_named():
    fails("ex1_5_visible", "probability of *dropping*",
          corrupt=lambda x, p, generator=None: x * (torch.rand(x.shape, generator=generator) < p))


def test_in_place_corruption_is_named():
    fails("ex1_5_visible", "modified in place",
          corrupt=lambda x, p, generator=None: x.mul_(torch.rand(x.shape, generator=generator) >= p))


def test_denoiser_that_is_the_plain_autoencoder_fails(trained_models):
    fails("ex1_5_result", "at least 10 needed", autoencoder=trained_models["autoencoder"],
          denoiser=trained_models["autoencoder"])


# ---- #19.3: mistakes the visible checks now catch, the judges too -------------------------------------------------------

def test_decoder_without_relu_is_named():
    ae = wrong_decoder_classes(_namespace(), lambda d, h: nn.Sequential(nn.Linear(d, h), nn.Linear(h, 784)))
    assert_fails(NAME, "ex1_1_visible", _namespace(Autoencoder=ae), "the decoder is an affine map", "missing_relu")


def test_loss_without_reshape_is_named():
    def no_reshape(x, logits):
        return (x * F.softplus(-logits) + (1 - x) * F.softplus(logits)).sum(dim=1).mean()

    assert_fails(NAME, "ex1_2_visible", _namespace(reconstruction_loss=no_reshape), "reshape x to (B, 784)",
                 "loss_input_not_flattened")


def test_probe_standardization_mistakes_are_named():
    assert_fails(NAME, "ex1_3_visible", _namespace(linear_probe_accuracy=_probe(lambda tr, te: (tr, te))),
                 "scales 1e-3 and 1e3", "probe_not_standardized")
    assert_fails(NAME, "ex1_3_visible", _namespace(linear_probe_accuracy=_probe(lambda tr, te: (_own(tr), _own(te)))),
                 "not with their own", "test_standardized_with_own_statistics")


def test_mask_shape_mistakes_are_named():
    assert_fails(NAME, "ex1_5_visible", _namespace(corrupt=lambda x, p, generator=None: x * (
        torch.rand(x.shape[1:], generator=generator) >= p)), "same mask", "one_mask_for_the_batch")
    assert_fails(NAME, "ex1_5_visible", _namespace(corrupt=lambda x, p, generator=None: x * (
        torch.rand(len(x), 1, generator=generator) >= p)), "masked whole", "one_draw_per_image")
