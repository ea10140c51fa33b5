"""Probes of the hidden tests for 02_latent_variables_elbo (instructor material: never released to students).

The only hidden-test code that enters the student's kernel (`instructor.grading.runner`): each probe builds inputs,
calls the student's functions and returns plain tensors. Nothing here computes an answer: no reference
implementation, no expected value, no table of typical wrong answers; those live in ``judges.py``, which only the
trusted grader imports (and which rebuilds the inputs with the builders below).
"""

from __future__ import annotations

import itertools
import math

import torch

from utils.widgets import LinearGaussian

F64 = torch.float64


def _positive_samples(n: int, seed: int) -> dict[str, torch.Tensor]:
    """The notebook's positive_samples (float64); their exact Jensen gaps are in judges.py."""
    gen = torch.Generator().manual_seed(seed)
    u = 1 - torch.rand(5, n, generator=gen, dtype=F64)
    eps = torch.randn(n, generator=gen, dtype=F64)
    return {
        "exponential": -torch.log(u[0]),
        "uniform": u[1],
        "lognormal": torch.exp(0.3 + 0.8 * eps),
        "gamma3": -torch.log(u[2:5]).sum(0),
        "constant": torch.full((n,), 2.5, dtype=F64),
    }


JENSEN_VISIBLE = (100_000, 21)  # the visible check's n and seed


def probe_jensen_visible(ns: dict) -> dict:
    samples = _positive_samples(*JENSEN_VISIBLE)
    out = {"batch": ns["jensen_gap"](torch.stack(list(samples.values())))}  # (5, n): the check's batch
    out.update({name: ns["jensen_gap"](values) for name, values in samples.items()})
    return out


class _UsesDistributions(RuntimeError):
    pass


def _answered_by_hand(out: dict, fn, *args):
    """fn(*args) with torch.distributions switched off (as utils.checks_elbo.without_distributions does in the check
    cells, written out here so that the probe depends on nothing the kernel could replace); on use, a flag."""
    original = torch.distributions.Distribution.__init__

    def refuse(self, *args, **kwargs):  # noqa: ARG001 - any distribution at all
        raise _UsesDistributions(type(self).__name__)

    torch.distributions.Distribution.__init__ = refuse
    try:
        return fn(*args)
    except _UsesDistributions:
        out["uses_distributions"] = torch.tensor(True)
        return None
    finally:
        torch.distributions.Distribution.__init__ = original


def _jensen_hidden_inputs() -> dict:
    gen = torch.Generator().manual_seed(9121)
    n = 50_000
    scales = torch.tensor([0.2, 0.6, 1.1], dtype=F64)
    batch = torch.exp(0.3 + scales[:, None] * torch.randn(3, n, generator=gen, dtype=F64))  # three log-normals
    chi2 = 2 * (-torch.log(1 - torch.rand(2, n, generator=gen, dtype=F64))).sum(0)  # chi-square, 4 dof = Gamma(2, 2)
    nearly_constant = 3.0 + 1e-3 * torch.rand(n, generator=gen, dtype=F64)
    return {"batch": batch, "scales": scales, "chi2": chi2, "nearly_constant": nearly_constant,
            "constant": torch.full((2, 1000), 1.9, dtype=F64)}


def probe_jensen_hidden(ns: dict) -> dict:
    inputs = _jensen_hidden_inputs()
    return {name: ns["jensen_gap"](inputs[name]) for name in ("batch", "chi2", "nearly_constant", "constant")}


def _gmm_log_likelihood(x, pi, mu, var) -> float:
    """The notebook's given gmm_log_likelihood (not an exercise): the stopping rule of EM needs ℓ(θ_t)."""
    mixture = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(probs=pi),
                                                    torch.distributions.Normal(mu, var.sqrt()))
    return mixture.log_prob(x).sum().item()


