"""Probes of the hidden tests for 01_autoencoders (instructor material: never released to students).

The only hidden-test code that enters the student's kernel (`instructor.grading.runner`): each probe builds inputs,
calls the student's functions and returns plain tensors. Nothing here computes an answer: no reference
implementation, no expected value, no table of typical wrong answers; those live in ``judges.py``, which only the
trusted grader imports (and which rebuilds the inputs with the builders below).
"""

from __future__ import annotations

import torch

PIXELS = 784


HIDDEN, CODE_DIM = 400, 20  # the notebook's trained autoencoders


def _linear_params(module) -> dict:
    """{"0": {"weight", "bias"}, "1": ...}: the Linear layers of `module` in order (probe side)."""
    from torch import nn

    return {str(i): {"weight": m.weight, "bias": m.bias}
            for i, m in enumerate(x for x in module.modules() if isinstance(x, nn.Linear))}


def _layer_shapes(module) -> torch.Tensor:
    """(L, 2) in/out features of the Linear layers of `module` in order (probe side)."""
    from torch import nn

    shapes = [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, nn.Linear)]
    return torch.tensor(shapes, dtype=torch.int64).reshape(-1, 2)


def _trained_weights(model) -> dict:
    return {"encoder": _linear_params(model.encoder), "decoder": _linear_params(model.decoder)}


def _architecture(ns: dict, code_dim: int, hidden: int) -> tuple[object, dict]:
    model = ns["Autoencoder"](code_dim, hidden)
    return model, {"encoder_layers": _layer_shapes(model.encoder), "decoder_layers": _layer_shapes(model.decoder),
                   "n_params": sum(p.numel() for p in model.parameters())}


ARCH_VISIBLE = ((CODE_DIM, HIDDEN), (2, 64))


BATCHES = (1, 7, 64)


def _affine_residual(net, dim: int, gen: torch.Generator) -> torch.Tensor:
    """|f(a) + f(b) - f(a + b) - f(0)| / |f(a)|: 0 up to rounding for an affine map (a property, not an answer)."""
    a, b = torch.rand(8, dim, generator=gen), torch.rand(8, dim, generator=gen)
    fa, fb, fab, f0 = net(a), net(b), net(a + b), net(torch.zeros(8, dim))
    return (fa + fb - fab - f0).norm() / fa.norm().clamp_min(1e-12)


def probe_autoencoder_visible(ns: dict) -> dict:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(10)
    out = {}
    with torch.no_grad():
        for code_dim, hidden in ARCH_VISIBLE:
            model, entry = _architecture(ns, code_dim, hidden)
            entry["encoder_affine"] = _affine_residual(model.encoder, PIXELS, gen)
            entry["decoder_affine"] = _affine_residual(model.decoder, code_dim, gen)
            try:
                model(torch.rand(2, 1, 28, 28))
                entry["images_raise"] = torch.tensor(False)
            except RuntimeError:
                entry["images_raise"] = torch.tensor(True)
                out[f"d{code_dim}"] = entry
                continue
            for batch in BATCHES:
                z, logits = model(torch.rand(batch, 1, 28, 28))
                entry[f"z_shape{batch}"] = torch.tensor(z.shape)
                entry[f"logits_shape{batch}"] = torch.tensor(logits.shape)
            entry["flat_shape"] = torch.tensor(model(torch.rand(5, PIXELS))[0].shape)
            far = model.decoder(10 * torch.randn(256, code_dim))
            entry["far_min"], entry["far_max"] = far.min(), far.max()
            out[f"d{code_dim}"] = entry
    return out


ARCH_HIDDEN = ((6, 48), (17, 150))


def probe_autoencoder_hidden(ns: dict) -> dict:
    torch.manual_seed(321)
    out = {}
    with torch.no_grad():
        for code_dim, hidden in ARCH_HIDDEN:
            model, entry = _architecture(ns, code_dim, hidden)
            x_odd = torch.rand(3, 1, 28, 28)
            entry["z"], entry["logits"] = model(x_odd)
            entry["z_encoder"] = model.encoder(x_odd.reshape(3, PIXELS))
            entry["logits_composed"] = model.decoder(entry["z_encoder"])
            out[f"d{code_dim}"] = entry
    return out


def _loss_visible_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(16, PIXELS, generator=gen)
    return x, 3 * torch.randn(16, PIXELS, generator=gen)


def _loss_hidden_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7077)
    x = torch.rand(6, 1, 28, 28, generator=gen)
    return x, 60 * torch.randn(6, PIXELS, generator=gen)


def _loss_image_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(21)
    return torch.rand(4, 1, 28, 28, generator=gen), 3 * torch.randn(4, PIXELS, generator=gen)


def _loss_large_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(22)
    return torch.rand(4, PIXELS, generator=gen), 40 * torch.randn(4, PIXELS, generator=gen)


def _probe_loss(ns: dict, x: torch.Tensor, logits: torch.Tensor) -> dict:
    got = ns["reconstruction_loss"](x, logits)
    return {"loss": got, "is_tensor": isinstance(got, torch.Tensor)}


def probe_loss_visible(ns: dict) -> dict:
    out = _probe_loss(ns, *_loss_visible_inputs())
    try:  # image-shaped x: a shape error here means x was not flattened (the judge names it)
        out["images"] = _probe_loss(ns, *_loss_image_inputs())
    except (RuntimeError, ValueError):
        out["images_raise"] = torch.tensor(True)
    out["large"] = _probe_loss(ns, *_loss_large_inputs())
    return out


