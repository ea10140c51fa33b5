"""Notebook 05's full-MNIST cell: it trains on full MNIST when the four files are cached, and stays offline otherwise.

The files here are tiny fakes written by the test (12 training and 5 test digits), so the cell's 10 epochs take
well under a second. The cell's check asks the full-data model to beat the 4,000-digit model's test negative ELBO
(both on binarized digits); random pixels after 10 steps cannot, so here the check must fail.
"""

import gzip
import hashlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests import nbtools
from tests.test_download import idx_bytes
from utils import checks, data, train


@pytest.fixture
def fake_cache(tmp_path, monkeypatch):
    """Four tiny MNIST idx files in a cache folder named by $VAE_COURSE_DATA, with their checksums as MNIST_FILES."""
    rng = np.random.default_rng(1)
    arrays = {"train_images": rng.integers(0, 256, (12, 28, 28)), "train_labels": rng.integers(0, 10, 12),
              "test_images": rng.integers(0, 256, (5, 28, 28)), "test_labels": rng.integers(0, 10, 5)}
    cache = tmp_path / "cache"
    cache.mkdir()
    files = {}
    for key, array in arrays.items():
        name = data.MNIST_FILES[key][0]
        payload = gzip.compress(idx_bytes(array), mtime=0)
        (cache / name).write_bytes(payload)
        files[key] = (name, hashlib.sha256(payload).hexdigest())
    monkeypatch.setenv(data.CACHE_ENV, str(cache))
    monkeypatch.setattr(data, "MNIST_FILES", files)
    monkeypatch.setattr(data, "MNIST_MIRRORS", ())  # a download attempt would fail at once
    return cache


def full_mnist_cell(nb) -> str:
    return next(c.source for c in nb.cells if c.cell_type == "code" and "data.full_mnist_cached()" in c.source)


def run_cell(capsys):
    nb = nbtools.load("05_vae")
    ns = {"torch": torch, "nn": nn, "F": F, "math": math, "checks": checks, "data": data, "train": train,
          "device": torch.device("cpu"), "PIXELS": 784, "HIDDEN": 400, "LATENT": 20,
          "x_train": torch.zeros(4000, 784), "x_test": torch.zeros(1000, 784)}
    for name in ("reparameterize", "negative_elbo", "VAE"):
        assert nbtools.run_source(nbtools.cell_defining(nb, name), ns) is None, name
    ns["history"] = {"eval_loss": [115.7]}  # the 4,000-digit d = 20 model's test negative ELBO

    def binarized(term, seed=0):  # as in the notebook: a fresh binarization of each batch
        gen = torch.Generator().manual_seed(seed)
        return lambda model, batch: ns["negative_elbo"](x := torch.bernoulli(batch[0], generator=gen),
                                                        *model(x))[term]

    ns["binarized"] = binarized
    error = nbtools.run_source(full_mnist_cell(nb), ns)
    return ns, error, capsys.readouterr().out


def test_full_mnist_cached_needs_all_four_files_with_their_checksums(fake_cache):
    assert data.full_mnist_cached()
    assert data.full_mnist_cached(fake_cache)
    (fake_cache / data.MNIST_FILES["test_labels"][0]).write_bytes(b"damaged")
    assert not data.full_mnist_cached()
    (fake_cache / data.MNIST_FILES["test_labels"][0]).unlink()
    assert not data.full_mnist_cached()


def test_notebook_trains_on_full_mnist_when_cached(fake_cache, capsys):
    ns, error, out = run_cell(capsys)
    assert ns["x_full_train"].shape == (12, 784) and ns["x_full_test"].shape == (5, 784)  # the cached files, not offline
    assert len(ns["history_full"]["eval_loss"]) == 10
    assert "full MNIST (12 training digits), 10 epochs: test negative ELBO" in out
    # Random pixels after 10 steps are far above the 4,000-digit model's 115.7 nats: the cell's check must catch that.
    assert set(ns["x_full_test"].unique().tolist()) <= {0.0, 1.0}  # evaluated on binarized test digits
    assert isinstance(error, AssertionError) and "full MNIST test negative ELBO" in str(error)


def test_notebook_stays_offline_without_the_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "empty"))
    ns, error, out = run_cell(capsys)
    assert error is None and ns["history_full"] is None and "x_full_train" not in ns
    assert "stays on the offline subset of 5,000 digits (4,000 training, 1,000 test)" in out