def _sample_gmm(n: int, theta, seed: int) -> torch.Tensor:
    """The notebook's sample_gmm (float64): z ~ Categorical(π), then x ~ N(μ_z, σ_z²)."""
    gen = torch.Generator().manual_seed(seed)
    pi, mu, var = (torch.tensor(v, dtype=F64) for v in theta)
    z = torch.multinomial(pi, n, replacement=True, generator=gen)
    return mu[z] + var.sqrt()[z] * torch.randn(n, generator=gen, dtype=F64)


def _init_params(x: torch.Tensor, K: int):
    mu = torch.quantile(x, (torch.arange(K, dtype=x.dtype) + 0.5) / K)
    return torch.full_like(mu, 1 / K), mu, torch.full_like(mu, x.var().item())


EM_MAX_ITER = 300  # a correct EM converges in about 40 iterations here; the cap bounds the data returned


def _em_trace(ns: dict, x: torch.Tensor, K: int, tol: float = 1e-8) -> dict:
    """The notebook's run_em with the student's e_step and m_step; returns every θ_t, Q_t and Σ_n log p(x_n | θ_t).

    The stopping rule needs ℓ(θ_t), computed here; everything the judge checks it recomputes from θ_t and Q_t.
    """
    e_step, m_step = ns["e_step"], ns["m_step"]
    theta = _init_params(x, K)
    thetas, resps, your_log_px, log_lik = [], [], [], []
    for t in range(EM_MAX_ITER):
        resp, log_px = e_step(x, *theta)
        thetas.append(torch.stack([torch.as_tensor(v, dtype=F64) for v in theta]))
        resps.append(resp)
        your_log_px.append(log_px.sum())
        log_lik.append(_gmm_log_likelihood(x, *theta))
        if t > 0 and log_lik[-1] - log_lik[-2] < tol * len(x):
            break
        theta = m_step(x, resp)
    return {"theta": torch.stack(thetas), "resp": torch.stack(resps), "your_log_px": torch.stack(your_log_px)}


X_TINY = [-1.3, 0.2, 2.9, 60.0]  # the visible check's inputs; x = 60 lies far from every component


THETA_TINY = ([0.5, 0.3, 0.2], [-1.0, 0.5, 3.0], [0.4, 1.5, 0.6])


X_M = [-1.3, 0.2, 2.9, 4.0, 0.7]


RESP_M = [[0.9, 0.1], [0.6, 0.4], [0.05, 0.95], [0.0, 1.0], [0.5, 0.5]]


def probe_em_steps_visible(ns: dict) -> dict:
    out: dict = {}
    if _answered_by_hand(out, ns["e_step"], torch.tensor(X_TINY, dtype=F64),
                *(torch.tensor(v, dtype=F64) for v in THETA_TINY)) is None:
        return out
    resp, log_px = ns["e_step"](torch.tensor(X_TINY, dtype=F64), *(torch.tensor(v, dtype=F64) for v in THETA_TINY))
    pi, mu, var = ns["m_step"](torch.tensor(X_M, dtype=F64), torch.tensor(RESP_M, dtype=F64))
    return {"resp": resp, "log_px": log_px, "pi": pi, "mu": mu, "var": var}


TRUE_THETA = ([0.5, 0.3, 0.2], [-2.0, 1.0, 4.0], [0.36, 0.64, 0.25])  # π, μ, σ² of the visible EM run


EM_VISIBLE_SEED = 22


def probe_em_visible(ns: dict) -> dict:
    return {"em": _em_trace(ns, _sample_gmm(1500, TRUE_THETA, EM_VISIBLE_SEED), K=3)}


THETA_HIDDEN = ([0.4, 0.6], [-0.5, 3.8], [0.8, 0.3])  # K = 2, 2,000 points


EM_HIDDEN_SEED = 9922


