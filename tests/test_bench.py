"""instructor.bench at tiny sizes: the report's schema and that every figure is positive (a smoke test, not a timed one)."""

import csv
import json

import nbformat
import pytest
import torch
from torch import nn

from instructor import bench, vae_model


def tiny_model() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 784))


def tiny_loss(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    x = batch[0]
    return nn.functional.binary_cross_entropy_with_logits(model(x), x, reduction="sum") / len(x)


@pytest.fixture
def tiny_notebooks(tmp_path):
    """A folder with two one-cell notebooks (the bench must read them, run them, and leave the files as they were)."""
    folder = tmp_path / "nbs"
    folder.mkdir()
    for name in ("01_a", "02_b"):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
        nbformat.write(nb, folder / f"{name}.ipynb")
    return folder


def test_bench_writes_json_and_csv_with_positive_figures(tmp_path, tiny_notebooks):
    before = {p.name: p.read_bytes() for p in tiny_notebooks.iterdir()}
    out = tmp_path / "out"
    report = bench.main(["--images", "300", "--epochs", "1", "--notebooks", str(tiny_notebooks), "--out", str(out)],
                        model_factory=tiny_model, loss_fn=tiny_loss)

    saved = json.loads((out / "bench.json").read_text())
    assert saved == json.loads(json.dumps(report))
    expected_pipelines = {"bare_steps", "fit", "dataloader_pil"} | ({"fit_compile", "fit_compile_amp"}
                                                                    if torch.cuda.is_available() else set())
    assert set(saved["pipelines"]) == expected_pipelines
    for figures in saved["pipelines"].values():
        assert figures["images_per_s"] > 0 and figures["seconds_per_epoch"] > 0
    assert {"fit_over_bare", "fit_over_dataloader"} <= set(saved["ratios"])
    assert all(v > 0 for v in saved["ratios"].values())
    assert set(saved["notebooks"]) == {"01_a", "02_b"} and all(v > 0 for v in saved["notebooks"].values())
    assert saved["course_seconds"] == pytest.approx(sum(saved["notebooks"].values())) and saved["notebook_errors"] == {}
    assert {"start", "after_pipelines", "after_notebooks"} == set(saved["load"])
    assert saved["images"] == 300 and saved["machine"]["cpu_count"] > 0
    assert {p.name: p.read_bytes() for p in tiny_notebooks.iterdir()} == before  # executed in memory only

    with open(out / "bench.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and set(rows[0]) == {"section", "name", "metric", "value", "unit"}
    numeric = [r for r in rows if r["section"] in ("pipeline", "ratio", "notebook", "course")]
    assert {r["section"] for r in numeric} == {"pipeline", "ratio", "notebook", "course"}
    assert all(float(r["value"]) > 0 for r in numeric)


def test_bench_skips_notebooks_on_request(tmp_path):
    report = bench.main(["--images", "200", "--epochs", "1", "--skip-notebooks", "--out", str(tmp_path)],
                        model_factory=tiny_model, loss_fn=tiny_loss)
    assert "notebooks" not in report and "course_seconds" not in report
    assert (tmp_path / "bench.csv").exists()


def test_the_benchmark_vae_is_notebook_05s_model_and_loss():
    torch.manual_seed(0)
    model = vae_model.VAE()
    sizes = [tuple(p.shape) for p in model.parameters() if p.ndim == 2]
    assert sorted(sizes) == sorted([(400, 784), (20, 400), (20, 400), (400, 20), (784, 400)])
    x = torch.rand(5, 784).double()
    model = model.double()
    torch.manual_seed(1)
    loss = vae_model.negative_elbo(model, (x,))
    torch.manual_seed(1)  # the same eps: the closed form from torch.distributions
    logits, mu, logvar = model(x)
    d = torch.distributions
    recon = (torch.nn.functional.softplus(logits) - x * logits).sum(1)  # -log Bernoulli(x; sigmoid(logits))
    kl = d.kl_divergence(d.Normal(mu, (0.5 * logvar).exp()), d.Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(loss, (recon + kl).mean(), rtol=1e-12)


def test_a_failing_notebook_is_timed_and_reported(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise ValueError('full MNIST check failed')")])
    nbformat.write(nb, folder / "05_x.ipynb")
    errors: dict[str, str] = {}
    seconds = bench.time_notebooks(folder, errors=errors)
    assert seconds["05_x"] > 0
    assert "full MNIST check failed" in errors["05_x"]
