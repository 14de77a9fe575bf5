"""Stacking several laws (issue 9, item 2's candidate "averaging over several laws with LOO
stacking weights"): does a mixture of laws extrapolate better than the one law a task names?

    python benchmarks/stacking.py [--tasks seed_86M,...] [--laws a.law,b.law] [--seed 0]

For each task of the extrapolation benchmark (benchmarks/tasks.py; by default the seed paper's
ten held-out groups) every candidate law of models/ is fitted to the task's training runs at
infscale-dsl's defaults, and its posterior-predictive draws of the held-out runs are kept. The
laws' stacking weights come from their PSIS-LOO on the training runs (`az.compare(...,
method="stacking")`, Yao et al. 2018), and the stacked prediction draws from each law's
predictive in proportion to its weight. Printed per task: each law's MARE / 90 % coverage /
mean relative width (as benchmarks/extrapolation.py scores them), the stacking weights, the
stacked prediction, and the law LOO ranks first. A law the checker or the data check refuses
on a task (too few rows for its parameters) is left out of that task's stack and said so.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import arviz as az  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.extrapolation import score, use_cpu_devices  # noqa: E402
from benchmarks.tasks import MODELS, load_tasks  # noqa: E402
from infscale_dsl.errors import InfscaleError  # noqa: E402
from infscale_dsl.inference.fit import fit  # noqa: E402
from infscale_dsl.language import load_spec  # noqa: E402
from infscale_dsl.prediction.predict import predict_draws  # noqa: E402

SEED_TASKS = ["seed_86M", "seed_116M", "seed_126M", "seed_164M", "seed_178M", "seed_237M", "seed_313M",
              "seed_339M", "seed_1B", "seed_1B_main27", "seed_few6_bian"]
SEED_LAWS = ["bian2025.law", "bian2025_eta.law", "chinchilla_tied.law"]


def fit_law(task, law: str, seed: int) -> dict:
    """The law's predictive draws of the held-out runs (S, n_test) and its PSIS-LOO."""
    spec = load_spec(MODELS / law, columns=task.train.columns)
    result = fit(spec, task.train, seed=seed, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arviz warns on high Pareto k; the gate reports it
        loo = az.loo(result.idata, pointwise=True, var_name=task.response)
    return {"draws": predict_draws(result, task.test, seed=seed)[task.response].observed, "loo": loo,
            "gate_ok": bool(result.diagnostics["ok"])}


def stacked_draws(fits: dict[str, dict], weights: pd.Series, seed: int) -> np.ndarray:
    """Draws of every law in proportion to its weight: (about S, n_test)."""
    rng = np.random.default_rng(seed)
    parts = []
    for law, weight in weights.items():
        draws = fits[law]["draws"]
        take = int(round(weight * len(draws)))
        parts.append(draws[rng.choice(len(draws), take, replace=False)])
    return np.concatenate(parts)


def cell(truth: np.ndarray, draws: np.ndarray) -> dict:
    return score(truth, np.median(draws, 0), np.quantile(draws, 0.05, 0), np.quantile(draws, 0.95, 0))


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
        truth = task.test[task.response].to_numpy(float)
        fits, refused = {}, []
        for law in laws:
            try:
                fits[law] = fit_law(task, law, args.seed)
            except InfscaleError as error:  # e.g. fewer rows than the law has parameters
                refused.append(f"{law}: {str(error).splitlines()[0][:80]}")
        compared = az.compare({law: f["loo"] for law, f in fits.items()}, ic="loo", method="stacking")
        weights = compared["weight"].reindex(list(fits))
        row = {"task": task.name, "n_test": len(truth)}
        for law, f in fits.items():
            row[law] = cell(truth, f["draws"]) | {"gate_ok": f["gate_ok"]}
        row["stacked"] = cell(truth, stacked_draws(fits, weights, args.seed))
        row["weights"], row["first by LOO"], row["refused"] = weights.round(2).to_dict(), compared.index[0], refused
        rows.append(row)
        print(format_row(row, laws), flush=True)
    print(summary(rows, laws))


def format_row(row: dict, laws: list[str]) -> str:
    def text(c: dict | None) -> str:
        return "refused" if c is None else f"{100 * c['mare']:.2f} / {c['coverage90']:.2f} / {100 * c['rel_width90']:.1f}"
    parts = [f"{law.removesuffix('.law')} {text(row.get(law))}" for law in laws]
    weights = " ".join(f"{w:.2f}" for w in row["weights"].values())
    return (f"{row['task']:<15} n {row['n_test']:>3}  " + "  ".join(parts) + f"  | stacked {text(row['stacked'])}"
            f"  weights {weights}  first {row['first by LOO'].removesuffix('.law')}"
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
