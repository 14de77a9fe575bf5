"""Could each table choose its own noise? Normal against Student-t noise by PSIS-LOO, per task.

    python benchmarks/noise_by_loo.py [--tasks a,b] [--data ../shared/data] [--seed 0]
                                      [--baselines benchmarks/results/.../extrapolation_own_coverage.csv]

The default noise is a rule measured on these tasks (Student-t from 10 rows per law parameter,
Normal below: README, Fitting). A table could instead choose for itself, as a Bayesian workflow
compares models: fit the law with each noise and keep the one whose expected log predictive
density on the fitted rows (PSIS-LOO, `compare_fits`) is higher. This fits every task both
ways and prints, per task, each noise's held-out MARE %, coverage and width %, the LOO
difference (Student-t minus Normal, with its SE) and which noise the rule and LOO pick. Then
per choice (always Normal, always Student-t, the rule, LOO): the median of task MAREs, the pooled
coverage, and, given a CSV of the extrapolation benchmark's rows, the tasks whose error is
within 10 % of the better baseline's.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drift_default import MAIN_TASKS  # noqa: E402  (one row per run: LOO leaves out a run)
from extrapolation import score, task_arguments, use_cpu_devices  # noqa: E402
from tasks import load_tasks  # noqa: E402

FAMILIES = {"Normal": "Normal on log", "StudentT": "StudentT(nu=4) on log"}


def fit_both(task, seed: int) -> dict:
    """The task fitted with each noise: its scores, the LOO table, and the noise the rule chose."""
    from infscale_dsl.inference.fit import fit
    from infscale_dsl.language import load_spec
    from infscale_dsl.model.likelihood import default_noise, law_parameters
    from infscale_dsl.posterior.compare import compare_fits
    from infscale_dsl.prediction.predict import predict

    text = task.spec.read_text() if isinstance(task.spec, Path) else task.spec
    fits, cells = {}, {}
    for family, noise in FAMILIES.items():
        spec = load_spec(text + f"\n{task.response} noise {noise}\n", columns=task.train.columns)
        fits[family] = fit(spec, task.train, seed=seed, progress=False)
        frame = predict(fits[family], task.test, seed=seed)
        r = task.response
        cells[family] = score(task.test[r].to_numpy(float), *(frame[f"{r}_{q}"].to_numpy(float)
                                                              for q in ("median", "q05", "q95")))
    law = fits["Normal"].spec.law_for(task.response)
    rule = default_noise(len(task.train), len(law_parameters(fits["Normal"].spec, law))).family
    table = compare_fits(fits, task.response).table
    elpd = table["elpd_loo"]
    # az.compare's dse is the SE of the difference from the best-ranked model
    return {"cells": cells, "loo_pick": str(table.index[0]), "difference": float(elpd["StudentT"] - elpd["Normal"]),
            "dse": float(table["dse"].max()), "rule_pick": rule}


def main() -> int:
    sys.argv, baselines = _pop_option(sys.argv, "--baselines")
    args = task_arguments(__doc__, MAIN_TASKS)
    use_cpu_devices(4)
    rows = {}
    print(f"{'task':<22} {'Normal: MARE / cov / width':>28} {'Student-t':>24}  {'elpd t - N':>12}  rule  LOO")
    for task in load_tasks(args.tasks.split(","), args.data):
        out = rows[task.name] = fit_both(task, args.seed) | {"n_test": len(task.test)}
        cells = ["{:5.2f} / {:.2f} / {:5.1f}".format(100 * c["mare"], c["coverage90"], 100 * c["rel_width90"])
                 for c in out["cells"].values()]
        print(f"{task.name:<22} {cells[0]:>28} {cells[1]:>24}  {out['difference']:6.1f} +-{out['dse']:4.1f}  "
              f"{out['rule_pick']:<8} {out['loo_pick']}", flush=True)
    better = _better_baseline(baselines) if baselines else None
    print(f"\n{'choice':<10} {'median MARE':>11} {'pooled cov90':>12}  within 10 % of the better baseline")
    for choice in ("Normal", "StudentT", "rule", "LOO"):
        picked = {t: r["cells"][{"rule": r["rule_pick"], "LOO": r["loo_pick"]}.get(choice, choice)]
                  for t, r in rows.items()}
        covered = sum(c["covered"] for c in picked.values()) / sum(r["n_test"] for r in rows.values())
        within = "-" if better is None else sum(
            c["mare"] <= 1.1 * better[t] for t, c in picked.items() if t in better)
        print(f"{choice:<10} {100 * np.median([c['mare'] for c in picked.values()]):10.2f} % {covered:12.3f}  {within}")
    return 0


def _better_baseline(path: str) -> dict[str, float]:
    rows = pd.read_csv(path)
    rows = rows[rows["method"].isin(["curve_fit", "huber_bootstrap"])]
    return rows.groupby("task")["mare"].min().to_dict()


def _pop_option(argv: list[str], name: str) -> tuple[list[str], str | None]:
    """argv without `name VALUE`, and VALUE (task_arguments parses the rest)."""
    if name not in argv:
        return argv, None
    i = argv.index(name)
    return argv[:i] + argv[i + 2:], argv[i + 1]


if __name__ == "__main__":
    sys.exit(main())
