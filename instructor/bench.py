"""Benchmark (not a timed test): how fast the course trains and runs, on this machine, in one run.

    python -m instructor.bench                      # pipelines + every solution notebook; figures in build/bench/
    python -m instructor.bench --skip-notebooks     # only the training pipelines (about a minute on a 2-core CPU)
    python -m instructor.bench --images 60000 --epochs 5 --out build/bench/gpu

It measures images/s of one training epoch of the 784-400-20 VAE (batch 128, Adam) fed five ways:
  bare_steps      the training steps on pre-sliced batches: the model's own compute, the limit `fit` can reach;
  fit             `utils.train.fit`, default options (data resident in one tensor, shuffled index batches);
  dataloader_pil  the classic reference pipeline: uint8 image -> PIL -> ToTensor -> DataLoader (shuffled);
  fit_compile     fit(compile=True), only when CUDA is present (CUDA graphs, fused Adam);
  fit_compile_amp fit(compile=True, amp=True), only when CUDA is present (bfloat16 forward pass).
The pipelines take turns epoch by epoch, so a change in the machine's load affects them all alike; each figure is
the median epoch after one warm-up epoch (which also absorbs compile time). Then it executes each notebook in
solutions/ top to bottom with nbclient (an in-memory copy: solutions/ is never written) and times it, kernel start
included. The load average is recorded with every section: on a shared machine, compare figures taken at low load.

The VAE and its loss are read from the instructor notebook solutions/05_vae.ipynb (they are notebook 05's answers,
so utils does not define them); in a student bundle without solutions/, call `run_pipelines` with a model factory.
Writes bench.json and bench.csv (one row per figure: section, name, metric, value, unit) to --out.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from instructor import vae_model
from utils import data, train

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
REFERENCE_DEFINITIONS = ("reparameterize", "negative_elbo", "VAE")  # what the bench takes from the notebook
DEFAULT_OUT = ROOT / "build" / "bench"
BATCH_SIZE = 128
CPU_IMAGES, CUDA_IMAGES = 4000, 60_000  # the offline training set; on a GPU, tiled to a full MNIST epoch
TARGETS = {  # the course's performance targets (README, Performance)
    "fit_over_bare": 0.90,  # fit within 10% of the bare training steps
    "fit_over_dataloader": 1.8,  # CPU: fit at least 1.8x the DataLoader pipeline
    "fit_compile_over_dataloader": 15.0,  # GPU: the fast mode at least 15x the DataLoader pipeline
    "notebook_seconds": 90.0,  # each notebook, top to bottom
    "course_seconds": 300.0,  # the whole course
}

ModelFactory = Callable[[], nn.Module]


# --------------------------------------------------------------------------------------------
# The pipelines
# --------------------------------------------------------------------------------------------
class PILDigits(Dataset):
    """The reference pipeline's data set (torchvision's MNIST + ToTensor, re-implemented: torchvision is not needed).

    Each item: uint8 tensor -> PIL image -> NumPy copy -> (1, 28, 28) float tensor / 255, and its integer label.
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


