"""Could a table tell its own drift? An internal backtest against the drift each task needed.

    python benchmarks/drift_backtest.py [--tasks a,b] [--data ../shared/data]

The drift (likelihood.py) is the law's extra log-scale error per log unit beyond the fitted
runs. No fitted row informs it, so its prior, HalfNormal(0.02), is what every prediction beyond
the data assumes. A data-driven alternative would hold out the top quarter of the training
table (by log N + log D, or log C), fit the rest and read the drift off the held-out errors.
This script measures whether that estimate would have matched what each extrapolation task
(benchmarks/tasks.py, those with 12 or more training rows) needed. Both sides use the Huber fit
of baselines.py and the same estimate,

    drift^2 = max(mean(e^2) - sigma^2, 0) / mean(d^2),

with e the held-out log errors, d their distances beyond the fitted runs' hull and sigma the
fitted rows' robust residual SD (1.4826 x MAD). Printed per task: the internal estimate, the
drift the real held-out runs needed, and the pieces of each.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/drift_backtest.py`
import numpy as np  # noqa: E402

from benchmarks.baselines import LawFunction, huber_fit, take  # noqa: E402
from benchmarks.tasks import load_tasks  # noqa: E402
from infscale_dsl.language import load_spec  # noqa: E402
from infscale_dsl.model.likelihood import distance_beyond  # noqa: E402

MIN_ROWS = 12  # fewer training rows leave too few for an internal hold-out
HELD_OUT_SHARE = 0.25  # the internal backtest holds out the top quarter of the training table


def size_of(values: dict) -> np.ndarray:
    """Log compute, or what stands for it in the law's inputs."""
    if "N" in values and "D" in values:
        return np.log(values["N"]) + np.log(values["D"])
    return np.log(values["C"] if "C" in values else values["N"])


def needed_drift(f: LawFunction, inputs: tuple[str, ...], train: tuple[dict, np.ndarray],
                 test: tuple[dict, np.ndarray]) -> dict:
    """Fit on `train` (inputs, loss), predict `test`: the drift its errors call for, and why."""
    (x, y), (x_test, y_test) = train, test
    theta = huber_fit(f, x, np.log(y), f.starts(y), delta=1e-3)
    residual = np.log(y) - np.log(f(x, theta))
    sigma = 1.4826 * np.median(np.abs(residual - np.median(residual)))
    error = np.log(y_test) - np.log(f(x_test, theta))
    distance = distance_beyond({n: x_test[n] for n in inputs}, {n: x[n] for n in inputs}, len(y_test))
    excess = max(float(np.mean(error ** 2)) - sigma ** 2, 0.0)
    return {"drift": np.sqrt(excess / max(float(np.mean(distance ** 2)), 1e-12)), "sigma": sigma,
            "rms_error": float(np.sqrt(np.mean(error ** 2))), "rms_distance": float(np.sqrt(np.mean(distance ** 2)))}


def pieces(found: dict) -> str:
    return f"{found['sigma']:.4f} {found['rms_error']:.4f} {found['rms_distance']:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", help="comma-separated task names (default: every task with a file law)")
    parser.add_argument("--data", help="folder of the public tables (default ../shared/data)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # overflowing trial points of the fits

    print(f"{'task':24s} {'rows':>4}  {'internal':>8} {'needed':>8}   internal: sigma, rms e, rms d"
          f"   needed: sigma, rms e, rms d")
    for task in load_tasks(args.tasks.split(",") if args.tasks else None, args.data):
        if len(task.train) < MIN_ROWS or task.source is not None:
            continue
        spec = load_spec(task.spec, columns=task.train.columns)
        f = LawFunction(spec, task.response)
        x, y = f.inputs(task.train), task.train[task.response].to_numpy(float)
        x_test, y_test = f.inputs(task.test), task.test[task.response].to_numpy(float)
        top = size_of(x) >= np.quantile(size_of(x), 1 - HELD_OUT_SHARE)
        inputs = spec.law_inputs(f.law)
        internal = needed_drift(f, inputs, (take(x, ~top), y[~top]), (take(x, top), y[top]))
        needed = needed_drift(f, inputs, (x, y), (x_test, y_test))
        print(f"{task.name:24s} {len(y):>4}  {internal['drift']:>8.4f} {needed['drift']:>8.4f}   "
              f"{pieces(internal):>24}   {pieces(needed):>22}", flush=True)


if __name__ == "__main__":
    main()
