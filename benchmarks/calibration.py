"""Calibration of the report's intervals: on synthetic data from a known law, do the 90%
predictive intervals of held-out runs cover 85-95% of the truths?

    python benchmarks/calibration.py [--repeats 20] [--quiet] [--on local|ray|slurm] [--workers 2]

Each repeat draws a fresh table from Chinchilla's law (Hoffmann et al. 2022 values) with
log-normal noise (sigma 0.01), fits models/chinchilla.law by NUTS on 48 runs (4 chains x 1000
draws: E is weakly identified on so few runs, and 2 x 500 left its ESS under 400), predicts 12
held-out runs, a third of them up to 3x beyond the largest fitted N. Printed: coverage of the
new-run 90% intervals over the held-out truths (with its binomial standard error, and the
standard error over repeats: one fit's 12 runs share its error), the coverage of the law's 90%
intervals over the true law value, and the mean absolute relative error. Then the coverage
against what the fits' own joint draws expect (prediction/coverage.py): the runs covered over
all repeats against the count those draws give, and how many repeats fall under p_own 0.1 (about
a tenth at most if the fits' joint model is right).

The repeats' fits are independent tasks of an executor: one after another here by default,
`--workers` local processes, or Ray (`--on ray`). Tables are drawn here, so every executor
gets the same figures.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")  # a device per chain

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from tqdm import tqdm  # noqa: E402

from infscale_dsl.executors import BACKENDS, SlurmOptions, make_executor  # noqa: E402
from infscale_dsl.inference.fit import fit  # noqa: E402
from infscale_dsl.language import load_spec  # noqa: E402
from infscale_dsl.prediction.coverage import coverage_p, covered_counts, expected_range, pooled_counts  # noqa: E402
from infscale_dsl.prediction.predict import predict_draws  # noqa: E402
from infscale_dsl.progress import show_progress  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
SIGMA = 0.01  # noise of one run, on log loss
N_FIT, N_HELD = 48, 12


def true_law(n: np.ndarray, d: np.ndarray) -> np.ndarray:
    return TRUTH["E"] + TRUTH["A"] / n ** TRUTH["alpha"] + TRUTH["B"] / d ** TRUTH["beta"]


def synthetic_runs(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fitted runs, held-out runs): N in 1e7-3e8 and D in 1e8-1e10 (log-uniform); a third of
    the held-out runs have N up to 9e8 (extrapolation)."""
    def runs(n_low: float, n_high: float, count: int) -> pd.DataFrame:
        n = np.exp(rng.uniform(np.log(n_low), np.log(n_high), count))
        d = np.exp(rng.uniform(np.log(1e8), np.log(1e10), count))
        law = true_law(n, d)
        return pd.DataFrame({"N": n, "D": d, "law": law, "loss": law * np.exp(SIGMA * rng.standard_normal(count))})

    held = pd.concat([runs(1e7, 3e8, N_HELD - N_HELD // 3), runs(3e8, 9e8, N_HELD // 3)], ignore_index=True)
    return runs(1e7, 3e8, N_FIT), held


def fit_repeat(spec, fitted: pd.DataFrame, held: pd.DataFrame, repeat: int) -> dict:
    """One repeat's fit and its scores over the held-out runs: one task of the executor."""
    result = fit(spec, fitted, chains=4, warmup=500, draws=1000, seed=repeat)
    draws = predict_draws(result, held, seed=repeat)["loss"]
    low, high = np.quantile(draws.observed, [0.05, 0.95], axis=0)
    law_low, law_high = np.quantile(draws.law, [0.05, 0.95], axis=0)
    truth, law = held["loss"].to_numpy(), held["law"].to_numpy()
    return dict(ok=result.diagnostics["ok"], covered=(low <= truth) & (truth <= high),
                law_covered=(law_low <= law) & (law <= law_high),
                errors=np.abs(np.median(draws.observed, axis=0) - truth) / truth,
                own_counts=covered_counts(draws.observed, low, high))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--on", choices=BACKENDS, default="local", help="where the fits run")
    parser.add_argument("--workers", type=int, default=1, help="fits at once (local processes or Ray CPUs)")
    parser.add_argument("--address", help="Ray cluster to join (default: a local Ray instance)")
    args = parser.parse_args()
    spec = load_spec(ROOT / "models" / "chinchilla.law")
    rng = np.random.default_rng(args.seed)
    tasks = [(spec, *synthetic_runs(rng), repeat) for repeat in range(args.repeats)]
    slurm = SlurmOptions(Path("calibration.submitit").absolute())  # submitit's job files
    with make_executor(args.on, args.workers, args.address, slurm) as executor:
        results = [None] * args.repeats
        for outcome in tqdm(executor.map(fit_repeat, tasks), total=args.repeats, desc="calibration fits",
                            disable=not show_progress(args.quiet)):
            if outcome.error is not None:
                print(f"repeat {outcome.index} failed: {outcome.error}", file=sys.stderr)
                return 1
            results[outcome.index] = outcome.value
    not_ok = sum(not r["ok"] for r in results)
    covered, law_covered = (np.concatenate([r[k] for r in results]) for k in ("covered", "law_covered"))
    errors = np.concatenate([r["errors"] for r in results])
    n = covered.size
    coverage = covered.mean()
    print(f"repeats {args.repeats}, held-out runs {n}, fits failing diagnostics {not_ok}")
    by_repeat = covered.reshape(args.repeats, N_HELD).mean(axis=1)
    print(f"new-run 90% intervals cover {coverage:.3f} of held-out truths (binomial SE "
          f"{np.sqrt(coverage * (1 - coverage) / n):.3f}; SE over repeats {by_repeat.std(ddof=1) / np.sqrt(args.repeats):.3f})")
    print(f"law 90% intervals cover {law_covered.mean():.3f} of the true law values")
    beyond = covered.reshape(args.repeats, N_HELD)[:, -(N_HELD // 3):]  # the extrapolated runs
    print(f"extrapolated runs alone: new-run coverage {beyond.mean():.3f} of {beyond.size}")
    print(f"mean absolute relative error {errors.mean():.4f}")
    own = pooled_counts([r["own_counts"] for r in results], np.random.default_rng(0))
    low, high = expected_range(own, n)
    print(f"by the fits' own draws: {int(covered.sum())} of {n} covered where {own.mean():.0f} were expected "
          f"(90 % between {low:.3f} and {high:.3f}; p_own {coverage_p(int(covered.sum()), own):.2f})")
    p_own = [coverage_p(int(r["covered"].sum()), r["own_counts"]) for r in results]
    print(f"repeats whose coverage has p_own < 0.1: {sum(p < 0.1 for p in p_own)} of {args.repeats} "
          f"(at most about {args.repeats / 10:.0f} if calibrated)")
    inside = 0.85 <= coverage <= 0.95
    print("calibrated (85-95%):", "yes" if inside else "NO")
    return 0 if inside else 1


if __name__ == "__main__":
    sys.exit(main())
