"""utils/checks_amortized.py: its stored numbers agree with the notebook's fixed inputs, its property tests pass
right answers and name wrong ones. (The notebook's check cells are tested against mutants in test_nb03_checks.py.)"""

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from utils import checks, checks_amortized, data


@pytest.fixture(scope="module")
def ppca():
    """The notebook's PPCA fit (d = 8) and its exact posterior on the first 200 held-out images, float64."""
    x_train, _ = data.load_mnist(split="train", flatten=True)
    x_test, _ = data.load_mnist(split="test", flatten=True)
    x = x_train.double()
    b = x.mean(0)
    values, vectors = torch.linalg.eigh((x - b).T @ (x - b) / len(x))
    values, vectors = values.flip(0), vectors.flip(1)
    s2 = values[8:].mean()
    W = vectors[:, :8] * (values[:8] - s2).sqrt()
    M = W.T @ W + s2 * torch.eye(8, dtype=W.dtype)
    M_inv = torch.linalg.inv(M)
    x64 = x_test.double()[:200]
    r = x64 - b
    r_W = r @ W
    log_px = -0.5 * (784 * math.log(2 * math.pi) + 776 * torch.log(s2) + torch.logdet(M)
                     + ((r * r).sum(-1) - (r_W @ M_inv * r_W).sum(-1)) / s2)
    return {"x": x64, "W": W, "b": b, "s2": s2, "post_mean": r @ W @ M_inv.T, "post_cov": s2 * M_inv,
            "log_px": log_px, "x_all": x_test.double()}


def reference_elbo(x, mu, logvar, W, b, s2, *, kl_sign=-1.0, spread=True, logvar_as_var=False, constant=True):
    """The closed-form ELBO of the linear model (test code: never shipped), with switches for typical mistakes."""
    r = x - b - mu @ W.T
    var = logvar if logvar_as_var else logvar.exp()
    squares = (r * r).sum(-1) + (var * (W * W).sum(0)).sum(-1) * spread
    kl = 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(-1)
    const = -0.5 * x.shape[-1] * torch.log(2 * math.pi * s2) if constant else 0.0
    return const - 0.5 * squares / s2 + kl_sign * kl


def run_linear_check(ppca, fn):
    checks_amortized.linear_elbo(fn, ppca["x"], ppca["post_mean"], ppca["post_cov"], ppca["W"], ppca["b"],
                                 ppca["s2"], ppca["log_px"])


def test_linear_elbo_passes_the_reference(ppca):
    run_linear_check(ppca, reference_elbo)


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"kl_sign": 1.0}, "the KL term is added instead of subtracted"),
    ({"spread": False}, "the term that depends on Q's variances s_j^2 is missing"),
    ({"logvar_as_var": True}, "log(s^2) is used where the variance"),
    ({"constant": False}, "the constant -D/2 log(2 pi sigma^2)"),
])
def test_linear_elbo_stored_offsets_name_the_mistakes(ppca, kwargs, says):
    """The offsets stored in the module are those of the wrong answers on the notebook's inputs (not stale)."""
    with pytest.raises(checks.CheckFailed, match=None) as failure:
        run_linear_check(ppca, lambda *args: reference_elbo(*args, **kwargs))
    assert says in str(failure.value)


def test_linear_elbo_unanswered_raises_not_implemented(ppca):
    def stub(*args):
        raise NotImplementedError("Exercise 3.1")

    with pytest.raises(NotImplementedError):
        run_linear_check(ppca, stub)


def test_gap_at_prior_is_the_stored_value(ppca):
    x = ppca["x_all"]
    zeros = torch.zeros(len(x), 8, dtype=torch.float64)
    r = x - ppca["b"]
    W, s2 = ppca["W"], ppca["s2"]
    M = W.T @ W + s2 * torch.eye(8, dtype=W.dtype)
    r_W = r @ W
    log_px = -0.5 * (784 * math.log(2 * math.pi) + 776 * torch.log(s2) + torch.logdet(M)
                     + ((r * r).sum(-1) - (r_W @ torch.linalg.inv(M) * r_W).sum(-1)) / s2)
    gap = (log_px - reference_elbo(x, zeros, zeros, W, ppca["b"], s2)).mean().item()
    assert gap == pytest.approx(checks_amortized.GAP_AT_PRIOR, abs=0.01)


