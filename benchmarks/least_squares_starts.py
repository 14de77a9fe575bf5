"""Where the least-squares baseline ends from each start of its grid, on one task.

    python benchmarks/least_squares_starts.py [--task seed_few6_bian] [--show 10]

The curve_fit baseline (baselines.py) keeps the start whose fit has the smallest residuals.
Where the data cannot tell a parameter (the seed law's eps on 6 runs of one aspect ratio),
many starts reach the same residuals and the parameter lands wherever least squares slides
it: this prints how many tie and how far apart their held-out errors lie, then per start the
residual sum of squares, the held-out error (MARE %) and the fitted parameters, best first.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.baselines import LawFunction, least_squares_ends  # noqa: E402
from benchmarks.tasks import load_tasks  # noqa: E402
from infscale_dsl.language import load_spec  # noqa: E402

TIE = 1e-8  # residual sums this close to the smallest are the same fit up to rounding


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="seed_few6_bian")
    parser.add_argument("--show", type=int, default=10, help="starts to print, best first")
    args = parser.parse_args()
    (task,) = load_tasks([args.task])
    spec = load_spec(task.spec, columns=task.train.columns)
    f = LawFunction(spec, task.response)
    x, y = f.inputs(task.train), task.train[task.response].to_numpy(float)
    xt, truth = f.inputs(task.test), task.test[task.response].to_numpy(float)
    ends = [(sse, 100 * float(np.median(np.abs(f(xt, theta) - truth) / truth)), np.exp(start), np.exp(theta))
            for sse, start, theta, _ in least_squares_ends(f, x, y)]  # smallest residuals first
    print(f"{args.task}: {len(ends)} starts converged; parameters {', '.join(f.names)}")
    tied = [mare for sse, mare, _, _ in ends if sse <= ends[0][0] * (1 + TIE)]
    print(f"{len(tied)} reach the smallest residuals (within a factor 1 + {TIE:g}); their held-out MARE runs "
          f"from {min(tied):.2f} to {max(tied):.2f} %; the baseline keeps the first ({ends[0][1]:.2f} %)")
    print(f"{'SSE':>14} {'MARE':>7}  start -> end")
    for sse, mare, start, end in ends[:args.show]:
        print(f"{sse:14.8e} {mare:6.2f} %  " + ", ".join(f"{n} {s:.3g} -> {e:.3g}" for n, s, e in zip(f.names, start, end)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
