"""Full-MNIST downloader and idx reader, against files the tests write and a local HTTP server (never the internet)."""

import gzip
import hashlib
import http.server
import struct
import threading
import time
from functools import partial

import numpy as np
import pytest
import torch

from utils import data


def idx_bytes(array: np.ndarray) -> bytes:
    magic = data.IDX_IMAGES_MAGIC if array.ndim == 3 else data.IDX_LABELS_MAGIC
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape) + array.astype(np.uint8).tobytes()


@pytest.fixture
def fake_mnist(tmp_path):
    """A tiny MNIST-shaped data set as four gzipped idx files in a served folder, with their checksums."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (12, 28, 28)), "train_labels": rng.integers(0, 10, 12),
        "test_images": rng.integers(0, 256, (5, 28, 28)), "test_labels": rng.integers(0, 10, 5),
    }
    served = tmp_path / "served"
    served.mkdir()
    files = {}
    for key, array in arrays.items():
        name = f"{key}.gz"
        payload = gzip.compress(idx_bytes(array), mtime=0)
        (served / name).write_bytes(payload)
        files[key] = (name, hashlib.sha256(payload).hexdigest())
    return served, files, arrays


@pytest.fixture
def server(fake_mnist):
    """Serve the fake files on 127.0.0.1 at a free port; yields the base URL."""
    served = fake_mnist[0]
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connection refused at once, like a machine with no network."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_download_verifies_and_reads(tmp_path, fake_mnist, server, monkeypatch):
    _, files, arrays = fake_mnist
    cache = tmp_path / "cache"
    # The first mirror is down: the second one is used.
    paths = data.download_mnist(cache, mirrors=(closed_port_url(), server), files=files)
    assert sorted(p.name for p in cache.iterdir()) == sorted(name for name, _ in files.values())
    assert np.array_equal(data.read_idx(paths["train_images"]), arrays["train_images"])
    assert np.array_equal(data.read_idx(paths["test_labels"]), arrays["test_labels"])

    # load_mnist(subset='full') reads the cache with the same conventions as the offline set.
    monkeypatch.setattr(data, "MNIST_FILES", files)
    x, y = data.load_mnist("full", "train", directory=cache)
    assert x.shape == (12, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.allclose(x[:, 0] * 255, torch.from_numpy(arrays["train_images"]).float())


def test_cached_files_are_not_downloaded_again(tmp_path, fake_mnist):
    served, files, _ = fake_mnist
    cache = tmp_path / "cache"
    cache.mkdir()
    for name, _ in files.values():
        (cache / name).write_bytes((served / name).read_bytes())
    # No mirror reachable, yet it succeeds: every file is present with the right checksum.
    paths = data.download_mnist(cache, mirrors=(closed_port_url(),), files=files)
    assert all(p.exists() for p in paths.values())


def test_checksum_mismatch_leaves_nothing_in_cache(tmp_path, fake_mnist, server):
    _, files, _ = fake_mnist
    bad = dict(files, train_images=(files["train_images"][0], "0" * 64))
    cache = tmp_path / "cache"
    with pytest.raises(data.DataUnavailableError, match="checksum mismatch"):
        data.download_mnist(cache, mirrors=(server,), files=bad)
    assert not (cache / files["train_images"][0]).exists()
    assert not list(cache.glob("*.part")), "a temporary download was left behind"


def test_corrupt_cached_file_is_replaced(tmp_path, fake_mnist, server):
    _, files, arrays = fake_mnist
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / files["test_labels"][0]).write_bytes(b"half a download")
    paths = data.download_mnist(cache, mirrors=(server,), files=files)
    assert np.array_equal(data.read_idx(paths["test_labels"]), arrays["test_labels"])


def test_offline_fails_fast_and_names_the_alternative(tmp_path, fake_mnist):
    _, files, _ = fake_mnist
    start = time.perf_counter()
    with pytest.raises(data.DataUnavailableError) as info:
        data.download_mnist(tmp_path / "cache", mirrors=(closed_port_url(), closed_port_url()), files=files)
    assert time.perf_counter() - start < 5
    assert "subset='offline'" in str(info.value)
    assert list((tmp_path / "cache").iterdir()) == []


def test_truncated_idx_is_an_error(tmp_path):
    good = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))
    path = tmp_path / "short-idx3-ubyte"
    path.write_bytes(good[:-10])
    with pytest.raises(data.DataUnavailableError, match="truncated"):
        data.read_idx(path)
    gz = tmp_path / "short.gz"
    gz.write_bytes(gzip.compress(good)[:-20])
    with pytest.raises(data.DataUnavailableError):
        data.read_idx(gz)


def test_bad_magic_number_is_an_error(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(struct.pack(">II", 1234, 3) + bytes(3))
    with pytest.raises(data.DataUnavailableError, match="magic number 1234"):
        data.read_idx(path)


def test_cache_dir_honours_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert data.cache_dir() == tmp_path / "elsewhere"
