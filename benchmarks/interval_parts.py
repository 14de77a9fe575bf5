"""What a held-out coverage is made of: the law's own uncertainty, and the noise and drift added.

    python benchmarks/interval_parts.py [--tasks chinchilla_few6,porian_kaplan_like]

For each extrapolation task (tasks.py), one fit at `fit`'s defaults, then per held-out run two
90 % intervals from the same draws (prediction/predict.py): the law's value alone, and a new
run's (noise, and drift beyond the fitted data). Each gets its coverage and mean relative width.

The last column says how far one task's held-out runs are independent checks of calibration.
The PIT of a run is the share of its predictive draws below the truth; calibrated intervals
make PITs uniform over many tasks. Within one task they share a single error of the law (the
same posterior, read at nearby inputs), so they cluster: the column is their interquartile
range, 0.5 for independent runs, near 0 when every run sits at the same quantile. A task of
234 runs whose PITs span 0.1 is about one check, not 234, and its binomial p against 0.90
(extrapolation.py) overstates what it shows.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from extrapolation import fit_each, score, task_arguments  # noqa: E402

# the main tasks with at least 8 held-out runs: a PIT spread needs a few runs to mean anything
DEFAULT_TASKS = ("chinchilla_top_decile", "chinchilla_few6", "seed_116M", "seed_164M", "seed_237M",
                 "seed_313M", "seed_few5_gadre", "seed_few6_bian", "porian_corrected", "porian_kaplan_like")


def interval(draws: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Coverage and mean relative width of the 90 % interval of draws (S, n) on truth (n,), as
    the extrapolation benchmark scores them."""
    low, median, high = np.quantile(draws, [0.05, 0.5, 0.95], axis=0)
    scored = score(truth, median, low, high)
    return scored["coverage90"], scored["rel_width90"]


def main() -> int:
    args = task_arguments(__doc__, DEFAULT_TASKS)
    from infscale_dsl.prediction.predict import predict_draws

    print(f"{'task':<22} {'n_out':>5}  {'law cov90':>9} {'width':>7}  {'new run cov90':>13} {'width':>7}"
          f"  {'PIT IQR':>7}  {'gate':>4}")
    for task, result in fit_each(args):
        draws = predict_draws(result, task.test, seed=args.seed)[task.response]
        truth = task.test[task.response].to_numpy(float)
        law_cover, law_width = interval(draws.law, truth)
        run_cover, run_width = interval(draws.observed, truth)
        pit = np.mean(draws.observed < truth, axis=0)  # (n,)
        spread = float(np.subtract(*np.quantile(pit, [0.75, 0.25])))
        print(f"{task.name:<22} {len(truth):>5}  {law_cover:>9.2f} {law_width:>6.1%}  {run_cover:>13.2f} "
              f"{run_width:>6.1%}  {spread:>7.2f}  {'ok' if result.diagnostics['ok'] else 'FAIL':>4}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