def _em_steps_hidden_inputs() -> dict:
    gen = torch.Generator().manual_seed(9122)
    x = torch.cat([3 * torch.randn(45, generator=gen, dtype=F64), torch.tensor([-90.0, 110.0, 0.0], dtype=F64)])
    pi = torch.softmax(torch.randn(4, generator=gen, dtype=F64), 0)
    mu, var = 2 * torch.randn(4, generator=gen, dtype=F64), 0.2 + torch.rand(4, generator=gen, dtype=F64)
    resp = torch.softmax(2 * torch.randn(70, 3, generator=gen, dtype=F64), 1)
    x_m = 1 + 2 * torch.randn(70, generator=gen, dtype=F64)
    return {"x": x, "pi": pi, "mu": mu, "var": var, "resp": resp, "x_m": x_m}


def probe_em_hidden(ns: dict) -> dict:
    inputs = _em_steps_hidden_inputs()
    out: dict = {}
    if _answered_by_hand(out, ns["e_step"], inputs["x"].clone(), inputs["pi"], inputs["mu"], inputs["var"]) is None:
        return out
    resp, log_px = ns["e_step"](inputs["x"], inputs["pi"], inputs["mu"], inputs["var"])
    pi, mu, var = ns["m_step"](inputs["x_m"], inputs["resp"])
    return {"resp": resp, "log_px": log_px, "pi": pi, "mu": mu, "var": var,
            "x_after": inputs["x"],  # the judge compares it with its own copy (changed in place?)
            "em": _em_trace(ns, _sample_gmm(2000, THETA_HIDDEN, EM_HIDDEN_SEED), K=2)}


KL_MU = ((0.31, -1.27, 0.85), (1.92, 0.04, -0.66), (-0.48, 2.35, 0.17), (0.0, -0.93, 1.41), (-1.76, 0.58, -0.22))
KL_LOGVAR = ((-0.42, 0.67, -1.35), (0.23, -2.1, 0.88), (1.14, -0.29, -0.71), (-0.05, 1.62, 0.36), (-1.8, 0.51, 0.94))


def _kl_visible_inputs() -> dict:
    return {"main": (torch.tensor(KL_MU, dtype=F64), torch.tensor(KL_LOGVAR, dtype=F64))}  # check 2.3's inputs


def _kl_hidden_inputs() -> dict:
    gen = torch.Generator().manual_seed(9123)
    return {"dims16": (2 * torch.randn(6, 16, generator=gen, dtype=F64), -6 + 9 * torch.rand(6, 16, generator=gen, dtype=F64)),
            "dims1": (torch.randn(35, 1, generator=gen, dtype=F64), torch.randn(35, 1, generator=gen, dtype=F64))}


def _probe_kl(ns: dict, inputs: dict) -> dict:
    out = {}
    for name, (mu, logvar) in inputs.items():
        value = _answered_by_hand(out, ns["kl_normal_std"], mu, logvar)
        if value is None:
            return out
        out[name] = value
        out[f"{name}_inputs_after"] = torch.stack([mu, logvar])  # the judge compares them with its own copy
    return out


def probe_kl_visible(ns: dict) -> dict:
    out = _probe_kl(ns, _kl_visible_inputs())
    out["zero"] = ns["kl_normal_std"](torch.zeros(2, 4, dtype=F64), torch.zeros(2, 4, dtype=F64))
    return out


def probe_kl_hidden(ns: dict) -> dict:
    out = _probe_kl(ns, _kl_hidden_inputs())
    out["shift"] = ns["kl_normal_std"](torch.tensor([[0.0, -2.0, 0.0, 0.0]], dtype=F64), torch.zeros(1, 4, dtype=F64))
    return out


MODEL = LinearGaussian(w=1.5, sigma=0.8)  # the notebook's model and observation


X_OBS = 2.0


MODEL_H = LinearGaussian(w=0.6, sigma=1.1)  # a model and an observation the student never sees


X_H = 0.8


