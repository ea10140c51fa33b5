"""Judges of the hidden tests for 01_autoencoders (instructor material: never released to students).

Run in the trusted grader only (never in the student's kernel), on what ``probes.py`` exported: the student's
functions and classes on inputs built there and, for the trained models, the weights of their Linear layers. The
judges apply the check cells' criteria. A trained model is rebuilt here with the architecture the exercise prescribes
(Linear -> ReLU -> Linear in the encoder and in the decoder), the student's weights are loaded strictly, and it is
evaluated on the test images the judge loads itself; nothing the kernel computed about a trained model is trusted.

Statistical tolerances, as in the check cells: a sample mean of n Gaussian draws lies within 5 standard errors √(Σ_ii
/ n) of the mean, a sample covariance entry within 5 of √((Σ_ii Σ_jj + Σ_ij²) / n), and a masked fraction (Binomial(n,
p) / n) within 5 of √(p (1 − p) / n): a false alarm has probability below 1e-5 per entry.
"""

from __future__ import annotations

import functools

import torch

from instructor.grading.judge import Fail, criteria, flag, get_value, match_mistake, require_close
from instructor.grading.spec import probes_beside

probes = probes_beside(__file__)

DIAGNOSES = (  # the typical mistakes these judges name (Verdict.diagnosis), counted by the class report
    "wrong_parameter_count",
    "missing_relu",
    "images_not_flattened",
    "decoder_returns_probabilities",
    "mean_over_pixels",
    "sum_over_batch",
    "sigmoid_applied_twice",
    "sign_flipped",
    "squared_error",
    "unstable_log_sigmoid",
    "loss_input_not_flattened",
    "accuracy_not_a_float",
    "accuracy_on_training_data",
    "probe_not_standardized",
    "test_standardized_with_own_statistics",
    "covariance_for_cholesky",
    "biased_covariance",
    "generator_ignored",
    "input_modified_in_place",
    "keep_probability_for_drop",
    "one_mask_for_the_batch",
    "one_draw_per_image",
    "generator_ignored_in_corrupt",
)


# the probes' constants (inputs, sizes, seeds), which the judges use too
ARCH_HIDDEN = probes.ARCH_HIDDEN
ARCH_VISIBLE = probes.ARCH_VISIBLE
BATCHES = probes.BATCHES
CODE_DIM = probes.CODE_DIM
HIDDEN = probes.HIDDEN
N_HIDDEN = probes.N_HIDDEN
N_VISIBLE = probes.N_VISIBLE
PIXELS = probes.PIXELS


def _rebuild(got: dict, prefix: str, sizes: tuple[int, int, int]) -> torch.nn.Sequential:
    """Linear(sizes[0], sizes[1]) -> ReLU -> Linear(sizes[1], sizes[2]) with the student's weights, loaded strictly."""
    from torch import nn

    net = nn.Sequential(nn.Linear(sizes[0], sizes[1]), nn.ReLU(), nn.Linear(sizes[1], sizes[2]))
    names = sorted({k[len(prefix) + 1:].split(".")[0] for k in got if k.startswith(prefix + ".")})
    if len(names) != 2:
        raise Fail(f"the {prefix.split('.')[-1]} has {len(names)} Linear layer(s), expected 2.")
    state = {f"{2 * i}.{p}": got[f"{prefix}.{i}.{p}"].float() for i in range(2) for p in ("weight", "bias")
             if f"{prefix}.{i}.{p}" in got}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise Fail(f"the {prefix.split('.')[-1]}'s weights do not fit the specified architecture "
                    f"({str(exc).splitlines()[-1].strip()[:200]})") from None
    return net.eval()


def _bce(x: torch.Tensor, logits: torch.Tensor) -> float:
    """Bernoulli negative log-likelihood, nats per image (sum over pixels, mean over images)."""
    return (torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)).item()


@functools.lru_cache(maxsize=2)
def _mnist(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from utils import data

    return data.load_mnist(split=split, flatten=True)


def _reference_corrupt(x: torch.Tensor, p: float, seed: int) -> torch.Tensor:
    keep = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed)) >= p
    return x * keep


