"""Notebook 03's check cells pass the solution and fail, with a useful message, on typical wrong answers.

The checks run on the notebook's own data and model (PPCA on the offline MNIST set), but on 200 held-out images and
without the non-linear decoder's training, so the whole file stays fast. Also tests utils/amortized_demo.py.
"""

import functools
import math

import matplotlib
import pytest
import torch
from torch import nn

from tests import nbtools
from utils import amortized_demo

matplotlib.use("Agg")

N_SMALL = 200


def cell(nb, cell_id):
    for c in nb.cells:
        if c.get("id") == cell_id:
            return c.source
    raise KeyError(cell_id)


def run(source, ns):
    error = nbtools.run_source(source, ns)
    assert error is None, repr(error)


@pytest.fixture(scope="module")
def nb():
    return nbtools.load("03_amortized_inference")


@pytest.fixture(scope="module")
def base(nb):
    """The notebook's given cells up to the linear model, plus the solutions of every exercise."""
    ns = {}
    for cell_id in ("nb03-setup", "nb03-data", "nb03-ppca", "nb03-kl", "nb03-linear-elbo", "nb03-per-point",
                    "nb03-encoder", "nb03-tradeoff", "nb03-semi"):
        run(cell(nb, cell_id), ns)
    ns["PER_POINT_STEPS"], ns["PER_POINT_LR"] = 300, 0.3
    ns["elbo_linear"] = functools.partial(ns["linear_elbo"], W=ns["W_dev"], b=ns["b_dev"], sigma2=ns["sigma2_dev"])
    return ns


def small(base, **overrides):
    """A copy of the namespace whose held-out set is its first N_SMALL images, with synthetic non-linear results
    (only the linear model's numbers are exact; the non-linear parts of the checks are given passing values)."""
    ns = dict(base)
    ns["x_test"] = base["x_test"][:N_SMALL]
    ns["x_test64"] = base["x_test64"][:N_SMALL]
    ns["post_mean_test"] = base["post_mean_test"][:N_SMALL]
    ns["log_px_test"] = base["log_px_test"][:N_SMALL]
    gen = torch.Generator().manual_seed(0)
    noise = 50 * torch.randn(N_SMALL, generator=gen, dtype=torch.float64)
    ns["elbo_pp_nl_test"] = 280 + noise - noise.mean()  # the reference solution's mean is 279.6
    ns["elbo_vae_test"] = ns["elbo_pp_nl_test"] - 20 - torch.rand(N_SMALL, generator=gen, dtype=torch.float64)
    ns["elbo_enc_nl_test"] = ns["elbo_vae_test"] + 1
    ns["elbo_prior_nl_test"] = ns["elbo_pp_nl_test"] - 600
    ns.update(overrides)
    return ns


def linear_run(ns, per_point_inference):
    """The linear part of the notebook's run cell for Exercise 3.1b, on ns's held-out images."""
    counter = amortized_demo.CallCounter(ns["elbo_linear"])
    torch.manual_seed(0)
    seconds, (mu, logvar) = amortized_demo.timed(lambda: per_point_inference(
        counter, ns["x_test"], ns["LATENT_DIM"], steps=ns["PER_POINT_STEPS"], lr=ns["PER_POINT_LR"]))
    elbo = ns["elbo_linear"](ns["x_test"], mu, logvar).detach().cpu().double()
    ns.update(linear_counter=counter, seconds_pp_linear=seconds, mu_pp_lin_test=mu, logvar_pp_lin_test=logvar,
              elbo_pp_lin_test=elbo, gap_pp_lin_test=ns["log_px_test"] - elbo, per_point_inference=per_point_inference)
    return ns


def error_of(nb, grade_id, ns):
    return nbtools.run_source(nbtools.cell_by_grade_id(nb, grade_id), ns)


def assert_fails(error, says):
    assert isinstance(error, AssertionError) and says in str(error), error


@pytest.fixture(scope="module")
def solved(base):
    return linear_run(small(base), base["per_point_inference"])


# --- wrong answers -----------------------------------------------------------------------------------------------
def elbo_parts(x, mu, logvar, W, b, sigma2):
    residual = x - b - mu @ W.T
    const = -0.5 * x.shape[-1] * torch.log(2 * math.pi * sigma2)
    return residual, const, (W * W).sum(0)


def kl(mu, logvar):
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(-1)


