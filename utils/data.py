"""MNIST for the course: an offline 5,000-digit set that always works, and full MNIST for users with a network.

The notebooks call one function::

    x_train, y_train = data.load_mnist(split="train")          # offline subset, (4000, 1, 28, 28) in [0, 1]
    x_test, y_test = data.load_mnist(split="test", flatten=True)  # (1000, 784)

Images are float32 in [0, 1]; labels are int64 digits 0-9.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
import struct
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch

IMAGE_SIDE = 28
IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE  # 784
NUM_CLASSES = 10

# The offline subset: 500 real MNIST digits per class, sorted by class, shipped in utils/datasets/.
OFFLINE_FILE = Path(__file__).resolve().parent / "datasets" / "mnist_5000.npz"
OFFLINE_SHA256 = "246e0c30eeea57c8d0037d3f38c8e00651ec204cc61b8022563e9aeeb9d756f4"
OFFLINE_PER_CLASS = 500
OFFLINE_TEST_PER_CLASS = 100  # -> 4,000 train / 1,000 test
SPLIT_SEED = 20141220  # fixes the split for every run on every machine; never change it
FIXED_THRESHOLD = 0.5

# Full MNIST: the four idx files, their SHA-256 sums, and mirrors tried in order.
MNIST_FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
CACHE_ENV = "VAE_COURSE_DATA"
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049


class DataUnavailableError(RuntimeError):
    """Raised when a data set cannot be found, downloaded or read. The message says what to do."""


# --------------------------------------------------------------------------------------------
# Offline subset
# --------------------------------------------------------------------------------------------
def offline_file() -> Path:
    """The 5,000 digits shipped with the course (see utils/datasets/README.md for provenance and licence)."""
    return OFFLINE_FILE


@functools.lru_cache(maxsize=1)
def _read_offline() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 digits as (uint8 images (5000, 784), int64 labels (5000,)), sorted by class (500 per class)."""
    path = offline_file()
    if not path.is_file():
        raise DataUnavailableError(f"The offline MNIST file {path} is missing: restore it from the course "
                                   "(git checkout -- utils/datasets) or download the course again.")
    if (got := sha256_of(path)) != OFFLINE_SHA256:
        raise DataUnavailableError(f"{path} is damaged (sha256 {got[:12]}…, expected {OFFLINE_SHA256[:12]}…): "
                                   "restore it from the course (git checkout -- utils/datasets).")
    with np.load(path) as arrays:
        images, labels = arrays["images"], arrays["labels"]
    return images.reshape(len(images), IMAGE_PIXELS), labels.astype(np.int64)


