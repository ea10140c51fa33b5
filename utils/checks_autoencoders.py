"""The check cells of notebook 01 (autoencoders): one call per check, one line per result.

Each function prints a ✓ line or raises `utils.checks.CheckFailed` with one ✗ line naming the mistake. Nothing here
computes an exercise's answer: the checks compare with numbers stored below (computed once, offline, by the reference
solution on fixed, seeded inputs) or test properties (shapes, non-linearity, invariances, sample statistics with
their standard errors). An unanswered exercise (NotImplementedError) is never caught: the notebook reports it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from utils import checks

PIXELS = 784

# ---------------------------------------------------------------------------------------------- stored values (1.2, 1.4)
# Exercise 1.2 on three fixed inputs (see `_loss_inputs`): nats per image, the sum over pixels and mean over images of
# the Bernoulli cross-entropy, and two typical wrong answers on the first input.
LOSS_FLAT = 1089.9567745579573  # x: (16, 784), logits 3 * N(0, 1)
LOSS_FLAT_SIGMOID_TWICE = 580.2024045840235
LOSS_FLAT_SQUARED_ERROR = 171.05064996950054
LOSS_IMAGES = 1101.4108468600423  # x: (4, 1, 28, 28), logits 3 * N(0, 1)
LOSS_LARGE_LOGITS = 12311.586078855253  # x: (4, 784), logits 40 * N(0, 1)
# Exercise 1.4 on seven fixed 3-d codes (see `_gaussian_codes`): their mean and unbiased covariance (divided by N - 1).
GAUSSIAN_CODES_MEAN = [0.1823143501112036, -0.30800881762510096, 0.49324736910240435]
GAUSSIAN_CODES_COV = [[0.19008233020745566, 0.02517106914911448, 0.11328658124956813],
                      [0.02517106914911448, 0.9106308108817119, 0.3634850764435509],
                      [0.11328658124956813, 0.3634850764435509, 0.3694256309381318]]

# ------------------------------------------------------------------------------------- bounds of the trained-model checks
# Reference solution, seeds 0 and 1 (README, "Check bounds"); each bound leaves the margin said beside it.
MAX_TEST_LOSS = 95.0  # 85.3 / 86.2 nats per image after 20 epochs: a 10-nat margin
MIN_PROBE_GAIN = 0.15  # trained minus random codes, 0.25-0.30 in every subset
MIN_CODE_KL = 20.0  # about 150 nats; 20 = 1 nat per dimension
MIN_DENOISING_GAIN = 10.0  # 30 nats (plain 133, denoising 103)


# --------------------------------------------------------------------------------------------------------- Exercise 1.1
def architecture(model: nn.Module, code_dim: int, hidden: int, name: str = "Autoencoder") -> None:
    """Fail unless model.encoder is Linear(784, hidden), Linear(hidden, code_dim) and model.decoder is
    Linear(code_dim, hidden), Linear(hidden, 784), with biases and no other parameters."""
    expected = {"encoder": [(PIXELS, hidden), (hidden, code_dim)], "decoder": [(code_dim, hidden), (hidden, PIXELS)]}
    for part, layers in expected.items():
        if not isinstance(getattr(model, part, None), nn.Module):
            checks.fail(name, f"no attribute `{part}` holding an nn.Module.", "keep self.encoder and self.decoder.")
        linears = [m for m in getattr(model, part).modules() if isinstance(m, nn.Linear)]
        got = [(m.in_features, m.out_features) for m in linears]
        if len(got) != len(layers):
            checks.fail(name, f"the {part} has {len(got)} Linear layer(s), expected {len(layers)}: {got}.")
        for i, (g, e) in enumerate(zip(got, layers, strict=True)):
            if g != e:
                checks.fail(name, f"{part} Linear layer {i + 1} maps {g[0]} -> {g[1]}, expected {e[0]} -> {e[1]}.")
    n_params = sum(p.numel() for p in model.parameters())
    n_expected = sum(i * o + o for layers in expected.values() for i, o in layers)
    if n_params != n_expected:
        checks.fail(name, f"{n_params} parameters, expected {n_expected}.", "extra layers, or a missing bias?")


def _affine_residual(net: nn.Module, dim: int, gen: torch.Generator) -> float:
    """|f(a) + f(b) - f(a + b) - f(0)| relative to |f(a)|: 0 (up to rounding) for an affine map f."""
    a, b = torch.rand(8, dim, generator=gen), torch.rand(8, dim, generator=gen)
    with torch.no_grad():
        fa, fb, fab, f0 = net(a), net(b), net(a + b), net(torch.zeros(8, dim))
    return ((fa + fb - fab - f0).norm() / fa.norm().clamp_min(1e-12)).item()


def _forward(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """model(x) with a one-line message, instead of torch's traceback, when the images were not flattened."""
    try:
        out = model(x)
    except NotImplementedError:
        raise
    except RuntimeError as error:
        first = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        checks.fail("Autoencoder", f"forward on images shaped {tuple(x.shape)} raised '{first}'; the encoder "
                    f"expects (B, {PIXELS}).", "flatten first: x.reshape(len(x), 784).")
    if not (isinstance(out, tuple) and len(out) == 2):
        checks.fail("Autoencoder", f"forward returned {type(out).__name__}, expected a pair (z, logits).")
    return out