def elbo_kl_added(x, mu, logvar, W, b, sigma2):
    r, c, w2 = elbo_parts(x, mu, logvar, W, b, sigma2)
    return c - 0.5 * ((r * r).sum(-1) + (logvar.exp() * w2).sum(-1)) / sigma2 + kl(mu, logvar)


def elbo_no_spread(x, mu, logvar, W, b, sigma2):
    r, c, _ = elbo_parts(x, mu, logvar, W, b, sigma2)
    return c - 0.5 * (r * r).sum(-1) / sigma2 - kl(mu, logvar)


def elbo_logvar_as_var(x, mu, logvar, W, b, sigma2):
    r, c, w2 = elbo_parts(x, mu, logvar, W, b, sigma2)
    return c - 0.5 * ((r * r).sum(-1) + (logvar * w2).sum(-1)) / sigma2 - kl(mu, logvar)


def elbo_no_constant(x, mu, logvar, W, b, sigma2):
    r, _, w2 = elbo_parts(x, mu, logvar, W, b, sigma2)
    return -0.5 * ((r * r).sum(-1) + (logvar.exp() * w2).sum(-1)) / sigma2 - kl(mu, logvar)


def elbo_constant_with_sigma(x, mu, logvar, W, b, sigma2):  # log(2 pi sigma) where log(2 pi sigma^2) belongs
    r, c, w2 = elbo_parts(x, mu, logvar, W, b, sigma2.sqrt())
    return c - 0.5 * ((r * r).sum(-1) + (logvar.exp() * w2).sum(-1)) / sigma2 - kl(mu, logvar)


def elbo_divided_by_sigma(x, mu, logvar, W, b, sigma2):  # ||.||^2 / (2 sigma) where / (2 sigma^2) belongs
    r, c, w2 = elbo_parts(x, mu, logvar, W, b, sigma2)
    return c - 0.5 * ((r * r).sum(-1) + (logvar.exp() * w2).sum(-1)) / sigma2.sqrt() - kl(mu, logvar)


def elbo_summed(x, mu, logvar, W, b, sigma2):
    return elbo_no_constant(x, mu, logvar, W, b, sigma2).sum() - 0.5 * x.numel() * torch.log(2 * math.pi * sigma2)


def make_per_point(*, lr_scale=1.0, sign=1.0, evals_per_step=1, optimize_logvar=True, use_init=True, clone_init=True,
                   step_schedule=True):
    def per_point_inference(elbo_fn, x, latent_dim, *, steps, lr, init=None):
        if init is None or not use_init:
            mu, logvar = torch.zeros(len(x), latent_dim), torch.zeros(len(x), latent_dim)
        else:
            mu, logvar = (t.detach().clone() for t in init) if clone_init else (t.detach() for t in init)
        mu.requires_grad_(True)
        logvar.requires_grad_(optimize_logvar)
        optimizer = torch.optim.Adam([mu, logvar] if optimize_logvar else [mu], lr=lr * lr_scale)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
        for _ in range(steps):
            for _ in range(evals_per_step - 1):
                elbo_fn(x, mu, logvar)  # e.g. an extra evaluation for logging
            loss = -sign * elbo_fn(x, mu, logvar).sum()
            optimizer.zero_grad()
            loss.backward()
            with torch.no_grad():
                optimizer.step()
            if step_schedule:
                schedule.step()
        return mu.detach(), logvar.detach()
    return per_point_inference


# --- Exercise 3.1a --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("grade_id", ["ex3_1a_visible", "ex3_1a_hidden"])
def test_linear_elbo_solution_passes(nb, base, grade_id):
    assert error_of(nb, grade_id, dict(base)) is None


@pytest.mark.parametrize(("wrong", "grade_id", "says"), [
    (elbo_kl_added, "ex3_1a_visible", "the KL term is added instead of subtracted"),
    (elbo_no_spread, "ex3_1a_visible", "the term that depends on Q's variances s_j^2 is missing"),
    (elbo_logvar_as_var, "ex3_1a_visible", "log(s^2) is used where the variance"),
    (elbo_no_constant, "ex3_1a_visible", "off by a constant"),
    (elbo_constant_with_sigma, "ex3_1a_visible", "not the standard deviation sigma"),
    (elbo_divided_by_sigma, "ex3_1a_visible", "divided by the wrong scale"),
    (elbo_summed, "ex3_1a_visible", "expected shape (200,), got ()"),
    (elbo_no_spread, "ex3_1a_hidden", "is too large"),
])
def test_linear_elbo_checks_catch_mistakes(nb, base, wrong, grade_id, says):
    assert_fails(error_of(nb, grade_id, dict(base, linear_elbo=wrong)), says)