def offline_split_indices(labels: np.ndarray, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded train/test indices: per class, 400 train and 100 test (for 500 per class).

    The train and test orders are shuffled too, so no batch is sorted by class.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for digit in range(NUM_CLASSES):
        idx = np.flatnonzero(labels == digit)
        idx = idx[rng.permutation(len(idx))]
        n_test = round(len(idx) * OFFLINE_TEST_PER_CLASS / OFFLINE_PER_CLASS)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train_idx, test_idx = np.concatenate(train), np.concatenate(test)
    return train_idx[rng.permutation(len(train_idx))], test_idx[rng.permutation(len(test_idx))]


# --------------------------------------------------------------------------------------------
# Full MNIST: cache, download with checksums, idx parsing
# --------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """Where full MNIST is kept: $VAE_COURSE_DATA if set, else ~/.cache/vae-course/mnist."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "vae-course" / "mnist"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download_one(filename: str, sha256: str, target: Path, mirrors: tuple[str, ...], timeout: float) -> None:
    """Try each mirror; write to a temporary file in the cache folder, check the sum, then rename atomically."""
    errors = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                shutil.copyfileobj(response, out)
            got = sha256_of(tmp)
            if got != sha256:
                errors.append(f"{url}: checksum mismatch (got sha256 {got[:12]}…, expected {sha256[:12]}…)")
                continue
            os.replace(tmp, target)
            return
        except (urllib.error.URLError, OSError, ValueError) as exc:  # no network, HTTP error, timeout
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DataUnavailableError(
        f"Could not download {filename} from any mirror:\n  " + "\n  ".join(errors) + "\n"
        "Without a network, use the offline set instead: load_mnist(subset='offline') "
        "(5,000 real digits shipped with the course). Or copy the four MNIST .gz files into "
        f"{target.parent} (or the folder named by ${CACHE_ENV})."
    )


def download_mnist(
    directory: Path | str | None = None,
    mirrors: tuple[str, ...] = MNIST_MIRRORS,
    files: dict[str, tuple[str, str]] | None = None,
    timeout: float = 5.0,
) -> dict[str, Path]:
    """Make sure the four MNIST idx files are in `directory` (default: `cache_dir()`), verified by SHA-256.

    Files already there with the right checksum are kept; others are (re)downloaded. An interrupted or
    corrupt download never leaves a file under its final name. Returns {key: path}.
    """
    files = MNIST_FILES if files is None else files
    directory = Path(directory) if directory is not None else cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, (filename, sha256) in files.items():
        target = directory / filename
        if not (target.exists() and sha256_of(target) == sha256):
            _download_one(filename, sha256, target, tuple(mirrors), timeout)
        paths[key] = target
    return paths


def full_mnist_cached(directory: Path | str | None = None) -> bool:
    """True when the four full-MNIST files are in `directory` (default `cache_dir()`) with the right checksums.

    Never downloads: notebooks call it to use full MNIST when it is there and the offline subset otherwise.
    """
    directory = Path(directory) if directory is not None else cache_dir()
    return all((directory / name).is_file() and sha256_of(directory / name) == sha256 for name, sha256 in MNIST_FILES.values())


def read_idx(path: Path | str) -> np.ndarray:
    """Read an idx file (gzipped or not) into a uint8 array: images (N, 28, 28) or labels (N,).

    Raises DataUnavailableError on a bad magic number or a truncated file.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:  # gzip raises these on truncated or non-gzip data
        raise DataUnavailableError(f"{path} is not a readable idx file ({exc}); delete it and download again.") from exc
    if len(raw) < 8:
        raise DataUnavailableError(f"{path} is truncated: {len(raw)} bytes, too short for an idx header.")
    magic, count = struct.unpack(">II", raw[:8])
    if magic == IDX_IMAGES_MAGIC:
        header = 16
        rows, cols = struct.unpack(">II", raw[8:16]) if len(raw) >= 16 else (0, 0)
        shape = (count, rows, cols)
    elif magic == IDX_LABELS_MAGIC:
        header, shape = 8, (count,)
    else:
        raise DataUnavailableError(
            f"{path} has magic number {magic}, expected {IDX_IMAGES_MAGIC} (images) or {IDX_LABELS_MAGIC} (labels): "
            "it is not an MNIST idx file."
        )
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DataUnavailableError(f"{path} is truncated or padded: {len(raw)} bytes, expected {expected} for shape {shape}.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()  # writable


# --------------------------------------------------------------------------------------------
# What notebooks call
# --------------------------------------------------------------------------------------------
def binarize(images: torch.Tensor, mode: str = "fixed", seed: int = 0) -> torch.Tensor:
    """Binarize images in [0, 1]: 'fixed' thresholds at 0.5; 'dynamic' samples x ~ Bernoulli(pixel) with `seed`."""
    if mode == "fixed":
        return (images > FIXED_THRESHOLD).to(images.dtype)
    if mode == "dynamic":
        gen = torch.Generator(device="cpu").manual_seed(seed)
        return torch.bernoulli(images.cpu(), generator=gen).to(images.device)
    raise ValueError(f"binarize mode must be 'fixed' or 'dynamic', got {mode!r}")


def load_mnist(
    subset: str = "offline",
    split: str = "train",
    *,
    flatten: bool = False,
    binarize_mode: str | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    directory: Path | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load MNIST as (images, labels).

    subset: 'offline' (5,000 real digits shipped with the course in utils/datasets: 4,000 train / 1,000 test, a fixed stratified
        split) or 'full' (60,000 / 10,000; downloaded once into `cache_dir()` or `directory`).
    split: 'train' or 'test'.
    Returns images float32 in [0, 1], shaped (N, 1, 28, 28), or (N, 784) when flatten=True, and labels int64 (N,),
    both on `device` (default CPU). binarize_mode: None, 'fixed' (threshold 0.5) or 'dynamic' (Bernoulli, `seed`).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if subset == "offline":
        images, labels = _read_offline()
        train_idx, test_idx = offline_split_indices(labels)
        idx = train_idx if split == "train" else test_idx
        images, labels = images[idx].reshape(-1, IMAGE_SIDE, IMAGE_SIDE), labels[idx]
    elif subset == "full":
        paths = download_mnist(directory)
        images = read_idx(paths[f"{split}_images"])
        labels = read_idx(paths[f"{split}_labels"]).astype(np.int64)
        if len(images) != len(labels):
            raise DataUnavailableError(f"{len(images)} images but {len(labels)} labels in {paths[f'{split}_images'].parent}.")
    else:
        raise ValueError(f"subset must be 'offline' or 'full', got {subset!r}")

    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0).unsqueeze(1)  # (N, 1, 28, 28)
    if binarize_mode is not None:
        x = binarize(x, binarize_mode, seed)
    if flatten:
        x = x.reshape(len(x), IMAGE_PIXELS)
    y = torch.from_numpy(np.ascontiguousarray(labels)).long()
    return x.to(device or "cpu"), y.to(device or "cpu")
