"""utils/checks_autoencoders.py: its stored values are what the reference computes on its fixed inputs, its checks pass
right answers, fail wrong ones in one line, and never swallow an unanswered exercise (NotImplementedError)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils import checks
from utils import checks_autoencoders as ca


def bce(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The reference loss (kept here, in the tests, never in the module): nats per image."""
    return F.binary_cross_entropy_with_logits(logits, x.reshape(len(x), -1), reduction="sum") / len(x)


def test_stored_losses_are_the_reference_on_the_fixed_inputs():
    inputs = ca._loss_inputs()
    for key, stored in (("flat", ca.LOSS_FLAT), ("images", ca.LOSS_IMAGES), ("large", ca.LOSS_LARGE_LOGITS)):
        x, logits = inputs[key]
        assert bce(x.double(), logits.double()).item() == pytest.approx(stored, rel=1e-12), key
    x, logits = inputs["flat"]
    assert bce(x.double(), torch.sigmoid(logits).double()).item() == pytest.approx(ca.LOSS_FLAT_SIGMOID_TWICE, rel=1e-12)
    squared = ((torch.sigmoid(logits.double()) - x.double()) ** 2).sum().item() / len(x)
    assert squared == pytest.approx(ca.LOSS_FLAT_SQUARED_ERROR, rel=1e-12)


def test_stored_gaussian_fit_is_the_reference_on_the_fixed_codes():
    codes = ca._gaussian_codes()
    assert torch.allclose(codes.mean(0), torch.tensor(ca.GAUSSIAN_CODES_MEAN, dtype=torch.float64), rtol=1e-12)
    assert torch.allclose(torch.cov(codes.T), torch.tensor(ca.GAUSSIAN_CODES_COV, dtype=torch.float64), rtol=1e-12)


def test_the_module_never_catches_an_unanswered_exercise():
    def stub(*args, **kwargs):
        raise NotImplementedError("Exercise 1.2")

    for check in (ca.reconstruction_loss, ca.corrupt, ca.linear_probe):
        with pytest.raises(NotImplementedError):
            check(stub)
    with pytest.raises(NotImplementedError):
        ca.gaussian(stub, stub)
    with pytest.raises(NotImplementedError):
        ca.autoencoder(stub)


def test_reconstruction_loss_passes_the_reference_and_names_mistakes(capsys):
    ca.reconstruction_loss(bce)
    assert capsys.readouterr().out.count("✓") == 3
    with pytest.raises(checks.CheckFailed, match="a mean over pixels"):
        ca.reconstruction_loss(lambda x, lg: bce(x, lg) / 784)
    with pytest.raises(checks.CheckFailed, match="expected shape"):
        ca.reconstruction_loss(lambda x, lg: F.binary_cross_entropy_with_logits(
            lg, x.reshape(len(x), -1), reduction="none").sum(1))


def test_the_architecture_check_names_a_missing_bias():
    model = nn.Module()
    model.encoder = nn.Sequential(nn.Linear(784, 400, bias=False), nn.ReLU(), nn.Linear(400, 20))
    model.decoder = nn.Sequential(nn.Linear(20, 400), nn.ReLU(), nn.Linear(400, 784))
    with pytest.raises(checks.CheckFailed, match="missing bias"):
        ca.architecture(model, 20, 400)


def test_affine_residual_separates_relu_from_linear():
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    assert ca._affine_residual(nn.Sequential(nn.Linear(30, 40), nn.Linear(40, 5)), 30, gen) < 1e-5
    assert ca._affine_residual(nn.Sequential(nn.Linear(30, 40), nn.ReLU(), nn.Linear(40, 5)), 30, gen) > 1e-2


def test_sample_statistics_accept_a_correct_sampler_for_many_seeds():
    mean = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    a = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [-0.5, 0.3, 0.4]], dtype=torch.float64)
    for seed in range(20):
        eps = torch.randn(20_000, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        ca._sample_statistics(mean + eps @ a.T, mean, a @ a.T)


@pytest.mark.parametrize(("check", "args", "says"), [
    (ca.trained_loss, (96.0,), "(1.2)"),
    (ca.probe_gain, ({"(c) trained encoder": 0.5, "(b) random encoder": 0.45},), "(1.3)"),
    (ca.code_kl, (5.0,), "(1.4)"),
    (ca.denoising_gain, (110.0, 105.0), "(1.5)"),
])
def test_trained_checks_name_the_exercise_they_depend_on(check, args, says):
    with pytest.raises(checks.CheckFailed, match=rf"\{says[:-1]}\)"):
        check(*args)


def test_trained_checks_pass_the_reference_figures(capsys):
    ca.trained_loss(85.3)
    ca.probe_gain({"(c) trained encoder": 0.755, "(b) random encoder": 0.479})
    ca.code_kl(152.1)
    ca.denoising_gain(133.4, 102.8)
    assert capsys.readouterr().out.count("✓") == 4


def test_an_elementwise_square_root_of_the_covariance_is_named_before_reproducibility():
    def fit(codes):
        return codes.mean(0), torch.cov(codes.T)

    def sample(mean, cov, n, generator=None):
        eps = torch.randn(n, len(mean), generator=generator, dtype=mean.dtype)
        return mean + eps @ cov.sqrt().T  # NaN where a covariance entry is negative

    with pytest.raises(AssertionError, match="factor A with A Aᵀ = Σ"):
        ca.gaussian(fit, sample)