def test_linear_elbo_hidden_check_does_not_reveal_values(nb, base):
    error = error_of(nb, "ex3_1a_hidden", dict(base, linear_elbo=elbo_no_spread))
    assert "expected" not in str(error).split("Hint")[0]


# --- Exercise 3.1b --------------------------------------------------------------------------------------------------
def test_per_point_solution_passes(nb, base, solved):
    assert error_of(nb, "ex3_1b_visible", dict(solved)) is None
    assert error_of(nb, "ex3_1b_hidden", dict(base)) is None


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"evals_per_step": 2}, "evaluate elbo_fn once per step"),
    ({"sign": -1.0}, "minimize the loss -sum_i F_i"),
    ({"optimize_logvar": False}, "logvar never moved"),
    ({"lr_scale": 0.05}, "use the lr you are given"),
])
def test_per_point_visible_check_catches_mistakes(nb, base, kwargs, says):
    ns = linear_run(small(base), make_per_point(**kwargs))
    assert_fails(error_of(nb, "ex3_1b_visible", ns), says)


def test_per_point_visible_check_catches_nonlinear_failure(nb, solved):
    ns = dict(solved, elbo_pp_nl_test=solved["elbo_pp_nl_test"] - 5)  # 5 nats under the reference optimum
    assert_fails(error_of(nb, "ex3_1b_visible", ns), "non-linear: mean per-point ELBO")


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"use_init": False}, "starts from init"),
    ({"clone_init": False}, "modified init in place"),
])
def test_per_point_hidden_check_catches_init_mistakes(nb, base, kwargs, says):
    assert_fails(error_of(nb, "ex3_1b_hidden", dict(base, per_point_inference=make_per_point(**kwargs))), says)


# --- Exercise 3.2 ---------------------------------------------------------------------------------------------------
def encoder_namespace(solved, encoder):
    ns = dict(solved)
    x = ns["x_test"]
    with torch.no_grad():
        q = encoder(x)
        ns["elbo_enc_lin_test"] = ns["elbo_linear"](x, *q).cpu().double()
        ns["elbo_prior_lin_test"] = ns["elbo_linear"](x, torch.zeros_like(q[0]), torch.zeros_like(q[1])).cpu().double()
    ns["q_lin_test"] = q
    ns["n_forward"], _ = amortized_demo.count_forward_passes(encoder, lambda: encoder(x))
    ns["seconds_enc_linear"] = amortized_demo.best_time(lambda: encoder(x), repeats=5)
    return ns


def stand_in_encoder(W: torch.Tensor, b: torch.Tensor, sigma2: float) -> nn.Module:
    """A stand-in for a well-trained encoder (the notebook trains the real one, under nbval): the exact posterior map
    of the linear model x = Wz + b + noise(σ²), an affine layer, slightly off (means +0.3 posterior std. devs,
    log-variances +0.2), so that its amortization gap is small but positive (~0.45 nats) as after training."""
    d = W.shape[1]
    M_inv = torch.linalg.inv(W.T @ W + sigma2 * torch.eye(d, dtype=W.dtype))
    post_var = (sigma2 * M_inv).diagonal()
    layer = nn.Linear(W.shape[0], 2 * d)
    with torch.no_grad():
        layer.weight.copy_(torch.cat([M_inv @ W.T, torch.zeros(d, W.shape[0], dtype=W.dtype)]).float())
        layer.bias.copy_(torch.cat([-(M_inv @ W.T @ b) + 0.3 * post_var.sqrt(), post_var.log() + 0.2]).float())
    return AffineEncoder(layer).requires_grad_(False)


@pytest.fixture(scope="module")
def trained_encoder(base):
    return stand_in_encoder(base["W"], base["b"], base["sigma2"])


class AffineEncoder(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        mu, logvar = self.layer(x).chunk(2, dim=-1)
        return mu, logvar


class ReluOutputEncoder(nn.Module):
    def __init__(self, data_dim, hidden_dim, latent_dim):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(data_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 2 * latent_dim), nn.ReLU())

    def forward(self, x):
        mu, logvar = self.net(x).chunk(2, dim=-1)
        return mu, logvar


