"""Stacking several laws (issue 9, item 2's candidate "averaging over several laws with LOO
stacking weights"): does a mixture of laws extrapolate better than the one law a task names?

    python benchmarks/stacking.py [--tasks seed_86M,...] [--laws a.law,b.law] [--seed 0]

For each task of the extrapolation benchmark (benchmarks/tasks.py; by default the seed paper's
held-out groups, its 1B runs and its 6 runs) every candidate law of models/ is fitted to the
task's training runs at infscale-dsl's defaults and predicts the held-out runs, alone and
stacked (`predict_stacked`, as `infscale-dsl predict fit_a/ fit_b/ ...`: each law's draws in
proportion to its PSIS-LOO stacking weight on the training runs, Yao et al. 2018). Printed per
task: each law's and the stack's MARE / 90 % coverage / mean relative width (as
benchmarks/extrapolation.py scores them) and the weights. A law the data check refuses on a
task (fewer rows than its parameters) is left out of that task's stack and said so.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.extrapolation import score, use_cpu_devices  # noqa: E402
from benchmarks.tasks import MODELS, load_tasks  # noqa: E402
from infscale_dsl.errors import InfscaleError  # noqa: E402
from infscale_dsl.inference.fit import fit  # noqa: E402
from infscale_dsl.language import load_spec  # noqa: E402
from infscale_dsl.prediction.predict import predict, predict_stacked  # noqa: E402

SEED_TASKS = ["seed_86M", "seed_116M", "seed_126M", "seed_164M", "seed_178M", "seed_237M", "seed_313M",
              "seed_339M", "seed_1B", "seed_1B_main27", "seed_few6_bian"]
SEED_LAWS = ["bian2025.law", "bian2025_eta.law", "chinchilla_tied.law"]


def cell(task, frame: pd.DataFrame) -> dict:
    """benchmarks/extrapolation.py's score of a prediction table of the held-out runs."""
    r = task.response
    truth = task.test[r].to_numpy(float)
    return score(truth, *(frame[f"{r}_{q}"].to_numpy(float) for q in ("median", "q05", "q95")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(SEED_TASKS), help="comma-separated task names (default: the seed's)")
    parser.add_argument("--laws", default=",".join(SEED_LAWS), help="comma-separated files of models/ to stack")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    use_cpu_devices(4)
    laws = args.laws.split(",")
    rows = []
    for task in load_tasks(args.tasks.split(",")):
        fits, refused = {}, []
        for law in laws:
            try:
                fits[law] = fit(load_spec(MODELS / law, columns=task.train.columns), task.train, seed=args.seed)
            except InfscaleError as error:  # e.g. fewer rows than the law has parameters
                refused.append(f"{law}: {str(error).splitlines()[0][:80]}")
        row = {"task": task.name, "n_test": len(task.test)}
        for law, result in fits.items():
            row[law] = cell(task, predict(result, task.test, seed=args.seed))
        if len(fits) > 1:
            stacked, weights = predict_stacked(fits, task.test, seed=args.seed)
        else:  # one law left: nothing to weigh
            (law, result), = fits.items()
            stacked, weights = predict(result, task.test, seed=args.seed), {task.response: {law: 1.0}}
        row["stacked"], row["weights"], row["refused"] = cell(task, stacked), weights[task.response], refused
        rows.append(row)
        print(format_row(row, laws), flush=True)
    print(summary(rows, laws))


def format_row(row: dict, laws: list[str]) -> str:
    def text(c: dict | None) -> str:
        return "refused" if c is None else f"{100 * c['mare']:.2f} / {c['coverage90']:.2f} / {100 * c['rel_width90']:.1f}"
    parts = [f"{law.removesuffix('.law')} {text(row.get(law))}" for law in laws]
    weights = " ".join(f"{w:.2f}" for w in row["weights"].values())
    return (f"{row['task']:<15} n {row['n_test']:>3}  " + "  ".join(parts) + f"  | stacked {text(row['stacked'])}"
            f"  weights {weights}"
            + (f"  (left out: {'; '.join(row['refused'])})" if row["refused"] else ""))


def summary(rows: list[dict], laws: list[str]) -> str:
    lines = ["cells: MARE % / 90 % coverage / mean relative width % of the held-out runs; weights in the "
             "order of the laws fitted; pooled over the tasks each was fitted on:"]
    for name in laws + ["stacked"]:
        cells = [(r[name], r["n_test"]) for r in rows if name in r]
        covered = sum(c["covered"] for c, _ in cells)
        held_out = sum(n for _, n in cells)
        mares = [100 * c["mare"] for c, _ in cells]
        lines.append(f"  {name:<22} {len(cells):>2} tasks, coverage {covered / held_out:.3f} ({covered}/{held_out}), "
                     f"median task MARE {np.median(mares):.2f} %")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
