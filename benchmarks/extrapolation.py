"""Extrapolation benchmark (issue 9, item 3): fit on smaller runs, predict larger ones.

    python benchmarks/extrapolation.py [--tasks a,b] [--quick] [--out rows.csv] [--seed 0]
                                       [--bootstraps 200] [--data ../shared/data]

Tasks are defined in benchmarks/tasks.py; the trajectory tasks (opt_finals, opt_checkpoints,
opt_curves, opt_curves_3 and sweep_*) compare final-loss fits with whole-curve fits. For each task and method it prints the median absolute
relative error of the predicted median (MARE), the coverage of the 90 % interval over the
held-out runs, the mean width of that interval relative to the truth, the number held out, the
wall time and, for infscale-dsl, whether the fit passed its diagnostics gate. Methods:
- infscale-dsl: `fit` at its defaults (4 chains x 500 + 500), `predict`'s median and 90 %
  interval of a new run;
- curve_fit: least squares on raw loss, the seed paper's method (benchmarks/baselines.py);
- huber_bootstrap: Besiroglu et al.'s Huber fit on log loss with bootstrap intervals.
A method that raises is reported as a crash row with the exception, and the script goes on.
Pooled coverage counts every held-out run of the tasks each method completed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpyro  # noqa: E402

numpyro.set_host_device_count(4)  # a CPU device per chain, before JAX starts

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.baselines import LawFunction, huber_bootstrap, least_squares  # noqa: E402
from benchmarks.tasks import Task, load_tasks  # noqa: E402
from infscale_dsl.fit import fit  # noqa: E402
from infscale_dsl.language import load_spec  # noqa: E402
from infscale_dsl.predict import predict  # noqa: E402

METHODS = ("infscale-dsl", "curve_fit", "huber_bootstrap")
COLUMNS = ["task", "method", "law", "n_train", "n_test", "mare", "coverage90", "rel_width90",
           "covered", "wall_s", "gate_ok", "error"]


def score(truth: np.ndarray, median: np.ndarray, q05: np.ndarray, q95: np.ndarray) -> dict:
    covered = (q05 <= truth) & (truth <= q95)
    return {"mare": float(np.median(np.abs(median - truth) / truth)),
            "coverage90": float(covered.mean()) if np.all(np.isfinite(q05)) else np.nan,
            "rel_width90": float(np.mean((q95 - q05) / truth)),
            "covered": int(covered.sum())}


def run_method(method: str, task: Task, args) -> dict:
    spec = load_spec(task.spec, columns=task.train.columns)
    truth = task.test[task.response].to_numpy(float)
    row = {"gate_ok": None}
    if method == "infscale-dsl":
        settings = dict(warmup=200, draws=200) if args.quick else {}
        result = fit(spec, task.train, seed=args.seed, progress=False, **settings)
        frame = predict(result, task.test, seed=args.seed)
        r = task.response
        parts = frame[f"{r}_median"], frame[f"{r}_q05"], frame[f"{r}_q95"]
        row["gate_ok"] = bool(result.diagnostics["ok"])
    elif method == "curve_fit":
        parts = least_squares(LawFunction(spec, task.response), task.train, task.test, seed=args.seed)
    else:
        parts = huber_bootstrap(LawFunction(spec, task.response), task.train, task.test,
                                bootstraps=args.bootstraps, seed=args.seed)
    return row | score(truth, *(np.asarray(p, float) for p in parts))


def run_task(task: Task, args) -> list[dict]:
    rows = []
    for method in args.methods:
        start = time.perf_counter()
        base = {"task": task.name, "method": method, "law": task.law, "n_train": len(task.train),
                "n_test": len(task.test)}
        try:
            row = base | run_method(method, task, args) | {"error": ""}
        except Exception as error:  # a crash is a result: record it and go on
            last = traceback.extract_tb(error.__traceback__)[-1]
            where = f"{Path(last.filename).name}:{last.lineno}"
            message = (str(error).splitlines() or [repr(error)])[0][:160]
            row = base | {"error": f"{type(error).__name__} at {where}: {message}"}
        row["wall_s"] = time.perf_counter() - start
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def format_row(row: dict) -> str:
    if row.get("error"):
        return f"{row['task']:<22} {row['method']:<16} CRASH {row['error']}"
    gate = "" if row["gate_ok"] is None else ("ok" if row["gate_ok"] else "FAILED")
    return (f"{row['task']:<22} {row['method']:<16} {100 * row['mare']:7.2f} % {row['coverage90']:6.2f} "
            f"{100 * row['rel_width90']:7.2f} % {row['n_test']:5d} {row['wall_s']:8.1f} s  {gate}")


def pooled(rows: list[dict]) -> str:
    lines = ["", "pooled over completed tasks: method, held out, 90 % coverage, median of task MAREs"]
    for method in dict.fromkeys(r["method"] for r in rows):
        done = [r for r in rows if r["method"] == method and not r.get("error")
                and np.isfinite(r["coverage90"])]
        held = sum(r["n_test"] for r in done)
        if held:
            mare = np.median([r["mare"] for r in done])
            lines.append(f"  {method:<16} {held:5d} {sum(r['covered'] for r in done) / held:6.3f}  "
                         f"{100 * mare:.2f} %  ({len(done)} tasks)")
    return "\n".join(lines)


def write_csv(rows: list[dict], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp, index=False)
    os.replace(tmp, path)  # readers never see a half-written file


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", help="comma-separated task names (default: all)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated, from {', '.join(METHODS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="200 + 200 draws per chain, 50 bootstraps")
    parser.add_argument("--bootstraps", type=int, help="bootstrap refits of the Huber baseline (default 200)")
    parser.add_argument("--out", type=Path, help="CSV of per-task rows, rewritten after each task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", help="folder of the public tables (default ../shared/data)")
    args = parser.parse_args()
    args.bootstraps = args.bootstraps or (50 if args.quick else 200)
    args.methods = args.methods.split(",")
    if set(args.methods) - set(METHODS):
        parser.error(f"--methods: choose from {', '.join(METHODS)}")
    tasks = load_tasks(args.tasks.split(",") if args.tasks else None, args.data)
    print(f"{'task':<22} {'method':<16} {'MARE':>9} {'cov90':>6} {'width90':>9} {'n_out':>5} "
          f"{'wall':>10}  gate", flush=True)
    rows = []
    for task in tasks:
        rows += run_task(task, args)
        if args.out:
            write_csv(rows, args.out)
    print(pooled(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