def test_encoder_solution_passes(nb, base, solved, trained_encoder):
    assert error_of(nb, "ex3_2_visible", encoder_namespace(solved, trained_encoder)) is None
    assert error_of(nb, "ex3_2_hidden", dict(base)) is None


def with_encoder_class(nb, ns, encoder_cls):
    """ns with the notebook's train_encoder re-defined in it, so that it builds `encoder_cls`."""
    ns = dict(ns)
    run(cell(nb, "nb03-encoder"), ns)
    ns["Encoder"] = encoder_cls
    return ns


def train_with(nb, ns, epochs, encoder_cls=None):
    ns = with_encoder_class(nb, ns, encoder_cls or ns["Encoder"])
    return ns["train_encoder"](ns["elbo_linear"], ns["x_train"][:1000], ns["LATENT_DIM"], epochs=epochs)


def test_encoder_check_catches_relu_output(nb, base, solved):
    encoder, _ = train_with(nb, base, epochs=2, encoder_cls=ReluOutputEncoder)
    assert_fails(error_of(nb, "ex3_2_visible", encoder_namespace(solved, encoder)), "logvar is never negative")
    assert_fails(error_of(nb, "ex3_2_hidden", with_encoder_class(nb, base, ReluOutputEncoder)),
                 "amortization gap / prior's gap")


def test_encoder_check_catches_wrong_sign(nb, base, solved):
    def wrong_sign_elbo(x, mu, logvar):  # the student maximizes -ELBO (loss = +ELBO)
        return -base["elbo_linear"](x, mu, logvar)

    encoder, _ = train_with(nb, dict(base, elbo_linear=wrong_sign_elbo), epochs=1)
    assert_fails(error_of(nb, "ex3_2_visible", encoder_namespace(solved, encoder)), "the encoder is worse than Q = p(z)")


def test_encoder_check_catches_nonlinear_gap(nb, solved, trained_encoder):
    ns = encoder_namespace(solved, trained_encoder)
    ns["elbo_enc_nl_test"] = ns["elbo_pp_nl_test"] - 100  # closes only 5/6 of the prior's 600-nat gap
    assert_fails(error_of(nb, "ex3_2_visible", ns), "fraction of the prior's gap the encoder closes")


# --- Exercise 3.3 ---------------------------------------------------------------------------------------------------
def make_row(*, gap_sign=1, per_point_factor=2, count_bias=True, as_tensor=False, nan_when_unknown=True,
             approx_zero=False):
    def tradeoff_row(elbo_per_point, elbo_encoder, n_points, latent_dim, encoder, log_px=None):
        row = {"elbo_per_point": elbo_per_point.mean(), "elbo_encoder": elbo_encoder.mean(),
               "amortization_gap": gap_sign * (elbo_per_point - elbo_encoder).mean(),
               "approximation_gap": 0.0 if approx_zero else (log_px - elbo_per_point).mean() if log_px is not None
               else (float("nan") if nan_when_unknown else 0.0),
               "params_per_point": per_point_factor * latent_dim * n_points,
               "params_encoder": sum(p.numel() for name, p in encoder.named_parameters() if count_bias or "bias" not in name)}
        return row if as_tensor else {k: (v.item() if isinstance(v, torch.Tensor) else v) for k, v in row.items()}
    return tradeoff_row


@pytest.mark.parametrize("grade_id", ["ex3_3_visible", "ex3_3_hidden"])
def test_tradeoff_solution_passes(nb, base, grade_id):
    assert error_of(nb, grade_id, dict(base)) is None


@pytest.mark.parametrize(("kwargs", "grade_id", "says"), [
    ({"gap_sign": -1}, "ex3_3_visible", "per-point ELBO minus encoder ELBO"),
    ({"per_point_factor": 1}, "ex3_3_visible", "2 d numbers for every one"),
    ({"count_bias": False}, "ex3_3_visible", "count the biases too"),
    ({"as_tensor": True}, "ex3_3_visible", "convert with .item()"),
    ({"nan_when_unknown": False}, "ex3_3_hidden", "approximation_gap must be NaN"),
])
def test_tradeoff_checks_catch_mistakes(nb, base, kwargs, grade_id, says):
    assert_fails(error_of(nb, grade_id, dict(base, tradeoff_row=make_row(**kwargs))), says)


