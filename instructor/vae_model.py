"""The benchmark's model: notebook 05's VAE (784-400-20, ReLU) and its negative ELBO, written out once here.

The tooling never executes notebook cells to get a model. `tests/test_bench.py` checks that this VAE has the
architecture of notebook 05's reference answer and that its loss is the closed-form negative ELBO.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PIXELS = 784
HIDDEN = 400
LATENT = 20


class VAE(nn.Module):
    """Gaussian encoder q_phi(z|x), Bernoulli decoder p_theta(x|z), prior N(0, I).

    forward(x: (B, 784)) -> (x_logits (B, 784), mu (B, d), logvar (B, d)), with z = mu + exp(logvar / 2) * eps.
    """

    def __init__(self, latent_dim: int = LATENT, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.hidden = nn.Linear(PIXELS, hidden)
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, PIXELS))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = F.relu(self.hidden(x))  # (B, 784) -> (B, 400)
        mu, logvar = self.mu(h), self.logvar(h)  # (B, d) each
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.decoder(z), mu, logvar


def negative_elbo(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Negative ELBO of batch[0] (B, 784) in [0, 1], in nats per image (sum over pixels and latents, mean over B)."""
    x = batch[0]
    x_logits, mu, logvar = model(x)
    reconstruction = F.binary_cross_entropy_with_logits(x_logits, x, reduction="sum")
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum()
    return (reconstruction + kl) / len(x)