def _check_architecture(got: dict, prefix: str, code_dim: int, hidden: int) -> None:
    expected = {"encoder": [(PIXELS, hidden), (hidden, code_dim)], "decoder": [(code_dim, hidden), (hidden, PIXELS)]}
    for part, layers in expected.items():
        shapes = [tuple(row) for row in get_value(got, f"{prefix}.{part}_layers").tolist()]
        if len(shapes) != len(layers):
            raise Fail(f"with code_dim={code_dim}, hidden={hidden} the {part} has {len(shapes)} Linear layer(s), "
                        f"expected {len(layers)}: {shapes}.")
        for i, (g, e) in enumerate(zip(shapes, layers, strict=True)):
            if g != e:
                raise Fail(f"{part} Linear layer {i + 1} maps {g[0]} -> {g[1]}, expected {e[0]} -> {e[1]} "
                            f"(code_dim={code_dim}, hidden={hidden}).")
    n_params = int(get_value(got, f"{prefix}.n_params").item())
    expected_n = sum(i * o + o for layers in expected.values() for i, o in layers)
    if n_params != expected_n:
        raise Fail(f"{n_params} parameters, expected {expected_n}. Hint: extra layers, or a missing bias?",
                   diagnosis="wrong_parameter_count")


@criteria("Autoencoder")
def judge_autoencoder_visible(got: dict, want: dict) -> str:  # noqa: ARG001 - the specification is the reference
    for code_dim, hidden in ARCH_VISIBLE:
        prefix = f"d{code_dim}"
        _check_architecture(got, prefix, code_dim, hidden)
        for part in ("encoder", "decoder"):
            if get_value(got, f"{prefix}.{part}_affine", ()).item() < 1e-4:
                raise Fail(f"the {part} is an affine map: no non-linearity between its Linear layers. Hint: put "
                           "nn.ReLU() between the two Linear layers.", diagnosis="missing_relu")
        if flag(got, f"{prefix}.images_raise"):
            raise Fail("forward on images shaped (B, 1, 28, 28) raised a shape error; the encoder expects (B, 784). "
                       "Hint: flatten first: x.reshape(len(x), 784).", diagnosis="images_not_flattened")
        for batch in BATCHES:
            z_shape = tuple(get_value(got, f"{prefix}.z_shape{batch}").tolist())
            if z_shape != (batch, code_dim):
                raise Fail(f"the code z has shape {z_shape}, expected {(batch, code_dim)}.")
            logits_shape = tuple(get_value(got, f"{prefix}.logits_shape{batch}").tolist())
            if logits_shape != (batch, PIXELS):
                raise Fail(f"the logits have shape {logits_shape}, expected {(batch, PIXELS)}. Hint: flatten the "
                            "images to (B, 784) first.", diagnosis="images_not_flattened")
        flat = tuple(get_value(got, f"{prefix}.flat_shape").tolist())
        if flat != (5, code_dim):
            raise Fail(f"on flat (5, 784) input the code has shape {flat}, expected {(5, code_dim)}.")
        if get_value(got, f"{prefix}.far_min").item() >= 0 and get_value(got, f"{prefix}.far_max").item() <= 1:
            raise Fail("every decoder output lies in [0, 1]: it returns probabilities. Hint: remove the final sigmoid; "
                        "the loss turns logits into probabilities itself.", diagnosis="decoder_returns_probabilities")
    return "architecture, parameter count, shapes and logits as specified"


@criteria("Autoencoder (hidden)")
def judge_autoencoder_hidden(got: dict, want: dict) -> str:  # noqa: ARG001 - compared with the student's own parts
    for code_dim, hidden in ARCH_HIDDEN:
        prefix = f"d{code_dim}"
        _check_architecture(got, prefix, code_dim, hidden)
        get_value(got, f"{prefix}.z", (3, code_dim))
        require_close(f"{prefix}.logits", got, get_value(got, f"{prefix}.logits_composed").double(), rtol=1e-5, atol=1e-8,
                      hidden=True, hint="forward must return (z, decoder(z)).")
        require_close(f"{prefix}.z", got, get_value(got, f"{prefix}.z_encoder").double(), rtol=1e-5, atol=1e-8, hidden=True,
                      hint="the code z is encoder(x) of the flattened images.")
    return "other code and hidden sizes; forward is decoder(encoder(x))"