# --- Exercise 3.4 ---------------------------------------------------------------------------------------------------
def semi_namespace(solved, encoder, semi_amortized):
    ns = encoder_namespace(solved, encoder)
    ns["K_VALUES"] = [0, 1, 2, 5, 10, 20, 50, 100]
    counter = amortized_demo.CallCounter(ns["elbo_linear"])
    torch.manual_seed(0)
    ns["semi_linear"] = semi_amortized(encoder, counter, ns["x_test"], ns["K_VALUES"], lr=0.02)
    ns["semi_amortized"] = semi_amortized  # the check cell tests the function itself too
    ns["semi_counter"] = counter
    with torch.no_grad():
        ns["gap_semi_linear"] = [(ns["elbo_pp_lin_test"] - ns["elbo_linear"](ns["x_test"], *ns["semi_linear"][k])
                                  .cpu().double()).mean().item() for k in ns["K_VALUES"]]
    return ns


def semi_with(nb, base, per_point_inference):
    ns = dict(base, per_point_inference=per_point_inference)
    run(cell(nb, "nb03-semi"), ns)
    return ns["semi_amortized"]


def test_semi_amortized_solution_passes(nb, base, solved, trained_encoder):
    assert error_of(nb, "ex3_4_visible", semi_namespace(solved, trained_encoder, base["semi_amortized"])) is None
    assert error_of(nb, "ex3_4_hidden", dict(base)) is None


def test_semi_amortized_checks_catch_restart_from_prior(nb, base, solved, trained_encoder):
    from_prior = semi_with(nb, base, make_per_point(use_init=False))
    assert_fails(error_of(nb, "ex3_4_visible", semi_namespace(solved, trained_encoder, from_prior)),
                 "start from the encoder's output")
    assert_fails(error_of(nb, "ex3_4_hidden", dict(base, semi_amortized=from_prior)), "ELBO gain after 3 steps")


def test_semi_amortized_check_catches_step_at_k0(nb, base, solved, trained_encoder):
    def keyed(encoder, elbo_fn, x, ks, *, lr):  # takes one step even for K = 0
        out = base["semi_amortized"](encoder, elbo_fn, x, [max(k, 1) for k in ks], lr=lr)
        return {k: out[max(k, 1)] for k in ks}

    assert_fails(error_of(nb, "ex3_4_visible", semi_namespace(solved, trained_encoder, keyed)),
                 "K = 0 means no step")


# --- #19.3: mistakes that passed every visible check before utils/checks_amortized.py -----------------------------
# Each test fails on the check cells of main before this change (the visible check passed, or named another mistake).
def test_mutant_approximation_gap_hard_coded_to_zero(nb, base):
    always = make_row(approx_zero=True)  # approximation_gap = 0.0, whatever log p(x) says
    assert_fails(error_of(nb, "ex3_3_visible", dict(base, tradeoff_row=always)), "hard-coded to 0")
    when_unknown = make_row(nan_when_unknown=False)  # 0.0 instead of NaN when log p(x) is not known
    assert_fails(error_of(nb, "ex3_3_visible", dict(base, tradeoff_row=when_unknown)), "do not hard-code 0")


def test_mutant_learning_rate_schedule_never_stepped(nb, base):
    ns = linear_run(small(base), make_per_point(step_schedule=False))
    assert_fails(error_of(nb, "ex3_1b_visible", ns), "learning-rate schedule is never stepped")


def test_mutant_initial_values_aliased_instead_of_cloned(nb, base):
    ns = linear_run(small(base), make_per_point(clone_init=False))
    assert_fails(error_of(nb, "ex3_1b_visible", ns), "aliased instead of cloned")


def semi_accumulating(per_point_inference):
    """semi_amortized that refines each K from the previous K's result: its steps accumulate across K."""
    def semi_amortized(encoder, elbo_fn, x, ks, *, lr):
        with torch.no_grad():
            mu, logvar = encoder(x)
        results = {}
        for k in ks:
            if k > 0:
                mu, logvar = per_point_inference(elbo_fn, x, mu.shape[1], steps=k, lr=lr, init=(mu, logvar))
            results[k] = (mu.clone(), logvar.clone())
        return results
    return semi_amortized