def _elbo_grid_visible() -> dict:
    m, s = torch.meshgrid(torch.tensor([-1.0, 0.3, 1.04, 2.5], dtype=F64), torch.tensor([0.2, 0.47, 1.0, 1.7], dtype=F64),
                          indexing="ij")
    return {"grid": (MODEL, torch.full_like(m, X_OBS), m, s)}


def _elbo_grid_hidden() -> dict:
    m, s = torch.meshgrid(torch.linspace(-2.2, 2.6, 5, dtype=F64), torch.tensor([0.07, 0.35, 1.0, 2.4], dtype=F64),
                          indexing="ij")
    return {"grid": (MODEL_H, torch.full_like(m, X_H), m, s),
            "one_x_per_q": (MODEL_H, torch.tensor([-2.5, 0.3, 1.9], dtype=F64), torch.tensor([0.4, -0.3, 1.2], dtype=F64),
                            torch.tensor([0.6, 1.2, 0.25], dtype=F64))}


def _probe_elbo(ns: dict, cases: dict) -> dict:
    out: dict = {}
    for name, (model, x, m, s) in cases.items():
        value = _answered_by_hand(out, ns["elbo"], x, m, s, model)
        if value is None:
            return out
        out[name] = value
    return out


def probe_elbo_visible(ns: dict) -> dict:
    return _probe_elbo(ns, _elbo_grid_visible())


def _run_elbo_mc(ns: dict, model: LinearGaussian, x: float, m: float, s: float, n: int, seed: int) -> dict:
    est, se = ns["elbo_mc"](torch.tensor(x, dtype=F64), torch.tensor(m, dtype=F64), torch.tensor(s, dtype=F64), model, n,
                            torch.Generator().manual_seed(seed))
    return {"estimate": est, "stderr": se}


MC_VISIBLE = (MODEL, X_OBS, 0.2, 0.9, 4000, 24)  # model, x, m, s, n_samples, seed of the visible check


MC_HIDDEN = (MODEL_H, X_H, -0.5, 1.5, 900, 9124)


MC_POSTERIOR_VISIBLE = (200, 31)  # n_samples, seed at q = the posterior (every term is log p(x))


def probe_elbo_mc_visible(ns: dict) -> dict:
    post_mean, post_std = (v.item() for v in MODEL.posterior(X_OBS))
    return {"mc_posterior": _run_elbo_mc(ns, MODEL, X_OBS, post_mean, post_std, *MC_POSTERIOR_VISIBLE),
            "mc": _run_elbo_mc(ns, *MC_VISIBLE)}


def probe_elbo_hidden(ns: dict) -> dict:
    out = _probe_elbo(ns, _elbo_grid_hidden())
    out["mc"] = _run_elbo_mc(ns, *MC_HIDDEN)
    post_mean, post_std = (v.item() for v in MODEL_H.posterior(X_H))
    out["mc_posterior"] = _run_elbo_mc(ns, MODEL_H, X_H, post_mean, post_std, 50, 9125)
    return out


IW_VISIBLE = (MODEL, X_OBS, 0.2, 0.9, (1, 3, 10, 30, 100, 300, 1000), 2000, 25)  # model, x, m, s, ks, n_outer, seed


IW_HIDDEN = (MODEL_H, X_H, -0.2, 0.4, (1, 2, 8, 64, 512), 1500, 9126)


def _probe_iw(ns: dict, model, x, m, s, ks, n_outer, seed) -> dict:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for k in ks:
        est, se = ns["iw_bound"](torch.tensor(x, dtype=F64), torch.tensor(m, dtype=F64), torch.tensor(s, dtype=F64),
                                 model, k, n_outer, gen)
        out[f"k{k}"] = {"estimate": est, "stderr": se}
    return out


def probe_iw_visible(ns: dict) -> dict:
    return _probe_iw(ns, *IW_VISIBLE)