def per_point(*, step_schedule=True, clone=True, lr_scale=1.0):
    def per_point_inference(elbo_fn, x, latent_dim, *, steps, lr, init=None):
        if init is None:
            mu, logvar = torch.zeros(len(x), latent_dim), torch.zeros(len(x), latent_dim)
        else:
            mu, logvar = (t.detach().clone() if clone else t.detach() for t in init)
        mu.requires_grad_(True)
        logvar.requires_grad_(True)
        optimizer = torch.optim.Adam([mu, logvar], lr=lr * lr_scale)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
        for _ in range(steps):
            loss = -elbo_fn(x, mu, logvar).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step_schedule:
                schedule.step()
        return mu.detach(), logvar.detach()
    return per_point_inference


@pytest.mark.parametrize(("kwargs", "says"), [
    ({}, None),
    ({"step_schedule": False}, "schedule is never stepped"),
    ({"clone": False}, "aliased instead of cloned"),
    ({"lr_scale": 2.0}, "times the distance"),
])
def test_per_point_schedule(kwargs, says):
    fn = per_point(**kwargs)
    if says is None:
        checks_amortized.per_point_schedule(fn)
    else:
        with pytest.raises(checks.CheckFailed) as failure:
            checks_amortized.per_point_schedule(fn)
        assert says in str(failure.value)


def semi(per_point_inference, *, accumulate=False):
    def semi_amortized(encoder, elbo_fn, x, ks, *, lr):
        with torch.no_grad():
            mu, logvar = encoder(x)
        out = {}
        for k in ks:
            if k == 0:
                out[k] = (mu.clone(), logvar.clone())
            else:
                res = per_point_inference(elbo_fn, x, mu.shape[1], steps=k, lr=lr, init=(mu, logvar))
                out[k] = res
                if accumulate:
                    mu, logvar = res
        return out
    return semi_amortized


@pytest.mark.parametrize(("fn", "says"), [
    (semi(per_point()), None),
    (semi(per_point(), accumulate=True), "accumulates steps across K"),
    (semi(per_point(clone=False)), "accumulates steps across K"),
])
def test_semi_amortized_independence(fn, says):
    if says is None:
        checks_amortized.semi_amortized_independence(fn)
    else:
        with pytest.raises(checks.CheckFailed) as failure:
            checks_amortized.semi_amortized_independence(fn)
        assert says in str(failure.value)


def row_fn(approx=None):
    def tradeoff_row(elbo_per_point, elbo_encoder, n_points, latent_dim, encoder, log_px=None):
        gap = float("nan") if log_px is None else (log_px - elbo_per_point).mean().item()
        return {"elbo_per_point": elbo_per_point.mean().item(), "elbo_encoder": elbo_encoder.mean().item(),
                "amortization_gap": (elbo_per_point - elbo_encoder).mean().item(),
                "approximation_gap": gap if approx is None else approx(log_px),
                "params_per_point": 2 * latent_dim * n_points,
                "params_encoder": sum(p.numel() for p in encoder.parameters())}
    return tradeoff_row


def test_tradeoff_row():
    checks_amortized.tradeoff_row(row_fn())
    with pytest.raises(checks.CheckFailed, match="hard-coded to 0"):
        checks_amortized.tradeoff_row(row_fn(lambda log_px: 0.0))
    with pytest.raises(checks.CheckFailed, match="return NaN"):
        checks_amortized.tradeoff_row(row_fn(lambda log_px: 0.0 if log_px is None else 0.6))


def test_module_holds_no_answer():
    """The check module defines no function of an exercise's signature that computes its answer."""
    source = Path(checks_amortized.__file__).read_text()
    for forbidden in ("(W * W).sum(0)", "logvar.exp() - logvar - 1", "kl_divergence", "CosineAnnealingLR(optimizer,"
                      " max", "numel() for p in"):
        assert forbidden not in source, forbidden
    assert isinstance(checks_amortized._ToyEncoder(), nn.Module)