def probe_loss_hidden(ns: dict) -> dict:
    return _probe_loss(ns, *_loss_hidden_inputs())


def probe_trained(ns: dict) -> dict:
    return {"autoencoder": _trained_weights(ns["autoencoder"])}


def _probe_problems() -> dict:
    """As in utils.checks_autoencoders: class information on scale 1e-3 beside noise on scale 1e3 ('scales'), and a
    test set of two classes only ('shifted')."""
    gen = torch.Generator().manual_seed(5)
    centres = 4 * torch.randn(10, 5, generator=gen)

    def features(labels):
        informative = 1e-3 * (centres[labels] + torch.randn(len(labels), 5, generator=gen))
        return torch.cat([informative, 1e3 * torch.randn(len(labels), 3, generator=gen)], dim=1)

    train_labels, test_labels = torch.arange(10).repeat(20), torch.arange(10).repeat(50)
    scales = (features(train_labels), train_labels, features(test_labels), test_labels)
    two_classes = torch.tensor([3, 8]).repeat(100)
    shifted = (centres[train_labels] + torch.randn(200, 5, generator=gen), train_labels,
               centres[two_classes] + torch.randn(200, 5, generator=gen), two_classes)
    return {"scales": scales, "shifted": shifted}


def _accuracy(ns: dict, *args) -> dict:
    accuracy = ns["linear_probe_accuracy"](*args)
    return {"accuracy": accuracy, "is_float": isinstance(accuracy, float)}


def probe_linear_visible(ns: dict) -> dict:
    problems = _probe_problems()
    out = _accuracy(ns, *problems["scales"])
    out["shifted"] = _accuracy(ns, *problems["shifted"])
    return out


def probe_linear_hidden(ns: dict) -> dict:
    gen = torch.Generator().manual_seed(1111)
    feats = torch.randn(300, 8, generator=gen)
    labels_fit = (feats[:, 1] > 0).long() * 7  # learnable on train ...
    labels_shuffled = labels_fit[torch.randperm(300, generator=gen)]  # ... but test labels are unrelated to features
    return {"unrelated": _accuracy(ns, feats, labels_fit, feats, labels_shuffled)}


def probe_gain(ns: dict) -> dict:
    return {"autoencoder": _trained_weights(ns["autoencoder"])}


F64 = torch.float64


TRUE_MEAN = [1.0, -2.0, 0.5]


A = [[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [-0.5, 0.3, 0.4]]


def _small_codes() -> torch.Tensor:
    return torch.randn(7, 3, generator=torch.Generator().manual_seed(3), dtype=F64)


def _true_gaussian() -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.tensor(A, dtype=F64)
    return torch.tensor(TRUE_MEAN, dtype=F64), a @ a.T


N_VISIBLE = 20_000


def probe_gaussian_visible(ns: dict) -> dict:
    m_hat, c_hat = ns["fit_gaussian"](_small_codes())
    mean, cov = _true_gaussian()
    samples = ns["sample_gaussian"](mean, cov, N_VISIBLE, torch.Generator().manual_seed(4))
    again = ns["sample_gaussian"](mean, cov, N_VISIBLE, torch.Generator().manual_seed(4))
    return {"mean": m_hat, "cov": c_hat, "samples": samples, "samples_again": again}


N_HIDDEN = 40_000


def _hidden_gaussian() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(9099)
    b = torch.randn(5, 5, generator=gen) / 2 + torch.eye(5)
    return torch.randn(5, generator=gen), b @ b.T


def _hidden_codes() -> torch.Tensor:
    return 2 + 3 * torch.randn(40, 5, generator=torch.Generator().manual_seed(9100))


def probe_gaussian_hidden(ns: dict) -> dict:
    mean5, cov5 = _hidden_gaussian()
    draws = ns["sample_gaussian"](mean5, cov5, N_HIDDEN, torch.Generator().manual_seed(18))
    m5, c5 = ns["fit_gaussian"](_hidden_codes())
    return {"draws": draws, "fit_mean": m5, "fit_cov": c5}


def _ones_input() -> torch.Tensor:
    return torch.rand(200, PIXELS, generator=torch.Generator().manual_seed(6)) + 0.5  # no zeros: every 0 is a mask


def probe_corrupt(ns: dict) -> dict:
    """The mask on a seeded generator, the input after the call and a second, equally seeded call (the judge
    compares them: in place? reproducible?)."""
    x = _ones_input()
    noisy = ns["corrupt"](x, 0.3, torch.Generator().manual_seed(1))
    x_after = x.clone()
    again = ns["corrupt"](x, 0.3, torch.Generator().manual_seed(1))
    return {"noisy": noisy, "x_after": x_after, "noisy_again": again}


def probe_denoiser(ns: dict) -> dict:
    return {"autoencoder": _trained_weights(ns["autoencoder"]), "denoiser": _trained_weights(ns["denoiser"])}


PROBES = {
    "ex1_1_visible": probe_autoencoder_visible,
    "ex1_1_hidden": probe_autoencoder_hidden,
    "ex1_2_visible": probe_loss_visible,
    "ex1_2_hidden": probe_loss_hidden,
    "ex1_2_trained": probe_trained,
    "ex1_3_visible": probe_linear_visible,
    "ex1_3_hidden": probe_linear_hidden,
    "ex1_3_gain": probe_gain,
    "ex1_4_visible": probe_gaussian_visible,
    "ex1_4_hidden": probe_gaussian_hidden,
    "ex1_5_visible": probe_corrupt,
    "ex1_5_result": probe_denoiser,
}