@criteria("reconstruction_loss")
def judge_loss_visible(got: dict, want: dict) -> str:
    if not flag(got, "is_tensor"):
        raise Fail("the result is not a torch.Tensor.")
    loss = get_value(got, "loss", (), hint="return one number: the mean over the batch of per-image sums.").double()
    x, logits = probes._loss_visible_inputs()
    reference = want["loss"].double()
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    mistake = match_mistake(loss, {
        "mean_over_pixels": ("a mean over pixels instead of a sum (divide by 784 too many).", reference / PIXELS),
        "sum_over_batch": ("a sum over the batch instead of a mean.", reference * 16),
        "sigmoid_applied_twice": ("probabilities passed where logits were expected (sigmoid applied twice).",
                                  bce(torch.sigmoid(logits), x, reduction="sum").double() / 16),
        "sign_flipped": ("the negative of the loss (a log-likelihood, not its negative).", -reference),
        "squared_error": ("squared error instead of cross-entropy.", ((torch.sigmoid(logits) - x) ** 2).sum().double() / 16),
    }, rtol=1e-4)
    if mistake:
        raise Fail("wrong values", f"this is {mistake[1]}", mistake[0])
    require_close("loss", got, want["loss"], rtol=1e-5, atol=1e-8, hidden=False)
    if flag(got, "images_raise"):
        raise Fail("on x shaped (4, 1, 28, 28) it raised a shape error. Hint: reshape x to (B, 784) like the logits, "
                   "e.g. x.reshape(len(x), -1), before combining them.", diagnosis="loss_input_not_flattened")
    require_close("images.loss", got, want["images.loss"], rtol=1e-5, atol=1e-8, hidden=False,
                  hint="flatten x to (B, 784) so that pixel j of x meets logit j.")
    if not torch.isfinite(get_value(got, "large.loss", (), finite=False)).all():
        raise Fail("not finite with logits of size 40. Hint: log(sigmoid(l)) underflows to log(0) for large |l|: "
                   "use softplus or F.binary_cross_entropy_with_logits.", diagnosis="unstable_log_sigmoid")
    require_close("large.loss", got, want["large.loss"], rtol=1e-4, atol=1e-8, hidden=False,
                  hint="clamping the probabilities is not exact: use softplus.")
    return "equals BCE-with-logits summed over pixels, averaged over the batch (flat, image-shaped, large logits)"


@criteria("reconstruction_loss (hidden)")
def judge_loss_hidden(got: dict, want: dict) -> str:
    loss = get_value(got, "loss", (), finite=False)  # NaN or inf is diagnosed next
    if not torch.isfinite(loss).all():
        raise Fail("not finite with logits of size 60. Hint: log(sigmoid(l)) underflows for large |l|: use softplus "
                    "or binary_cross_entropy_with_logits.", diagnosis="unstable_log_sigmoid")
    require_close("loss", got, want["loss"], rtol=1e-4, atol=1e-8, hidden=True,
                  hint="image-shaped x must be flattened to (B, 784); the loss must stay stable for extreme logits.")
    return "image-shaped input and extreme logits"


def _test_loss(got: dict, name: str) -> float:
    """Test reconstruction loss (nats per image) of the student's trained autoencoder `name`, rebuilt here."""
    x_test, _ = _mnist("test")
    encoder = _rebuild(got, f"{name}.encoder", (PIXELS, HIDDEN, CODE_DIM))
    decoder = _rebuild(got, f"{name}.decoder", (CODE_DIM, HIDDEN, PIXELS))
    with torch.no_grad():
        return _bce(x_test, decoder(encoder(x_test)))