def test_mutant_semi_amortized_accumulates_steps_across_k(nb, base, solved, trained_encoder):
    wrong = semi_accumulating(base["per_point_inference"])
    ns = semi_namespace(solved, trained_encoder, wrong)
    assert ns["semi_counter"].calls == sum(ns["K_VALUES"])  # the count of ELBO evaluations cannot see it
    assert_fails(error_of(nb, "ex3_4_visible", ns), "accumulates steps across K")


def test_mutant_semi_amortized_with_aliasing_per_point_inference(nb, base, solved, trained_encoder):
    aliased = semi_with(nb, base, make_per_point(clone_init=False))
    assert_fails(error_of(nb, "ex3_4_visible", semi_namespace(solved, trained_encoder, aliased)),
                 "accumulates steps across K")


# --- utils/amortized_demo.py ----------------------------------------------------------------------------------------
def test_call_counter_and_forward_passes():
    counter = amortized_demo.CallCounter(lambda a, b=1: a + b)
    assert counter(1, b=2) == 3 and counter(0) == 1 and counter.calls == 2
    net = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    calls, out = amortized_demo.count_forward_passes(net, lambda: (net(torch.ones(4, 3)), net(torch.ones(1, 3))))
    assert calls == 2 and out[0].shape == (4, 1)
    assert not net._forward_hooks  # the hook is removed


def test_timing_helpers():
    seconds, result = amortized_demo.timed(lambda: sum(range(1000)))
    assert result == 499500 and 0 <= seconds < 5
    assert 0 <= amortized_demo.best_time(lambda: sum(range(1000)), repeats=3) < 5


def test_format_table():
    text = amortized_demo.format_table([{"a": "x", "b": 1234567, "c": 1.23456}, {"a": "yy", "b": 2, "c": float("nan")}],
                                       ["a", "b", "c"], digits=2)
    lines = text.split("\n")
    assert lines[0].split() == ["a", "b", "c"] and set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["x", "1,234,567", "1.23"] and lines[3].split() == ["yy", "2", "—"]
    assert len({len(line) for line in lines}) == 1  # aligned columns


def test_figures_are_labelled():
    import matplotlib.pyplot as plt

    fig = amortized_demo.elbo_scatter(torch.arange(5.0), torch.arange(5.0) - 1)
    ax = fig.axes[0]
    assert "per-point" in ax.get_xlabel() and "encoder" in ax.get_ylabel() and ax.get_title()
    assert ax.get_legend() is not None
    fig2 = amortized_demo.gap_vs_steps([0, 1, 10], {"a": [3.0, 2.0, 0.5], "b": [1.0, 0.0, -0.1]})
    ax2 = fig2.axes[0]
    assert ax2.get_xscale() == "symlog" and ax2.get_yscale() == "linear"  # a gap <= 0: no log axis
    assert len(ax2.get_lines()) == 2 and ax2.get_xlabel() and ax2.get_title()
    plt.close("all")


def test_pretrained_decoder_loads_checked_and_frozen(tmp_path, monkeypatch):
    decoder = amortized_demo.load_decoder()
    assert sum(p.numel() for p in decoder.parameters()) == 118_800
    assert not any(p.requires_grad for p in decoder.parameters()) and not decoder.training
    out = decoder(torch.zeros(3, 8))
    assert out.shape == (3, 784) and ((out > 0) & (out < 1)).all()
    damaged = tmp_path / "nb03_decoder.npy"
    damaged.write_bytes(amortized_demo.DECODER_FILE.read_bytes()[:-4] + b"\0\0\0\0")
    monkeypatch.setattr(amortized_demo, "DECODER_FILE", damaged)
    with pytest.raises(ValueError, match="is damaged .*git checkout -- utils/datasets"):
        amortized_demo.load_decoder()
    monkeypatch.setattr(amortized_demo, "DECODER_FILE", tmp_path / "missing.npy")
    with pytest.raises(FileNotFoundError, match="restore it"):
        amortized_demo.load_decoder()


def test_gap_vs_epochs_is_labelled():
    import matplotlib.pyplot as plt

    fig = amortized_demo.gap_vs_epochs({"a": [3.0, 2.0, 1.5], "b": [30.0, 21.0, 20.5]})
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    assert len(ax.get_lines()) == 2 and ax.get_legend() is not None
    plt.close("all")