def probe_iw_hidden(ns: dict) -> dict:
    out = _probe_iw(ns, *IW_HIDDEN)
    post_mean, post_std = MODEL_H.posterior(X_H)
    for k in (1, 6):
        est, se = ns["iw_bound"](torch.tensor(X_H, dtype=F64), post_mean, post_std, MODEL_H, k, 20,
                                 torch.Generator().manual_seed(k))
        out[f"posterior{k}"] = {"estimate": est, "stderr": se}
    return out


BETA_M_GRID = (-0.4, 0.9, 1.6)  # check_beta's grid for the β = 1 comparison


BETA_S_GRID = (0.3, 0.8, 1.3)


STEPS = tuple(itertools.product((-0.05, 0.0, 0.05), (-0.05, 0.0, 0.05)))  # (dm, log ds) of the nearby (m, s)


def _probe_beta(ns: dict, model: LinearGaussian, x: float, betas) -> dict:
    beta_objective, x_t = ns["beta_objective"], torch.tensor(x, dtype=F64)
    m_grid, s_grid = torch.tensor(BETA_M_GRID, dtype=F64), torch.tensor(BETA_S_GRID, dtype=F64)
    x_grid = torch.full_like(m_grid, x)
    out: dict = {"objective_beta1": beta_objective(x_grid, m_grid, s_grid, model, 1.0),
                 "elbo": ns["elbo"](x_grid, m_grid, s_grid, model),
                 "objective_betas": torch.stack([beta_objective(x_grid, m_grid, s_grid, model, b) for b in betas])}
    for i, beta in enumerate(betas):
        m_b, s_b = ns["optimal_q_beta"](x_t, model, beta)
        entry = {"m": m_b, "s": s_b}
        if torch.is_tensor(m_b) and torch.is_tensor(s_b) and m_b.shape == () and s_b.shape == ():
            m_v, s_v = m_b.detach().clone().requires_grad_(True), s_b.detach().clone().requires_grad_(True)
            value = beta_objective(x_t, m_v, s_v, model, beta)
            value.backward()
            entry["value"] = value
            entry["grad"] = torch.stack([m_v.grad, s_v.grad])
            with torch.no_grad():
                entry["nearby"] = torch.stack([beta_objective(x_t, m_b + dm, s_b * math.exp(ds), model, beta).reshape(())
                                               for dm, ds in STEPS])
        out[f"beta{i}"] = entry
    return out


BETAS_VISIBLE = (0.25, 1.0, 4.0)


BETAS_HIDDEN = (0.15, 0.7, 1.0, 3.0, 15.0)


BETAS_CLOSED_FORM = (0.4, 6.0)


def probe_beta_visible(ns: dict) -> dict:
    return _probe_beta(ns, MODEL, X_OBS, BETAS_VISIBLE)


def probe_beta_hidden(ns: dict) -> dict:
    out = _probe_beta(ns, MODEL_H, X_H, BETAS_HIDDEN)
    for beta in BETAS_CLOSED_FORM:
        out[f"closed_form{beta}"] = torch.stack(ns["optimal_q_beta"](torch.tensor(X_H, dtype=F64), MODEL_H, beta))
    return out


PROBES = {
    "ex2_1_visible": probe_jensen_visible,
    "ex2_1_hidden": probe_jensen_hidden,
    "ex2_2_visible": probe_em_steps_visible,
    "ex2_2_em_visible": probe_em_visible,
    "ex2_2_hidden": probe_em_hidden,
    "ex2_3_visible": probe_kl_visible,
    "ex2_3_hidden": probe_kl_hidden,
    "ex2_4_visible": probe_elbo_visible,
    "ex2_4_mc_visible": probe_elbo_mc_visible,
    "ex2_4_hidden": probe_elbo_hidden,
    "ex2_5_visible": probe_iw_visible,
    "ex2_5_hidden": probe_iw_hidden,
    "ex2_6_visible": probe_beta_visible,
    "ex2_6_hidden": probe_beta_hidden,
}

