"""Regenerate the stored values of utils/checks_elbo.py from the reference solution (instructor material).

Run from the course root: .venv/bin/python solutions/notes/02_stored_values.py
It prints the literals that utils/checks_elbo.py holds; the module itself computes no exercise's answer.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal, kl_divergence

from utils import checks_elbo
from utils.widgets import LinearGaussian

torch.set_default_dtype(torch.float64)


def kl_ref(mu, logvar):
    return kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros_like(mu), 1.0)).sum(-1)


def elbo_ref(x, m, s, model):
    return model.log_marginal(x) - kl_divergence(Normal(m, s), Normal(*model.posterior(x)))


def fmt(t) -> str:
    return "[" + ", ".join(f"{v:.12g}" for v in torch.as_tensor(t).flatten().tolist()) + "]"


def main() -> None:
    mu, lv = (torch.tensor(v) for v in (checks_elbo.KL_MU, checks_elbo.KL_LOGVAR))
    print("KL_EXPECTED =", fmt(kl_ref(mu, lv)))
    print("KL_LOGVAR_AS_LOG_SIGMA =", fmt(kl_ref(mu, 2 * lv)))
    model, x = LinearGaussian(1.5, 0.8), torch.tensor(2.0)
    m, s = torch.meshgrid(torch.tensor(checks_elbo.ELBO_M), torch.tensor(checks_elbo.ELBO_S), indexing="ij")
    print("ELBO_EXPECTED =", fmt(elbo_ref(x, m, s, model)))
    print("ELBO_KL_PRIOR =", fmt(kl_divergence(Normal(m, s), Normal(0.0, 1.0))))
    print("ELBO_KL_PRIOR_LOG_S =", fmt(kl_divergence(Normal(m, s.sqrt()), Normal(0.0, 1.0))))
    for m0, s0, seed in checks_elbo.MC_CASES:
        mt, st = torch.tensor(m0), torch.tensor(s0)
        z = mt + st * torch.randn(10**6, generator=torch.Generator().manual_seed(seed))
        terms = model.log_joint(x, z) - Normal(mt, st).log_prob(z)
        sd = terms.std().item()
        kurt = (((terms - terms.mean()) / sd) ** 4).mean().item()
        print(f"MC truth ({m0}, {s0}):", f"({elbo_ref(x, mt, st, model).item():.12g}, {sd:.12g}, {kurt:.12g})")
    bm, bs = torch.tensor(checks_elbo.BETA_M), torch.tensor(checks_elbo.BETA_S)
    ell = -0.5 * math.log(2 * math.pi * 0.64) - ((x - 1.5 * bm) ** 2 + 2.25 * bs**2) / (2 * 0.64)
    kl = kl_divergence(Normal(bm, bs), Normal(0.0, 1.0))
    for beta in checks_elbo.BETAS:
        total = 2.25 + beta * 0.64
        print(f"beta {beta}: objective", fmt(ell - beta * kl), "beta on likelihood", fmt(beta * ell - kl),
              "optimum", fmt([1.5 * 2 / total, math.sqrt(beta * 0.64 / total)]),
              "beta misplaced", fmt([1.5 * 2 / (2.25 + 0.64 / beta), math.sqrt(0.64 / (2.25 + 0.64 / beta))]))


if __name__ == "__main__":
    main()