@criteria("trained autoencoder")
def judge_trained(got: dict, want: dict) -> str:  # noqa: ARG001 - evaluated here on the test set
    # Reference solution: 85.3 / 86.2 nats per image (seeds 0 / 1); the check cell's bound leaves a 10-nat margin.
    loss = _test_loss(got, "autoencoder")
    if not 0.0 <= loss <= 95.0:
        raise Fail(f"test reconstruction loss {loss:.1f} nats per image, outside [0, 95]. Hint: above 95: check the "
                    "loss (sum over pixels, mean over the batch) and that the decoder outputs logits.")
    return f"test reconstruction loss {loss:.1f} nats per image (at most 95)"


@criteria("linear_probe_accuracy")
def judge_linear_visible(got: dict, want: dict) -> str:  # noqa: ARG001 - a known answer: nearly perfect
    if not flag(got, "is_float"):
        raise Fail("the accuracy is not a Python float. Hint: return .item() of the accuracy.", diagnosis="accuracy_not_a_float")
    accuracy = get_value(got, "accuracy", ()).item()
    if not 0.9 <= accuracy <= 1.0:
        raise Fail(f"accuracy {accuracy:.3f} with features on scales 1e-3 and 1e3, expected between 0.9 and 1. Hint: "
                   "standardize the features with the training features' mean and std, and take the argmax of the "
                   "logits.", diagnosis="probe_not_standardized")
    shifted = get_value(got, "shifted.accuracy", ()).item()
    if not 0.9 <= shifted <= 1.0:
        raise Fail(f"accuracy {shifted:.3f} on a test set of two classes, expected between 0.9 and 1. Hint: "
                   "standardize the test features with the *training* mean and std, not with their own.",
                   diagnosis="test_standardized_with_own_statistics")
    return f"accuracy {accuracy:.3f} and {shifted:.3f} on two problems with known answers"


@criteria("linear_probe_accuracy (hidden)")
def judge_linear_hidden(got: dict, want: dict) -> str:  # noqa: ARG001 - a known answer: chance level
    if not get_value(got, "unrelated.accuracy", ()).item() <= 0.8:
        raise Fail("accuracy stays high when the test labels are unrelated to the features. Hint: compute the "
                    "accuracy on test_features against test_labels, not on the training data.",
                   diagnosis="accuracy_on_training_data")
    return "measured on the test data"


def _labelled_subset(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    picked = []
    for k in range(10):
        members = torch.nonzero(labels == k).flatten()
        picked.append(members[torch.randperm(len(members), generator=gen)[:per_class]])
    return torch.cat(picked)


def _reference_linear_probe(train_features, train_labels, test_features, test_labels, seed: int) -> float:
    """The solution's linear_probe_accuracy (300 full-batch Adam steps, lr 0.01, weight decay 1e-3)."""
    from torch import nn

    mean, std = train_features.mean(0), train_features.std(0) + 1e-6
    train_std, test_std = (train_features - mean) / std, (test_features - mean) / std
    torch.manual_seed(seed)
    classifier = nn.Linear(train_features.shape[1], 10)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=0.01)
    for _ in range(300):
        loss = nn.functional.cross_entropy(classifier(train_std), train_labels) + 1e-3 * classifier.weight.pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return (classifier(test_std).argmax(1) == test_labels).float().mean().item()


