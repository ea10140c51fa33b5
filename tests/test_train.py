"""Device choice, seeding, the training loop and checkpoints."""

import pytest
import torch
from torch import nn

from utils import cuda_speedups, train


def regression_problem(n=512, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=gen)
    w = torch.tensor([[1.5], [-2.0], [0.7]])
    y = x @ w + 0.3 + 0.05 * torch.randn(n, 1, generator=gen)
    return x, y


def mse(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def test_fit_lowers_loss_and_returns_history():
    train.seed_everything(0)
    x, y = regression_problem()
    model = nn.Linear(3, 1)
    before = train.evaluate(model, mse, (x, y))
    history = train.fit(model, mse, (x[:400], y[:400]), eval_data=(x[400:], y[400:]), epochs=30, lr=0.05,
                        batch_size=64, progress=False)
    assert set(history) == {"train_loss", "eval_loss", "seconds", "cpu_seconds", "epoch_seconds"}
    assert len(history["train_loss"]) == len(history["eval_loss"]) == len(history["seconds"]) == 30
    assert all(c > 0 for c in history["cpu_seconds"])
    # The whole epoch (what the progress bar times) includes the evaluation after the training steps.
    assert all(e >= t for e, t in zip(history["epoch_seconds"], history["seconds"], strict=True))
    assert all(isinstance(v, float) for v in history["train_loss"])  # plain data, not tensors
    # Noise variance is 0.05**2 = 0.0025: a fitted linear model gets close to it; the untrained one is far off.
    assert before > 1.0
    assert history["eval_loss"][-1] < 0.01
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_fit_records_metrics_on_both_splits():
    train.seed_everything(0)
    x, y = regression_problem()
    model = nn.Linear(3, 1)
    mae = {"abs_error": lambda m, b: (m(b[0]) - b[1]).abs().mean()}
    history = train.fit(model, mse, (x[:400], y[:400]), eval_data=(x[400:], y[400:]), epochs=3, progress=False, metrics=mae)
    assert len(history["train_abs_error"]) == len(history["eval_abs_error"]) == 3
    assert history["eval_abs_error"][-1] == pytest.approx(train.evaluate(model, mae["abs_error"], (x[400:], y[400:])))


def test_fit_is_deterministic_for_a_seed():
    x, y = regression_problem()
    results = []
    for _ in range(2):
        train.seed_everything(3)
        model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
        results.append(train.fit(model, mse, (x, y), epochs=3, seed=3, progress=False)["train_loss"])
    assert results[0] == results[1]


def test_fit_accepts_a_single_tensor_and_clips_gradients():
    train.seed_everything(0)
    x = torch.randn(256, 4)
    model = nn.Linear(4, 4)
    history = train.fit(model, lambda m, b: ((m(b[0]) - b[0]) ** 2).mean(), x, epochs=5, clip_grad=0.1,
                        progress=False)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert "eval_loss" not in history


def test_shuffled_batches_cover_every_row_once():
    x = torch.arange(10)
    batches = list(train.iterate_batches((x,), 4, torch.Generator().manual_seed(0)))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat([b[0] for b in batches]).tolist()) == list(range(10))


def test_device_override(monkeypatch):
    monkeypatch.setenv(train.DEVICE_ENV, "cpu")
    assert train.get_device() == torch.device("cpu")
    monkeypatch.delenv(train.DEVICE_ENV)
    assert train.get_device().type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        monkeypatch.setenv(train.DEVICE_ENV, "cuda")
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            train.get_device()


def test_seed_everything_sets_threads_and_reproduces(monkeypatch):
    monkeypatch.delenv(train.THREADS_ENV, raising=False)
    train.seed_everything(7)
    a = torch.randn(3)
    assert torch.get_num_threads() == 1
    train.seed_everything(7)
    assert torch.equal(a, torch.randn(3))


def noisy_mse(model, batch):
    """MSE plus a draw from the global RNG: a loss that also proves fit consumes random numbers like a plain loop."""
    x, y = batch
    pred = model(x)
    return ((pred + 0.1 * torch.randn_like(pred) - y) ** 2).mean()