def time_interleaved(runs: dict[str, Callable[[], None]], epochs: int) -> dict[str, list[float]]:
    """Seconds of each epoch of each run, after one warm-up epoch each; the runs take turns epoch by epoch."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for fn in runs.values():
        fn()  # warm-up (and compile time, for the compiled pipelines)
    for _ in range(epochs):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def benchmark_images(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """n offline training digits, (n, 784) in [0, 1], with labels; the 4,000 are repeated when n is larger."""
    x, y = data.load_mnist(split="train", flatten=True)
    reps = math.ceil(n / len(x))
    return x.repeat(reps, 1)[:n].to(device), y.repeat(reps)[:n].to(device)


def run_pipelines(
    model_factory: ModelFactory,
    loss_fn: train.LossFn,
    *,
    images: int,
    epochs: int = 5,
    batch_size: int = BATCH_SIZE,
    device: torch.device | None = None,
    fast: bool | None = None,
) -> dict[str, dict[str, float]]:
    """Time one epoch of each pipeline (see the module docstring); {name: {"seconds_per_epoch", "images_per_s"}}.

    model_factory() builds a fresh model per pipeline (seeded alike); loss_fn(model, (x,)) is its mean loss.
    fast: include the CUDA pipelines (fit_compile, fit_compile_amp); default: when the device is CUDA.
    """
    device = device or train.get_device()
    fast = device.type == "cuda" if fast is None else fast
    cuda = device.type == "cuda"
    x, y = benchmark_images(images, device)

    def fresh(fused: bool = False) -> tuple[nn.Module, torch.optim.Optimizer]:
        train.seed_everything(0)
        model = model_factory().to(device)
        return model, torch.optim.Adam(model.parameters(), lr=1e-3, fused=True if fused else None)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    bare_model, bare_opt = fresh()
    batches = [(x[i:i + batch_size],) for i in range(0, images, batch_size)]

    def bare_steps() -> None:
        for batch in batches:
            loss = loss_fn(bare_model, batch)
            bare_opt.zero_grad(set_to_none=True)
            loss.backward()
            bare_opt.step()
        sync()

    def fit_epoch(options: dict[str, bool], fused: bool = False) -> Callable[[], None]:
        model, opt = fresh(fused)
        epoch = iter(range(1_000_000))  # a new shuffle each epoch, as in a real run

        def run() -> None:
            train.fit(model, loss_fn, x, epochs=1, batch_size=batch_size, optimizer=opt, seed=next(epoch),
                      progress=False, **options)  # fit ends each epoch with .item(): synchronized

        return run

    loader_model, loader_opt = fresh()
    images_uint8 = (x.reshape(images, data.IMAGE_SIDE, data.IMAGE_SIDE).cpu() * 255).round().to(torch.uint8)
    loader_options = {"num_workers": 1, "pin_memory": True} if cuda else {}  # as the reference example does on CUDA
    loader = DataLoader(PILDigits(images_uint8, y.cpu()), batch_size=batch_size, shuffle=True, **loader_options)

    def dataloader_pil() -> None:
        for xb, _ in loader:
            loss = loss_fn(loader_model, (xb.to(device).reshape(len(xb), data.IMAGE_PIXELS),))
            loader_opt.zero_grad(set_to_none=True)
            loss.backward()
            loader_opt.step()
        sync()

    runs = {"bare_steps": bare_steps, "fit": fit_epoch({}), "dataloader_pil": dataloader_pil}
    if fast:
        runs["fit_compile"] = fit_epoch({"compile": True}, fused=True)
        runs["fit_compile_amp"] = fit_epoch({"compile": True, "amp": True}, fused=True)
    times = time_interleaved(runs, epochs)
    return {name: {"seconds_per_epoch": statistics.median(t), "images_per_s": images / statistics.median(t)}
            for name, t in times.items()}


def pipeline_ratios(pipelines: dict[str, dict[str, float]]) -> dict[str, float]:
    """images/s ratios: fit over the bare steps and over the DataLoader pipeline (and the fast modes', if timed)."""
    speed = {name: p["images_per_s"] for name, p in pipelines.items()}
    ratios = {"fit_over_bare": speed["fit"] / speed["bare_steps"],
              "fit_over_dataloader": speed["fit"] / speed["dataloader_pil"]}
    for fast in ("fit_compile", "fit_compile_amp"):
        if fast in speed:
            ratios[f"{fast}_over_dataloader"] = speed[fast] / speed["dataloader_pil"]
            ratios[f"{fast}_over_fit"] = speed[fast] / speed["fit"]
    return ratios


# --------------------------------------------------------------------------------------------
# The notebooks
# --------------------------------------------------------------------------------------------
def time_notebooks(folder: Path | str = SOLUTIONS, only: str | None = None, timeout: int = 600,
                   errors: dict[str, str] | None = None) -> dict[str, float]:
    """Seconds to execute each notebook in `folder` top to bottom (kernel start included), {stem: seconds}.

    Each notebook is read into memory and executed there with nbclient, in its folder (so relative paths work);
    the file is never written. The kernel runs on one thread (OMP_NUM_THREADS=1), like `make test`. A notebook
    whose cell raises is timed up to that cell, and its error's last line goes into `errors` {stem: message}.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    errors = {} if errors is None else errors

    folder = Path(folder)
    for name, value in (("OMP_NUM_THREADS", "1"), ("MKL_NUM_THREADS", "1"), ("PYTHONHASHSEED", "0")):
        os.environ.setdefault(name, value)  # the kernel inherits this process's environment
    paths = sorted(p for p in folder.glob("*.ipynb") if only is None or p.stem.startswith(only))
    if not paths:
        raise FileNotFoundError(f"No notebooks in {folder}" + (f" whose name starts with {only!r}." if only else "."))
    seconds = {}
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(folder)}})
        start = time.perf_counter()
        try:
            client.execute()
        except CellExecutionError as exc:  # a failing check: report it, keep timing the others
            errors[path.stem] = str(exc).strip().splitlines()[-1][:300]
            print(f"{path.stem:>28}: FAILED: {errors[path.stem]}", flush=True)
        seconds[path.stem] = time.perf_counter() - start
        print(f"{path.stem:>28}: {seconds[path.stem]:6.1f} s   (load {load_average()})", flush=True)
    return seconds


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------
def load_average() -> str:
    """The 1, 5 and 15-minute load averages, e.g. '0.12 0.30 0.41' ('n/a' where the OS has none)."""
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def machine() -> dict[str, str | int]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = names[0] if names else cpu
    except OSError:
        pass
    info: dict[str, str | int] = {"cpu": cpu, "cpu_count": os.cpu_count() or 0, "torch_threads": torch.get_num_threads(),
                                  "torch": torch.__version__, "python": platform.python_version(),
                                  "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def write_report(report: dict, out: Path | str) -> tuple[Path, Path]:
    """Write report as out/bench.json and out/bench.csv (section, name, metric, value, unit); returns both paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = out / "bench.json", out / "bench.csv"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    rows = [("machine", key, "info", value, "") for key, value in report["machine"].items()]
    rows += [("run", key, "info", report[key], "") for key in ("date", "device", "images", "batch_size", "epochs")]
    for name, figures in report["pipelines"].items():
        rows.append(("pipeline", name, "images_per_s", f"{figures['images_per_s']:.1f}", "images/s"))
        rows.append(("pipeline", name, "seconds_per_epoch", f"{figures['seconds_per_epoch']:.4f}", "s"))
    rows += [("ratio", name, "ratio", f"{value:.3f}", "x") for name, value in report["ratios"].items()]
    rows += [("notebook", name, "seconds", f"{value:.1f}", "s") for name, value in report.get("notebooks", {}).items()]
    rows += [("notebook_error", name, "error", message, "") for name, message in report.get("notebook_errors", {}).items()]
    if "course_seconds" in report:
        rows.append(("course", "all notebooks", "seconds", f"{report['course_seconds']:.1f}", "s"))
    rows += [("load", when, "loadavg_1_5_15", value, "") for when, value in report["load"].items()]
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("section", "name", "metric", "value", "unit"))
        writer.writerows(rows)
    return json_path, csv_path


