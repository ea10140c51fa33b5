"""The pretrained non-linear decoder of notebook 03, made once here (instructor material: never shipped to students).

    python -m instructor.nb03_decoder            # trains it and writes utils/datasets/nb03_decoder.npy
    python -m instructor.nb03_decoder --check    # trains it again and compares with the shipped file

Notebook 03 studies inference with the decoder fixed, before notebook 04 has explained the reparameterization
gradient and before notebook 05 builds a VAE. So the decoder it uses is trained here, as a small VAE on the course's
4,000 offline training digits (grey levels in [0, 1]): encoder 784-128-16 (ReLU), decoder
`utils.amortized_demo.Decoder` (8-128-128-784, ReLU, sigmoid mean), a Gaussian likelihood N(f(z), sigma^2 I) with
the probabilistic PCA's sigma^2 (d = 8), one reparameterized sample per image, closed-form KL, Adam (lr 2e-3),
20 epochs, batch 128, seed 0. The decoder's parameters are saved as one float32 vector (`np.save`: the same bytes for
the same weights), whose SHA-256 `utils.amortized_demo.DECODER_SHA256` checks on every load.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import torch
from torch import nn

from utils import amortized_demo, data, train

LATENT_DIM = 8
HIDDEN = 128
EPOCHS, LR, SEED = 20, 2e-3, 0


def ppca_sigma2(x: torch.Tensor, latent_dim: int = LATENT_DIM) -> torch.Tensor:
    """The maximum-likelihood PPCA noise variance: the mean of the sample covariance's D - d smallest eigenvalues."""
    x = x.double()
    centred = x - x.mean(0)
    eigenvalues = torch.linalg.eigvalsh(centred.T @ centred / len(x)).flip(0)
    return eigenvalues[latent_dim:].mean()


class SmallVAE(nn.Module):
    """Encoder 784-128-2d (ReLU) and the notebook's Decoder; forward returns (mean image, mu, logvar)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(amortized_demo.PIXELS, HIDDEN), nn.ReLU(),
                                     nn.Linear(HIDDEN, 2 * LATENT_DIM))
        self.decoder = amortized_demo.Decoder(LATENT_DIM, HIDDEN)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.decoder(z), mu, logvar


def train_decoder() -> tuple[np.ndarray, dict]:
    """Train the small VAE; return its decoder's parameters as one float32 vector, and fit's history."""
    train.seed_everything(SEED)
    x_train, _ = data.load_mnist(split="train", flatten=True)
    x_test, _ = data.load_mnist(split="test", flatten=True)
    sigma2 = ppca_sigma2(x_train).float()

    def loss_fn(model: SmallVAE, batch: tuple[torch.Tensor]) -> torch.Tensor:
        (x,) = batch
        mean, mu, logvar = model(x)
        log_lik = -0.5 * (x.shape[-1] * torch.log(2 * math.pi * sigma2) + ((x - mean) ** 2).sum(-1) / sigma2)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(-1)
        return (kl - log_lik).mean()  # nats per image

    torch.manual_seed(SEED)
    vae = SmallVAE()
    history = train.fit(vae, loss_fn, x_train, epochs=EPOCHS, lr=LR, eval_data=x_test, seed=SEED, progress=False)
    vector = nn.utils.parameters_to_vector(vae.decoder.parameters()).detach().numpy().astype(np.float32)
    return vector, history


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare a fresh training with the shipped file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    vector, history = train_decoder()
    print(f"negative ELBO after {EPOCHS} epochs: {history['train_loss'][-1]:.1f} (train), "
          f"{history['eval_loss'][-1]:.1f} (test) nats per image")
    path = amortized_demo.DECODER_FILE
    if args.check:
        shipped = np.load(path)
        print(f"largest difference from {path.name}: {np.abs(shipped - vector).max():.2e}")
        return 0
    np.save(path, vector)
    print(f"wrote {path} ({path.stat().st_size:,} bytes), sha256 {data.sha256_of(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