def autoencoder(Autoencoder: type[nn.Module]) -> None:  # noqa: N803 - the class is what the student wrote
    """Check 1.1: the architecture as specified, ReLU between the layers, shapes for image and flat input, logits."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(10)
    for code_dim, hidden in ((20, 400), (2, 64)):
        model = Autoencoder(code_dim, hidden)
        architecture(model, code_dim, hidden)
        for part, dim in (("encoder", PIXELS), ("decoder", code_dim)):
            if _affine_residual(getattr(model, part), dim, gen) < 1e-4:
                checks.fail("Autoencoder", f"the {part} is an affine map: no non-linearity between its Linear "
                            "layers.", "put nn.ReLU() between the two Linear layers.")
        for batch in (1, 7, 64):
            z, logits = _forward(model, torch.rand(batch, 1, 28, 28, generator=gen))
            checks.check_shape("Autoencoder code z", z, (batch, code_dim))
            checks.check_shape("Autoencoder logits", logits, (batch, PIXELS),
                               hint="flatten the images to (B, 784) first.")
        z_flat, _ = _forward(model, torch.rand(5, PIXELS, generator=gen))
        checks.check_shape("Autoencoder on flat input", z_flat, (5, code_dim))
        with torch.no_grad():  # an untrained decoder's logits spread around 0; probabilities lie in (0, 1)
            out = model.decoder(10 * torch.randn(256, code_dim, generator=gen))
        if out.min() >= 0 and out.max() <= 1:
            checks.fail("Decoder", "every output lies in [0, 1]: it returns probabilities.",
                        "remove the final sigmoid; the loss turns logits into probabilities itself.")
    checks.passed("Autoencoder", "architecture, ReLUs, parameter count, shapes and logits as specified")


# --------------------------------------------------------------------------------------------------------- Exercise 1.2
def _loss_inputs() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The fixed inputs of LOSS_FLAT, LOSS_IMAGES and LOSS_LARGE_LOGITS."""
    gen = torch.Generator().manual_seed(2)
    flat = torch.rand(16, PIXELS, generator=gen), 3 * torch.randn(16, PIXELS, generator=gen)
    gen = torch.Generator().manual_seed(21)
    images = torch.rand(4, 1, 28, 28, generator=gen), 3 * torch.randn(4, PIXELS, generator=gen)
    gen = torch.Generator().manual_seed(22)
    large = torch.rand(4, PIXELS, generator=gen), 40 * torch.randn(4, PIXELS, generator=gen)
    return {"flat": flat, "images": images, "large": large}