def main(argv: list[str] | None = None, model_factory: ModelFactory | None = None,
         loss_fn: train.LossFn | None = None) -> dict:
    """Run the benchmark from the command line; returns the report (also written to --out)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, help=f"images per epoch (default {CPU_IMAGES} on a CPU, {CUDA_IMAGES} on CUDA)")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per pipeline, after one warm-up (default 5)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--skip-notebooks", action="store_true", help="do not time the solution notebooks")
    parser.add_argument("--only", metavar="PREFIX", help="time only the notebooks whose name starts with PREFIX")
    parser.add_argument("--notebooks", type=Path, default=SOLUTIONS, help="folder of notebooks to time (default solutions/)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for bench.json and bench.csv (default build/bench)")
    args = parser.parse_args(argv)

    if model_factory is None or loss_fn is None:
        model_factory, loss_fn = vae_model.VAE, vae_model.negative_elbo
    train.seed_everything(0)  # one thread unless $VAE_COURSE_THREADS says otherwise
    device = train.get_device()
    images = args.images or (CUDA_IMAGES if device.type == "cuda" else CPU_IMAGES)
    report: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "device": str(device),
                    "machine": machine(), "images": images, "batch_size": args.batch_size, "epochs": args.epochs,
                    "targets": TARGETS, "load": {"start": load_average()}}
    print(f"device {device}, {report['machine']['cpu']}, {images} images per epoch, batch {args.batch_size}, "
          f"load {report['load']['start']}", flush=True)

    report["pipelines"] = run_pipelines(model_factory, loss_fn, images=images, epochs=args.epochs,
                                        batch_size=args.batch_size, device=device)
    report["ratios"] = pipeline_ratios(report["pipelines"])
    report["load"]["after_pipelines"] = load_average()
    for name, figures in report["pipelines"].items():
        print(f"{name:>16}: {figures['seconds_per_epoch']:7.3f} s/epoch  {figures['images_per_s']:9.0f} images/s")
    for name, value in report["ratios"].items():
        target = TARGETS.get(name)
        print(f"{name:>28}: {value:6.2f}" + (f"   (target >= {target})" if target else ""))
    print(f"load after the pipelines: {report['load']['after_pipelines']}", flush=True)

    if not args.skip_notebooks:
        report["notebook_errors"] = {}
        report["notebooks"] = time_notebooks(args.notebooks, only=args.only, errors=report["notebook_errors"])
        report["course_seconds"] = sum(report["notebooks"].values())
        report["load"]["after_notebooks"] = load_average()
        print(f"{'whole course':>28}: {report['course_seconds']:6.1f} s   (target <= {TARGETS['course_seconds']:.0f} s; "
              f"each notebook <= {TARGETS['notebook_seconds']:.0f} s)")
    json_path, csv_path = write_report(report, args.out)
    print(f"wrote {json_path} and {csv_path}")
    if report.get("notebook_errors"):
        print("notebooks that raised: " + ", ".join(report["notebook_errors"]))
    return report


if __name__ == "__main__":
    main()