@criteria("accuracy gain of trained over random codes")
def judge_gain(got: dict, want: dict) -> str:  # noqa: ARG001 - evaluated here with the reference probe
    # Reference solution over 5 labelled subsets: random codes 0.43-0.53, trained codes 0.73-0.78, a gap of 0.25-0.30
    # in every subset; the check cell asks for 0.15 on average over 3 subsets of 100 labels.
    from torch import nn

    x_train, y_train = _mnist("train")
    x_test, y_test = _mnist("test")
    trained = _rebuild(got, "autoencoder.encoder", (PIXELS, HIDDEN, CODE_DIM))
    torch.manual_seed(1)
    random_encoder = nn.Sequential(nn.Linear(PIXELS, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, CODE_DIM)).eval()
    gaps = []
    for seed in range(3):
        idx = _labelled_subset(y_train, 10, seed)
        with torch.no_grad():
            feats = {name: (enc(x_train[idx]), enc(x_test)) for name, enc in (("random", random_encoder),
                                                                                ("trained", trained))}
        acc = {name: _reference_linear_probe(f_tr, y_train[idx], f_te, y_test, seed) for name, (f_tr, f_te) in feats.items()}
        gaps.append(acc["trained"] - acc["random"])
    gap = sum(gaps) / len(gaps)
    if not 0.15 <= gap <= 1.0:
        raise Fail(f"the trained encoder's codes beat random codes by {gap:.3f} in accuracy on average, at least 0.15 "
                    "needed. Hint: train the autoencoder as specified; its codes must keep what distinguishes digits.")
    return f"{gap:.3f} on average over 3 subsets of 100 labels (at least 0.15)"


def _check_samples(samples: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor, hidden: bool) -> None:
    samples = samples.double()
    mean, cov = mean.double(), cov.double()
    n = len(samples)
    if not torch.isfinite(samples).all():
        raise Fail("the samples contain NaN or inf.")
    se_mean = (cov.diagonal() / n).sqrt()
    se_cov = ((cov.diagonal()[:, None] * cov.diagonal()[None, :] + cov**2) / n).sqrt()
    emp_cov = torch.cov(samples.T)
    if ((samples.mean(0) - mean).abs() > 5 * se_mean).any():
        raise Fail("the sample mean is off by more than 5 standard errors. Hint: add the mean.")
    if ((emp_cov - cov).abs() > 5 * se_cov).any():
        if not hidden and torch.allclose(emp_cov, cov @ cov, rtol=0.05, atol=0.05):
            raise Fail("the samples have covariance Σ², not Σ. Hint: multiply eps by the Cholesky factor L, not by Σ.",
                       diagnosis="covariance_for_cholesky")
        raise Fail("the sample covariance is off by more than 5 standard errors. Hint: z = mean + eps @ L.T with "
                    "L = torch.linalg.cholesky(cov); an elementwise sqrt of Σ ignores correlations.")


@criteria("fit_gaussian and sample_gaussian")
def judge_gaussian_visible(got: dict, want: dict) -> str:
    c_hat = get_value(got, "cov", (3, 3))
    if torch.allclose(c_hat.double(), torch.cov(probes._small_codes().T, correction=0)):
        raise Fail("fit_gaussian returns the biased covariance (divided by N). Hint: divide by N - 1.",
                   diagnosis="biased_covariance")
    require_close("mean", got, want["mean"], rtol=1e-5, atol=1e-8, hidden=False)
    require_close("cov", got, want["cov"], rtol=1e-5, atol=1e-8, hidden=False)
    samples = get_value(got, "samples", (N_VISIBLE, 3))
    if not torch.equal(get_value(got, "samples_again", tuple(samples.shape)), samples):
        raise Fail("sample_gaussian: two calls with equally seeded generators differ. Hint: draw eps with "
                    "generator=generator.", diagnosis="generator_ignored")
    _check_samples(samples, *probes._true_gaussian(), hidden=False)
    return "mean and covariance within 5 standard errors, reproducible with a generator"


@criteria("sample_gaussian and fit_gaussian (hidden)")
def judge_gaussian_hidden(got: dict, want: dict) -> str:
    draws = get_value(got, "draws", (N_HIDDEN, 5))
    try:
        _check_samples(draws, *probes._hidden_gaussian(), hidden=True)
    except Fail:
        raise Fail("mean or covariance outside 5 standard errors on a 5-d float32 Gaussian.") from None
    require_close("fit_cov", got, want["fit_cov"], rtol=1e-4, atol=1e-8, hidden=True, hint="the unbiased covariance (N − 1).")
    require_close("fit_mean", got, want["fit_mean"], rtol=1e-4, atol=1e-6, hidden=True)
    return "5-d float32 Gaussian within 5 standard errors; covariance of other codes"