def _call_loss(reconstruction_loss: Callable, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    try:
        got = reconstruction_loss(x, logits)
    except NotImplementedError:
        raise
    except (RuntimeError, ValueError) as error:  # torch's shape errors
        if x.dim() == 2:
            raise
        first = str(error).splitlines()[0][:100] if str(error) else type(error).__name__
        checks.fail("reconstruction_loss", f"on x shaped {tuple(x.shape)} it raised '{first}'.",
                    "reshape x to (B, 784) like the logits, e.g. x.reshape(len(x), -1), before combining them.")
    checks.check_type("reconstruction_loss", got, torch.Tensor)
    checks.check_shape("reconstruction_loss", got, (),
                       hint="return one number: the mean over the batch of per-image sums.")
    return got


def reconstruction_loss(reconstruction_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check 1.2: stored values on three fixed inputs (flat, image-shaped, logits of size 40); typical mistakes named."""
    inputs = _loss_inputs()
    got = _call_loss(reconstruction_loss, *inputs["flat"])
    checks.check_finite("reconstruction_loss", got)
    variant = checks.match_variant(got, {
        "a mean over pixels instead of a sum (divide by 784 too many)": LOSS_FLAT / PIXELS,
        "a sum over the batch instead of a mean": LOSS_FLAT * 16,
        "probabilities passed where logits were expected (sigmoid applied twice)": LOSS_FLAT_SIGMOID_TWICE,
        "the negative of the loss (a log-likelihood, not its negative)": -LOSS_FLAT,
        "squared error instead of cross-entropy": LOSS_FLAT_SQUARED_ERROR,
    })
    if variant:
        checks.fail("reconstruction_loss", f"this is {variant}.")
    checks.check_close("reconstruction_loss", got, LOSS_FLAT, rtol=1e-5, show_expected=False)
    got = _call_loss(reconstruction_loss, *inputs["images"])
    checks.check_close("reconstruction_loss on image-shaped x", got, LOSS_IMAGES, rtol=1e-5, show_expected=False,
                       hint="flatten x to (B, 784) so that pixel j of x meets logit j.")
    got = _call_loss(reconstruction_loss, *inputs["large"])
    checks.check_finite("reconstruction_loss with logits of size 40", got,
                        hint="log(sigmoid(l)) underflows to log(0) for large |l|: use softplus or "
                        "F.binary_cross_entropy_with_logits.")
    checks.check_close("reconstruction_loss with logits of size 40", got, LOSS_LARGE_LOGITS, rtol=1e-4,
                       show_expected=False, hint="clamping the probabilities is not exact: use softplus.")


def trained_loss(test_loss: float) -> None:
    """Check 1.2 (trained model): the test reconstruction loss after 20 epochs, at most MAX_TEST_LOSS."""
    checks.check_between("test reconstruction loss (nats per image)", test_loss, 0.0, MAX_TEST_LOSS,
                         hint="this uses your Autoencoder (1.1) and reconstruction_loss (1.2): if either failed its "
                         "check, fix it first; else check the sum over pixels and that the decoder returns logits.")


# --------------------------------------------------------------------------------------------------------- Exercise 1.3
def _probe_problems() -> dict[str, tuple[torch.Tensor, ...]]:
    """Ten Gaussian classes in 5-d. 'scales': the class information sits in coordinates of size 1e-3, three noise
    coordinates have size 1e3 (only standardized features can be classified). 'shifted': the test set holds two
    classes only, so its own mean and spread differ from the training set's."""
    gen = torch.Generator().manual_seed(5)
    centres = 4 * torch.randn(10, 5, generator=gen)

    def features(labels: torch.Tensor) -> torch.Tensor:
        informative = 1e-3 * (centres[labels] + torch.randn(len(labels), 5, generator=gen))
        return torch.cat([informative, 1e3 * torch.randn(len(labels), 3, generator=gen)], dim=1)

    train_labels, test_labels = torch.arange(10).repeat(20), torch.arange(10).repeat(50)
    scales = (features(train_labels), train_labels, features(test_labels), test_labels)
    two_classes = torch.tensor([3, 8]).repeat(100)
    shifted = (centres[train_labels] + torch.randn(200, 5, generator=gen), train_labels,
               centres[two_classes] + torch.randn(200, 5, generator=gen), two_classes)
    return {"scales": scales, "shifted": shifted}


def linear_probe(linear_probe_accuracy: Callable[..., float]) -> None:
    """Check 1.3: a float; near-perfect accuracy on two problems with known answers (see `_probe_problems`)."""
    problems = _probe_problems()
    accuracy = linear_probe_accuracy(*problems["scales"])
    checks.check_type("linear_probe_accuracy", accuracy, float, hint="return .item() of the accuracy.")
    checks.check_between("linear_probe_accuracy with features on scales 1e-3 and 1e3", accuracy, 0.9, 1.0,
                         hint="standardize the features with the training features' mean and std (then the "
                         "scale of a feature does not matter), and take the argmax of the logits.")
    accuracy = linear_probe_accuracy(*problems["shifted"])
    checks.check_between("linear_probe_accuracy on a test set of two classes", accuracy, 0.9, 1.0,
                         hint="standardize the test features with the *training* mean and std, not with their own: "
                         "a test set's own statistics depend on which examples it holds.")


def probe_gain(mean_accuracy: Mapping[str, float]) -> None:
    """Check 1.3 (trained encoder): mean accuracy of (c) minus (b), at least MIN_PROBE_GAIN."""
    gap = mean_accuracy["(c) trained encoder"] - mean_accuracy["(b) random encoder"]
    checks.check_between("accuracy gain of trained over random codes", gap, MIN_PROBE_GAIN, 1.0,
                         hint="this uses your linear_probe_accuracy (1.3) and the autoencoder of 1.1-1.2: if one of "
                         "them failed its check, fix it first.")


# --------------------------------------------------------------------------------------------------------- Exercise 1.4
def _gaussian_codes() -> torch.Tensor:
    """The seven fixed 3-d codes of GAUSSIAN_CODES_MEAN and GAUSSIAN_CODES_COV (float64)."""
    return torch.randn(7, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)


def _sample_statistics(samples: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> None:
    """Fail unless the sample mean and covariance lie within 5 standard errors of (mean, cov): a sample mean has
    variance Σ_ii / n, a covariance entry (Σ_ii Σ_jj + Σ_ij²) / n for Gaussian data (false alarm < 1e-5 per entry)."""
    n = len(samples)
    checks.check_finite("sample_gaussian", samples)
    samples = samples.double()
    se_mean = (cov.diagonal() / n).sqrt()
    se_cov = ((cov.diagonal()[:, None] * cov.diagonal()[None, :] + cov**2) / n).sqrt()
    centred = samples - samples.mean(0)
    emp_cov = centred.T @ centred / (n - 1)
    if ((samples.mean(0) - mean).abs() > 5 * se_mean).any():
        checks.fail("sample_gaussian", "the sample mean is off by more than 5 standard errors.", "add the mean.")
    if ((emp_cov - cov).abs() > 5 * se_cov).any():
        if torch.allclose(emp_cov, cov @ cov, rtol=0.05, atol=0.05):
            checks.fail("sample_gaussian", "the samples have covariance Σ², not Σ.",
                        "Cov(Σ eps) = Σ Σᵀ = Σ²: z = mean + A eps needs A Aᵀ = Σ.")
        checks.fail("sample_gaussian", "the sample covariance is off by more than 5 standard errors.",
                    "z = mean + A eps has covariance A Aᵀ, which must equal Σ; an elementwise sqrt of Σ "
                    "does not satisfy this when the coordinates are correlated.")


def gaussian(fit_gaussian: Callable, sample_gaussian: Callable) -> None:
    """Check 1.4: fit_gaussian against stored values on fixed codes; sample_gaussian's statistics on a correlated
    3-d Gaussian (20,000 draws) and its reproducibility with a seeded generator."""
    m_hat, c_hat = fit_gaussian(_gaussian_codes())
    stored_cov = torch.tensor(GAUSSIAN_CODES_COV, dtype=torch.float64)
    checks.check_shape("fit_gaussian covariance", c_hat, (3, 3))
    if torch.allclose(c_hat.double(), stored_cov * 6 / 7):
        checks.fail("fit_gaussian", "this is the biased covariance (divided by N).", "divide by N - 1.")
    checks.check_close("fit_gaussian mean", m_hat, torch.tensor(GAUSSIAN_CODES_MEAN, dtype=torch.float64))
    checks.check_close("fit_gaussian covariance", c_hat, stored_cov)

    mean = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    a = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [-0.5, 0.3, 0.4]], dtype=torch.float64)
    cov, n = a @ a.T, 20_000
    samples = sample_gaussian(mean, cov, n, torch.Generator().manual_seed(4))
    checks.check_shape("sample_gaussian", samples, (n, 3))
    checks.check_finite("sample_gaussian", samples,
                        hint="an elementwise square root of Σ fails on a negative covariance entry: use a "
                             "factor A with A Aᵀ = Σ.")
    if not torch.equal(samples, sample_gaussian(mean, cov, n, torch.Generator().manual_seed(4))):
        checks.fail("sample_gaussian", "two calls with equally seeded generators differ.",
                    "draw eps with generator=generator.")
    _sample_statistics(samples, mean, cov)
    checks.passed("sample_gaussian", "mean and covariance within 5 standard errors, reproducible with a generator")


def code_kl(kl: float) -> None:
    """Check 1.4 (numbers): KL of the Gaussian fitted to the codes to N(0, I), at least MIN_CODE_KL nats."""
    checks.check_between("KL of the fitted code Gaussian to N(0, I) (nats)", kl, MIN_CODE_KL, float("inf"),
                         hint="this uses your fit_gaussian (1.4) and the autoencoder of 1.1-1.2: if one of them "
                         "failed its check, fix it first.")


# --------------------------------------------------------------------------------------------------------- Exercise 1.5
def corrupt(corrupt: Callable[..., torch.Tensor]) -> None:
    """Check 1.5: masking statistics per image and over the batch, untouched pixels, no in-place change,
    reproducibility with a seeded generator. Input: 200 images with no zero pixel, so every 0 is a mask."""
    p, x = 0.3, torch.rand(200, PIXELS, generator=torch.Generator().manual_seed(6)) + 0.5
    before = x.clone()
    noisy = corrupt(x, p, torch.Generator().manual_seed(1))
    checks.check_shape("corrupt", noisy, x.shape)
    if not torch.equal(before, x):
        checks.fail("corrupt", "the input was modified in place.", "build a new tensor, e.g. x * mask.")
    masked = noisy == 0
    if (masked == masked[:1]).all():
        checks.fail("corrupt", "every image has the same mask.",
                    "draw one mask entry per pixel of every image: a mask of x's full shape.")
    per_image = masked.double().mean(1)
    if ((per_image == 0) | (per_image == 1)).all():
        checks.fail("corrupt", "each image is either kept or masked whole.",
                    "draw one mask entry per pixel, not per image.")
    fraction = masked.double().mean().item()
    if abs(fraction - p) > 5 * (p * (1 - p) / masked.numel()) ** 0.5:  # Binomial(n, p) / n, 5 standard errors
        hint = "p is the probability of *dropping* a pixel, not of keeping it." if abs(fraction - 0.7) < 0.01 else ""
        checks.fail("corrupt", f"{fraction:.3f} of the pixels are masked, expected 0.3 (within 5 standard errors).",
                    hint)
    checks.check_close("corrupt keeps unmasked pixels", noisy[~masked], x[~masked])
    if not torch.equal(noisy, corrupt(x, p, torch.Generator().manual_seed(1))):
        checks.fail("corrupt", "equally seeded generators give different masks.",
                    "draw the mask with generator=generator.")
    checks.passed("corrupt", f"{fraction:.4f} masked for p = 0.3, a different mask for every image")


def denoising_gain(plain_loss: float, denoiser_loss: float) -> None:
    """Check 1.5 (trained): plain minus denoising loss on masked test images, at least MIN_DENOISING_GAIN nats."""
    checks.check_between("denoising gain (plain minus denoising loss, nats)", plain_loss - denoiser_loss,
                         MIN_DENOISING_GAIN, float("inf"),
                         hint="train on corrupt(x) as input and the clean x as the target; this uses your corrupt "
                         "(1.5): if it failed its check, fix it first.")
