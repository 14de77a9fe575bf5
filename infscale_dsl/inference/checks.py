"""Posterior-predictive checks: does the fitted law describe the table at all?

Convergence diagnostics (R-hat, ESS, divergences) say the sampler explored the posterior; they
cannot say the law is wrong for the data. Two fits passed them while wrong: a Chinchilla law on
a table whose loss rises with N, and a law whose free coefficient sat at 1 % of its true value
with a noise scale 20 times the truth. These checks, run on every fit and part of its gate
(posterior.py), look at the fit as brms users look at `pp_check`:
- fit quality: R^2 of the response on the noise's scale (log y for laws on the log scale),
  from the posterior median of the law per row;
- noise against spread: the fitted noise scale as a share of the response's own spread;
- residual trend: Spearman correlation of the residuals with each input of the law, where a
  systematic bend the law cannot follow shows up;
- influence: Pareto k of PSIS-LOO per row (arviz), where one run decides the fit. Only on
  tables with at least MIN_ROWS_PER_PARAMETER rows per law parameter: with fewer, every run
  is influential and k above 1 is common for a law that is right (Vehtari et al.'s LOO
  guidance; 12 rows simulated from the data-constrained law itself gave k 1.06).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy.stats import spearmanr

from ..language.ast import CheckedSpec
from ..model.likelihood import Likelihood, law_parameters

MIN_R2 = 0.5  # the law explains at least half of the response's variance on its scale
MAX_NOISE_SHARE = 0.7  # sigma at most 70 % of the response's standard deviation
MAX_TREND = 0.6  # |Spearman rho| of residuals against an input, with p < TREND_P, fails the gate
TREND_P = 0.01  # a trend as strong with a larger p (few rows) is noted, not failed
MAX_PARETO_K = 1.0  # above it PSIS-LOO is unreliable: the fit hangs on that row
MIN_ROWS_FOR_TREND = 8
MIN_ROWS_PER_PARAMETER = 5  # below it the Pareto k check is reported, not part of the gate


def misfit_checks(spec: CheckedSpec, law_draws: Mapping[str, np.ndarray],
                  observed: Mapping[str, np.ndarray], inputs: Mapping[str, Mapping[str, np.ndarray]],
                  sigma: Mapping[str, float], idata=None) -> dict:
    """Per response: r2, noise_share, trend {input: rho}, max_pareto_k; plus `problems` (they fail
    the gate) and `notes` (they do not: an input the fitted rows hold at one value).
    law_draws[r] (S, n): the law per draw on r's rows; observed[r] (n,); inputs[r][x] (n,)."""
    report: dict = {"laws": {}, "problems": [], "notes": []}
    pareto_k = _pareto_k(idata)
    for law in spec.laws:
        r = law.response
        noise = Likelihood.of(law)
        y = noise.observed(np.asarray(observed[r], dtype=float))
        fitted = noise.location(np.median(law_draws[r], axis=0))
        residual = y - fitted
        spread = float(np.std(y))
        r2 = 1 - float(np.sum(residual ** 2) / np.sum((y - y.mean()) ** 2)) if spread > 0 else float("nan")
        share = float(sigma[r] / spread) if spread > 0 else float("nan")
        report["notes"] += _constant_inputs(spec, law, inputs[r])
        trend = {}
        # a trend needs residuals that vary (an exact fit has none to rank)
        if len(y) >= MIN_ROWS_FOR_TREND and np.all(np.isfinite(residual)) and np.ptp(residual) > 0:
            for name in spec.law_inputs(law):
                x = np.asarray(inputs[r][name], dtype=float)
                if np.ptp(x) > 0:
                    rho, p = spearmanr(x, residual)
                    trend[name] = (float(rho), float(p))
        k = pareto_k.get(r)
        n_parameters = len(law_parameters(spec, law))
        k_checked = k is not None and len(y) >= MIN_ROWS_PER_PARAMETER * n_parameters
        report["laws"][r] = {"r2": _plain(r2), "noise_share": _plain(share),
                             "trend": {n: _plain(rho) for n, (rho, _) in trend.items()},
                             "trend_p": {n: _plain(p) for n, (_, p) in trend.items()},
                             "max_pareto_k": _plain(k), "pareto_k_checked": bool(k_checked)}
        report["problems"] += _problems(r, r2, share, trend, k if k_checked else None)
        report["notes"] += [f"{r}'s residuals trend with {name} (Spearman {rho:+.2f}), but at p = {p:.3f} on "
                            f"{len(y)} rows the gate does not call it misfit: plot {r} against {name}"
                            for name, (rho, p) in trend.items() if abs(rho) > MAX_TREND and p >= TREND_P]
    return report


def _constant_inputs(spec: CheckedSpec, law, inputs: Mapping[str, np.ndarray]) -> list[str]:
    """A note per input of the law that takes one value in the fitted rows: the data say nothing
    about how the response moves with it (the seed law on 6 runs of one shape: R = 64 in all)."""
    notes = []
    for name in spec.law_inputs(law):
        x = np.asarray(inputs[name], dtype=float)
        if len(x) > 1 and np.ptp(x) == 0:
            notes.append(f"{name} takes one value ({x[0]:.4g}) in the {len(x)} fitted rows of {law.response}: "
                         f"how {law.response} moves with {name} comes from the priors alone, and so do "
                         f"predictions at other values of {name}")
    return notes


def _problems(response: str, r2: float, share: float, trend: dict, k: float | None) -> list[str]:
    problems = []
    if not r2 >= MIN_R2:
        problems.append(f"misfit: the law explains R^2 = {r2:.2f} of {response}'s variance (under {MIN_R2}): "
                        "check the law's form against the data (plot it with `infscale-dsl report`)")
    if not share <= MAX_NOISE_SHARE:
        problems.append(f"misfit: the noise scale of {response} is {share:.0%} of its spread: the law "
                        "barely follows the data; check its form and the priors of its coefficients")
    for name, (rho, p) in trend.items():
        if abs(rho) > MAX_TREND and p < TREND_P:
            problems.append(f"misfit: {response}'s residuals trend with {name} (Spearman {rho:+.2f}): "
                            f"the law misses how {response} changes with {name}")
    if k is not None and k > MAX_PARETO_K:
        problems.append(f"influence: Pareto k {k:.2f} > {MAX_PARETO_K} for a run of {response}: one run "
                        "decides the fit; check it for errors, or use StudentT noise")
    return problems


def _pareto_k(idata) -> dict[str, float]:
    """Largest Pareto k of PSIS-LOO per response (arviz), where the fit holds a log-likelihood."""
    if idata is None or "log_likelihood" not in idata.groups():
        return {}
    import warnings

    import arviz as az

    out = {}
    for response in idata.log_likelihood.data_vars:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # arviz warns on high k; the check reports it
            loo = az.loo(idata, pointwise=True, var_name=response)
        out[response] = float(np.nanmax(loo.pareto_k.values))
    return out


def _plain(x):
    return None if x is None or not np.isfinite(x) else float(x)
