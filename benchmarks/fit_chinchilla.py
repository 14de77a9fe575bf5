"""Fit speed on Chinchilla: infscale-dsl against the Epoch-style baseline, in one process.

The baseline is Besiroglu et al.'s recipe (Epoch AI, "Chinchilla Scaling: A replication
attempt"): sum of Huber losses (delta 1e-3) of log L - LSE(a - alpha log N, b - beta log D, e),
scipy L-BFGS-B with analytic gradients from every point of Hoffmann's grid of 4500 starts.
Against it (targets on 2 CPU cores, issue 2):
- `fit(method="nuts")`, 4 chains: the full posterior (bulk ESS >= 400 for every parameter)
  in at most 1/20 of the baseline's time;
- `fit(method="map")`: the baseline's optimum (objective within 1e-6 relative) in at most
  1/100 of its time.
Cold is the first call in the process, with an empty compilation cache (JAX compiles
everything); warm is a second call. NUTS runs at the defaults (4 chains, 500 warm-up, 500
draws each, mass matrix "auto", which keeps the Laplace metric here), and, for comparison,
with the mass matrix re-estimated in warm-up windows (`mass="adapt"`).

    python benchmarks/fit_chinchilla.py [--data-dir ../shared/data]
"""
from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")  # a device per chain
os.environ["INFSCALE_DSL_CACHE"] = tempfile.mkdtemp()  # cold means nothing compiled yet

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import logsumexp

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DELTA = 1e-3


def huber(r):
    return np.where(np.abs(r) <= DELTA, 0.5 * r**2, DELTA * (np.abs(r) - 0.5 * DELTA))


def huber_grad(r):
    return np.clip(r, -DELTA, DELTA)


def epoch_objective(theta, log_n, log_d, log_loss):
    """Sum of Huber losses and its gradient in (a, b, e, alpha, beta)."""
    a, b, e, alpha, beta = theta
    terms = np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])
    lse = logsumexp(terms, axis=0)
    residual = lse - log_loss
    weights = np.exp(terms - lse)  # d lse / d term
    g = huber_grad(residual)
    grad = np.array([
        np.sum(g * weights[0]), np.sum(g * weights[1]), np.sum(g * weights[2]),
        np.sum(g * weights[0] * -log_n), np.sum(g * weights[1] * -log_d),
    ])
    return float(np.sum(huber(residual))), grad


def epoch_baseline(table: pd.DataFrame):
    log_n, log_d, log_loss = (np.log(table[c].to_numpy()) for c in ("N", "D", "loss"))
    grid = itertools.product(np.arange(0, 30, 5), np.arange(0, 30, 5), np.arange(-1, 1.5, 0.5),
                             np.arange(0, 2.5, 0.5), np.arange(0, 2.5, 0.5))
    best = None
    n_starts = 0
    for a, b, e, alpha, beta in grid:
        n_starts += 1
        result = minimize(epoch_objective, np.array([a, b, e, alpha, beta]), jac=True,
                          args=(log_n, log_d, log_loss), method="L-BFGS-B")
        if best is None or result.fun < best.fun:
            best = result
    a, b, e, alpha, beta = best.x
    return {"A": np.exp(a), "B": np.exp(b), "E": np.exp(e), "alpha": alpha, "beta": beta,
            "objective": best.fun, "starts": n_starts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA,
                        help="folder with chinchilla_epoch.csv (else Epoch's original is fetched)")
    args = parser.parse_args()

    from infscale_dsl.datasets import chinchilla
    from infscale_dsl.inference.fit import fit
    from infscale_dsl.language import load_spec

    table = chinchilla(args.data_dir)
    table = table[table["epoch_excluded_outlier"] == 0].reset_index(drop=True)
    spec = load_spec(ROOT / "models" / "chinchilla.law", columns=table.columns)

    timings, posteriors = {}, {}
    for label in ("cold", "warm"):
        start = time.perf_counter()
        point = fit(spec, table, method="map")
        timings[f"map {label}"] = time.perf_counter() - start
    for mass, labels in (("auto", ("cold", "warm")), ("adapt", ("cold", "warm"))):
        for label in labels:
            start = time.perf_counter()
            posteriors[mass] = fit(spec, table, method="nuts", chains=4, mass=mass)
            timings[f"nuts {mass} {label}"] = time.perf_counter() - start
    posterior = posteriors["auto"]

    start = time.perf_counter()
    baseline = epoch_baseline(table)
    timings["baseline"] = time.perf_counter() - start

    print(f"rows: {len(table)}; baseline: scipy L-BFGS-B from {baseline['starts']} grid starts")
    print(f"{'':<16}{'seconds':>10}{'x faster':>10}")
    for label, seconds in timings.items():
        print(f"{label:<16}{seconds:>10.2f}{timings['baseline'] / seconds:>10.1f}")

    map_params = point.summary()["median"]
    relative = (point.objective - baseline["objective"]) / baseline["objective"]
    print(f"\nobjective: baseline {baseline['objective']:.10g}, map {point.objective:.10g} "
          f"(relative difference {relative:.2e}; target <= 1e-6)")
    print(f"{'param':<8}{'baseline':>12}{'map':>12}{'nuts median':>14}{'nuts q05':>12}{'nuts q95':>12}")
    summary = posterior.summary()
    for name in ("A", "B", "E", "alpha", "beta"):
        print(f"{name:<8}{baseline[name]:>12.5g}{map_params[name]:>12.5g}{summary.loc[name, 'median']:>14.5g}"
              f"{summary.loc[name, 'q05']:>12.5g}{summary.loc[name, 'q95']:>12.5g}")
    for mass, result in posteriors.items():
        d = result.diagnostics
        print(f"nuts {mass} (mass matrix used: {result.sampler['mass']}): min bulk ESS "
              f"{d['min_ess_bulk']:.0f}, max R-hat {d['max_r_hat']:.4f}, divergences {d['divergences']}, "
              f"ok {d['ok']}")
    fastest_ok = min((timings[f"nuts {m} warm"] for m, r in posteriors.items() if r.diagnostics["ok"]),
                     default=float("inf"))
    print(f"targets: nuts warm (ESS >= 400) <= baseline/20: {fastest_ok <= timings['baseline'] / 20}; "
          f"map warm <= baseline/100: {timings['map warm'] <= timings['baseline'] / 100}; "
          f"map objective within 1e-6: {abs(relative) <= 1e-6}")


if __name__ == "__main__":
    main()
