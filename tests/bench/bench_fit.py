"""Benchmark (not a timed test): how close `utils.train.fit` comes to the model's own compute.

    OMP_NUM_THREADS=1 python tests/bench/bench_fit.py [--epochs 3] [--json out.json]

In one run on one machine it measures images/s of
  (a) the bare training steps on pre-sliced batches (the model's own compute: the limit `fit` can reach),
  (b) `fit` (data resident in one tensor, shuffled index batches),
  (c) a pytorch/examples-style pipeline: uint8 images -> PIL -> to-tensor -> DataLoader (batch 128, shuffled),
for the 784-400-20 VAE on the 4,000-image offline training set, and prints the ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from utils import data, train  # noqa: E402

PIXELS, HIDDEN, LATENT, BATCH = 784, 400, 20, 128


class BenchVAE(nn.Module):
    """The reference 784-400-20 VAE (Kingma & Welling's MNIST architecture), for timing only."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(PIXELS, HIDDEN)
        self.mu, self.logvar = nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)
        self.dec1, self.dec2 = nn.Linear(LATENT, HIDDEN), nn.Linear(HIDDEN, PIXELS)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = F.relu(self.enc(x))  # (B, 784) -> (B, 400)
        mu, logvar = self.mu(h), self.logvar(h)  # (B, 20) each
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.dec2(F.relu(self.dec1(z))), mu, logvar  # logits (B, 784)


def vae_loss(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Negative ELBO in nats per image (sum over pixels and latents, mean over the batch)."""
    x = batch[0]
    logits, mu, logvar = model(x)
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (rec + kl) / len(x)


class PILDigits(Dataset):
    """pytorch/examples style (torchvision's MNIST + ToTensor, re-implemented: torchvision is not installed here).

    Each item: uint8 tensor -> PIL image -> numpy copy -> (C, H, W) float tensor / 255, and its integer label.
    """

    def __init__(self, images_uint8: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images_uint8, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img, target = self.images[i], int(self.labels[i])
        img = Image.fromarray(img.numpy(), mode="L")  # what torchvision.datasets.MNIST does
        pic = torch.from_numpy(np.array(img, np.uint8, copy=True))  # what transforms.ToTensor does
        pic = pic.view(img.size[1], img.size[0], 1).permute((2, 0, 1)).contiguous()
        return pic.to(dtype=torch.float32).div(255), target


def time_interleaved(runs: dict, epochs: int) -> dict[str, float]:
    """Median seconds per epoch of each run, after one warm-up epoch each.

    The runs take turns epoch by epoch, so a change in the machine's load affects them all alike.
    """
    times: dict[str, list[float]] = {name: [] for name in runs}
    for fn in runs.values():
        fn()  # warm-up
    for _ in range(epochs):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()

    train.seed_everything(0)
    device = train.get_device()
    x, y = data.load_mnist(split="train", flatten=True, device=device)
    n = len(x)

    model = BenchVAE().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = [(x[i:i + BATCH],) for i in range(0, n, BATCH)]

    def bare_epoch() -> None:
        for batch in batches:
            loss = vae_loss(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    def fit_epoch() -> None:
        train.fit(model, vae_loss, x, epochs=1, batch_size=BATCH, optimizer=opt, progress=False)

    images_uint8 = (x.reshape(n, 28, 28).cpu() * 255).round().to(torch.uint8)
    loader = DataLoader(PILDigits(images_uint8, y.cpu()), batch_size=BATCH, shuffle=True)

    def loader_epoch() -> None:
        for xb, _ in loader:
            loss = vae_loss(model, (xb.to(device).reshape(len(xb), PIXELS),))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    results = {"device": str(device), "threads": torch.get_num_threads(), "images": n, "batch_size": BATCH}
    medians = time_interleaved({"bare_steps": bare_epoch, "fit": fit_epoch, "dataloader_pil": loader_epoch}, args.epochs)
    for name, seconds in medians.items():
        results[name] = {"seconds_per_epoch": seconds, "images_per_s": n / seconds}
        print(f"{name:>15}: {seconds:6.3f} s/epoch  {n / seconds:9.0f} images/s")
    results["fit_over_bare"] = results["fit"]["images_per_s"] / results["bare_steps"]["images_per_s"]
    results["fit_over_dataloader"] = results["fit"]["images_per_s"] / results["dataloader_pil"]["images_per_s"]
    print(f"fit / bare steps: {results['fit_over_bare']:.2f}  (target >= 0.90)")
    print(f"fit / DataLoader: {results['fit_over_dataloader']:.2f}  (target >= 1.8)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