def test_default_fit_is_bit_identical_to_a_plain_loop(monkeypatch):
    """The default path (no amp, no compile) is exactly the textbook loop: same weights and losses, bit for bit."""
    monkeypatch.delenv(train.THREADS_ENV, raising=False)
    x, y = regression_problem(n=300)
    epochs, batch_size, lr, seed = 3, 64, 1e-2, 11

    train.seed_everything(seed)  # one thread
    model = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))
    history = train.fit(model, noisy_mse, (x, y), epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=False)

    train.seed_everything(seed)
    reference = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))
    optimizer = torch.optim.Adam(reference.parameters(), lr=lr)
    order_rng = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        order, total = torch.randperm(len(x), generator=order_rng), torch.zeros(())
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            loss = noisy_mse(reference, (x[idx], y[idx]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(idx)
        losses.append(total.item() / len(x))

    assert torch.get_num_threads() == 1
    assert history["train_loss"] == losses
    for got, expected in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(got, expected)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
@pytest.mark.parametrize("options", [{"amp": True}, {"compile": True}, {"amp": True, "compile": True}])
def test_gpu_options_are_rejected_on_the_cpu(options):
    x, y = regression_problem(n=64)
    model = nn.Linear(3, 1)
    before = [p.detach().clone() for p in model.parameters()]
    named = ", ".join(f"{name}=True" for name in options)
    with pytest.raises(ValueError, match=rf"fit\({named}\) needs the data on a CUDA GPU, but it is on cpu"):
        train.fit(model, mse, (x, y), epochs=1, progress=False, **options)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # nothing was trained


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*script_method.*:DeprecationWarning")  # from torch.compile's own imports
def test_compiled_loss_traces_and_matches_on_the_cpu():
    """compile_loss's graphs (forward and backward, traced by AOTAutograd) give the uncompiled loss and gradients.

    On CUDA fit(compile=True) also generates kernels and CUDA graphs (backend 'inductor'); that part needs a GPU.
    """
    assert callable(torch.compiler.cudagraph_mark_step_begin)  # what fit(compile=True) calls before each step
    x, y = regression_problem(n=96)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    compiled = cuda_speedups.compile_loss(mse, backend="aot_eager")
    for n in (64, 32):  # a full batch and the smaller last one: two static-shape graphs
        batch = (x[:n], y[:n])
        loss = compiled(model, batch)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        expected_loss = mse(model, batch)
        expected_grads = torch.autograd.grad(expected_loss, list(model.parameters()))
        assert torch.allclose(loss, expected_loss, rtol=1e-6, atol=1e-7)
        assert all(torch.allclose(g, e, rtol=1e-5, atol=1e-7) for g, e in zip(grads, expected_grads, strict=True))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*script_method.*:DeprecationWarning")  # from torch.compile's own imports
def test_fit_compile_path_runs_on_the_cpu_with_a_tracing_backend(monkeypatch):
    """fit(compile=True)'s wiring (compiled loss, step marks, fused Adam) on a CPU, with the CUDA-only guard lifted and
    the 'aot_eager' backend instead of CUDA graphs: the losses follow the default run closely."""
    x, y = regression_problem(n=200)
    histories = []
    for compile_ in (False, True):
        train.seed_everything(2)
        model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
        if compile_:
            monkeypatch.setattr(cuda_speedups, "check_cuda_options", lambda device, **options: None)
            monkeypatch.setattr(cuda_speedups, "compile_loss",
                                lambda fn: torch.compile(fn, backend="aot_eager", dynamic=False))
        histories.append(train.fit(model, mse, (x, y), epochs=3, batch_size=64, lr=1e-2, seed=2, progress=False,
                                   compile=compile_)["train_loss"])
    assert histories[1] == pytest.approx(histories[0], rel=1e-4)


def test_fit_says_what_it_trains_at_once_when_showing_progress(capsys):
    x, y = regression_problem(n=100)
    train.fit(nn.Linear(3, 1), mse, (x, y), epochs=2, batch_size=50)
    assert capsys.readouterr().out.startswith("training Linear: 2 epochs of 100 examples, batch 50\n")
    train.fit(nn.Linear(3, 1), mse, (x, y), epochs=2, batch_size=50, progress=False)
    assert capsys.readouterr().out == ""