@criteria("corrupt")
def judge_corrupt(got: dict, want: dict) -> str:  # noqa: ARG001 - judged by its statistics
    x = probes._ones_input()
    noisy = get_value(got, "noisy", tuple(x.shape))
    if not torch.equal(get_value(got, "x_after", tuple(x.shape)), x.double()):
        raise Fail("the input was modified in place. Hint: build a new tensor, e.g. x * mask.",
                   diagnosis="input_modified_in_place")
    masked = noisy == 0
    if (masked == masked[:1]).all():
        raise Fail("every image has the same mask. Hint: draw one mask entry per pixel of every image: a mask of x's "
                   "full shape.", diagnosis="one_mask_for_the_batch")
    per_image = masked.double().mean(1)
    if ((per_image == 0) | (per_image == 1)).all():
        raise Fail("each image is either kept or masked whole. Hint: draw one mask entry per pixel, not per image.",
                   diagnosis="one_draw_per_image")
    fraction = masked.double().mean().item()
    if abs(fraction - 0.3) > 5 * (0.3 * 0.7 / masked.numel()) ** 0.5:
        kept = abs(fraction - 0.7) < 0.01
        raise Fail(f"{fraction:.3f} of the pixels are masked, expected 0.3 (within 5 standard errors)",
                   "p is the probability of *dropping* a pixel, not of keeping it." if kept else "",
                   "keep_probability_for_drop" if kept else "")
    if not torch.allclose(noisy[~masked].double(), x[~masked].double(), rtol=1e-5, atol=1e-8):
        raise Fail("pixels that are not masked changed: keep them as they are.")
    if not torch.equal(get_value(got, "noisy_again", tuple(x.shape)), noisy):
        raise Fail("equally seeded generators give different masks. Hint: draw the mask with generator=generator.",
                   diagnosis="generator_ignored_in_corrupt")
    return f"{fraction:.4f} masked for p = 0.3"


@criteria("denoising gain")
def judge_denoiser(got: dict, want: dict) -> str:  # noqa: ARG001 - evaluated here on masked test images
    # Reference solution (seeds 0 and 1): plain 133.2 / 129.0, denoising 102.8 / 103.2 nats; the check asks for 10.
    x_test, _ = _mnist("test")
    noisy = _reference_corrupt(x_test, 0.5, 123)
    losses = {}
    for name in ("autoencoder", "denoiser"):
        encoder = _rebuild(got, f"{name}.encoder", (PIXELS, HIDDEN, CODE_DIM))
        decoder = _rebuild(got, f"{name}.decoder", (CODE_DIM, HIDDEN, PIXELS))
        with torch.no_grad():
            losses[name] = _bce(x_test, decoder(encoder(noisy)))
    gain = losses["autoencoder"] - losses["denoiser"]
    if not gain >= 10.0:
        raise Fail(f"plain {losses['autoencoder']:.1f} minus denoising {losses['denoiser']:.1f} = {gain:.1f} nats, at "
                    "least 10 needed. Hint: train on corrupt(x) as input and the clean x as the target.")
    return f"plain {losses['autoencoder']:.1f} − denoising {losses['denoiser']:.1f} = {gain:.1f} nats (at least 10)"


JUDGES = {
    "ex1_1_visible": judge_autoencoder_visible,
    "ex1_1_hidden": judge_autoencoder_hidden,
    "ex1_2_visible": judge_loss_visible,
    "ex1_2_hidden": judge_loss_hidden,
    "ex1_2_trained": judge_trained,
    "ex1_3_visible": judge_linear_visible,
    "ex1_3_hidden": judge_linear_hidden,
    "ex1_3_gain": judge_gain,
    "ex1_4_visible": judge_gaussian_visible,
    "ex1_4_hidden": judge_gaussian_hidden,
    "ex1_5_visible": judge_corrupt,
    "ex1_5_result": judge_denoiser,
}

