"""Extrapolation benchmark (issue 9, item 3): fit on smaller runs, predict larger ones.

    python benchmarks/extrapolation.py [--tasks a,b] [--quick] [--out rows.csv] [--seed 0]
                                       [--bootstraps 200] [--data ../shared/data]
                                       [--on local|ray] [--workers N] [--address ray://...]

Tasks are defined in benchmarks/tasks.py; the trajectory tasks (opt_finals, opt_checkpoints,
opt_curves, opt_curves_3 and sweep_*) compare final-loss fits with whole-curve fits. For each task and method it prints the median absolute
relative error of the predicted median (MARE), the coverage of the 90 % interval over the
held-out runs and its two-sided binomial p-value against 0.90 (`p`: few held-out runs cannot
show a coverage between 0.80 and 0.97, so a task is judged by p), the same coverage's p-value
among the coverages the method's own joint draws expect (`p_own`, prediction/coverage.py: the
held-out runs of a task share its fit's error, which the binomial ignores), the mean width of
that interval relative to the truth, the number held out, the wall time and, for infscale-dsl,
whether the fit passed its diagnostics gate. Methods:
- infscale-dsl: `fit` at its defaults (4 chains x 500 + 500), `predict`'s median and 90 %
  interval of a new run;
- curve_fit: least squares on raw loss, the seed paper's method (benchmarks/baselines.py);
- huber_bootstrap: Besiroglu et al.'s Huber fit on log loss with bootstrap intervals.
A method that raises is reported as a crash row with the exception, and the script goes on.
Pooled coverage counts every held-out run of the tasks each method completed; beside it, the
count its own draws expect over those tasks, their fits taken as independent.

Each (task, method) fit is an independent task of an executor (infscale_dsl/executors.py): by
default as many local processes as cores, `--workers 1` one after another in this process,
`--on ray` a Ray instance. Seeds are fixed per fit, so every executor prints the same rows (the
wall times aside); rows print as fits finish, the CSV and the summary keep the task order.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # local workers and Ray's get this path too
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import binomtest, norm  # noqa: E402

from benchmarks.baselines import LawFunction, huber_bootstrap, least_squares  # noqa: E402
from benchmarks.tasks import Task, load_tasks  # noqa: E402
from infscale_dsl.cli.arguments import positive_int  # noqa: E402
from infscale_dsl.executors import Executor, make_executor  # noqa: E402
from infscale_dsl.inference.fit import fit  # noqa: E402
from infscale_dsl.language import load_spec  # noqa: E402
from infscale_dsl.posterior.result import FitResult  # noqa: E402
from infscale_dsl.prediction.coverage import coverage_p as own_coverage_p, covered_counts  # noqa: E402
from infscale_dsl.prediction.predict import add_columns, predict_draws  # noqa: E402

METHODS = ("infscale-dsl", "curve_fit", "huber_bootstrap")
COLUMNS = ["task", "method", "law", "n_train", "n_test", "mare", "coverage90", "rel_width90",
           "covered", "p_own", "own_mean", "own_sd", "wall_s", "gate_ok", "error"]


@dataclass(frozen=True)
class Settings:
    """What every fit of a run shares."""
    seed: int = 0
    bootstraps: int = 200  # refits of the Huber baseline
    fit: dict = field(default_factory=dict)  # infscale-dsl's fit options beyond its defaults


def use_cpu_devices(count: int) -> None:
    """A CPU device per NUTS chain in this process, unless XLA_FLAGS already sets a count (the
    driver's, inherited by local workers; a test's). JAX reads it when it first computes."""
    if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        numpyro.set_host_device_count(count)


def task_arguments(doc: str, default_tasks: Sequence[str]) -> argparse.Namespace:
    """--tasks, --data and --seed: the options of a script that fits tasks one by one in this
    process (drift_default.py, interval_parts.py)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(default_tasks), help="comma-separated task names")
    parser.add_argument("--data", help="folder of the public tables (default ../shared/data)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def fit_each(args: argparse.Namespace) -> Iterator[tuple[Task, FitResult]]:
    """Each task that `task_arguments` names, fitted at `fit`'s defaults, a CPU device per chain."""
    use_cpu_devices(4)
    for task in load_tasks(args.tasks.split(","), args.data):
        yield task, fit(load_spec(task.spec, columns=task.train.columns), task.train, seed=args.seed, progress=False)


def score(truth: np.ndarray, median: np.ndarray, q05: np.ndarray, q95: np.ndarray,
          draws: np.ndarray | None = None) -> dict:
    """The cells of a row; `draws` (S, n): the method's joint draws of the held-out runs, if it has them."""
    covered = (q05 <= truth) & (truth <= q95)
    counts = covered_counts(draws, q05, q95) if draws is not None else np.array([np.nan])
    own = own_coverage_p(int(covered.sum()), counts) if draws is not None else np.nan
    return {"mare": float(np.median(np.abs(median - truth) / truth)),
            "coverage90": float(covered.mean()) if np.all(np.isfinite(q05)) else np.nan,
            "rel_width90": float(np.mean((q95 - q05) / truth)),
            "covered": int(covered.sum()), "p_own": own,
            "own_mean": float(np.mean(counts)), "own_sd": float(np.std(counts))}


def run_method(method: str, task: Task, settings: Settings) -> dict:
    spec = load_spec(task.spec, columns=task.train.columns)
    truth = task.test[task.response].to_numpy(float)
    row = {"gate_ok": None}
    if method == "infscale-dsl":
        result = fit(spec, task.train, seed=settings.seed, progress=False, **settings.fit)
        draws = predict_draws(result, task.test, seed=settings.seed)[task.response]
        frame = task.test.copy()
        add_columns(frame, task.response, draws)
        r = task.response
        parts = frame[f"{r}_median"], frame[f"{r}_q05"], frame[f"{r}_q95"], draws.observed
        row["gate_ok"] = bool(result.diagnostics["ok"])
    elif method == "curve_fit":
        parts = least_squares(LawFunction(spec, task.response), task.train, task.test, seed=settings.seed)
    else:
        parts = huber_bootstrap(LawFunction(spec, task.response), task.train, task.test,
                                bootstraps=settings.bootstraps, seed=settings.seed)
    median, q05, q95, draws = parts
    return row | score(truth, *(np.asarray(p, float) for p in (median, q05, q95)), draws)


def run_one(task: Task, method: str, settings: Settings) -> dict:
    """One method on one task, timed: a task of the executor, in whichever process runs it."""
    use_cpu_devices(settings.fit.get("chains", 4))  # a worker is a fresh process: JAX has not started
    start = time.perf_counter()
    try:
        row = base_row(task, method) | run_method(method, task, settings) | {"error": ""}
    except Exception as error:  # a crash is a result: record it and go on
        last = traceback.extract_tb(error.__traceback__)[-1]
        where = f"{Path(last.filename).name}:{last.lineno}"
        message = (str(error).splitlines() or [repr(error)])[0][:160]
        row = base_row(task, method) | {"error": f"{type(error).__name__} at {where}: {message}"}
    return row | {"wall_s": time.perf_counter() - start}


def base_row(task: Task, method: str) -> dict:
    return {"task": task.name, "method": method, "law": task.law, "n_train": len(task.train), "n_test": len(task.test)}


def run_all(tasks: list[Task], methods: list[str], settings: Settings, executor: Executor,
            out: Path | None = None) -> list[dict]:
    """A row per task and method, in that order, whatever order the fits finish in. Each row is
    printed as it comes, and `out` rewritten."""
    jobs = [(task, method, settings) for task in tasks for method in methods]
    rows: list[dict | None] = [None] * len(jobs)
    for outcome in executor.map(run_one, jobs):
        task, method, _ = jobs[outcome.index]
        row = outcome.value if outcome.error is None else (  # the worker died: no row came back
            base_row(task, method) | {"error": f"worker: {outcome.error_line()}"})
        rows[outcome.index] = row
        print(format_row(row), flush=True)
        if out:
            write_csv([r for r in rows if r is not None], out)
    return rows


def coverage_p(covered: int, held_out: int) -> float:
    """Two-sided binomial p-value of `covered` of `held_out` under a true coverage of 0.90. On a
    task of 4 held-out runs the coverage is 0.75 or 1.00, never between 0.80 and 0.97; 4 of 4
    happens with probability 0.66 for calibrated intervals (p 1.0), so a task is judged by p."""
    return float(binomtest(int(covered), int(held_out), 0.9).pvalue) if held_out else float("nan")


def format_row(row: dict) -> str:
    if row.get("error"):
        return f"{row['task']:<22} {row['method']:<16} CRASH {row['error']}"
    gate = "" if pd.isna(row["gate_ok"]) else ("ok" if row["gate_ok"] else "FAILED")  # None or a CSV's NaN
    p = coverage_p(row["covered"], row["n_test"]) if np.isfinite(row["coverage90"]) else np.nan
    own = row.get("p_own", np.nan)  # absent from CSVs written before it was
    return (f"{row['task']:<22} {row['method']:<16} {100 * row['mare']:7.2f} % {row['coverage90']:6.2f} "
            f"{p:6.2f} {own:6.2f} {100 * row['rel_width90']:7.2f} % {row['n_test']:5d} {row['wall_s']:8.1f} s  {gate}")


HEADER = (f"{'task':<22} {'method':<16} {'MARE':>9} {'cov90':>6} {'p':>6} {'p_own':>6} {'width90':>9} {'n_out':>5} "
          f"{'wall':>10}  gate")


def pooled(rows: list[dict]) -> str:
    lines = ["", "pooled over completed tasks: method, held out, 90 % coverage (binomial p against 0.90), "
                 "median of task MAREs; tasks whose coverage is off 0.90 at p < 0.05 (binomial; by the method's "
                 "own draws, p_own)"]
    for method in dict.fromkeys(r["method"] for r in rows):
        done = [r for r in rows if r["method"] == method and not r.get("error")
                and np.isfinite(r["coverage90"])]
        held = sum(r["n_test"] for r in done)
        if held:
            mare = np.median([r["mare"] for r in done])
            covered = sum(r["covered"] for r in done)
            off = [f"{r['task']} ({r['coverage90']:.2f})" for r in done if coverage_p(r["covered"], r["n_test"]) < 0.05]
            off_own = [f"{r['task']} ({r['coverage90']:.2f})" for r in done if r.get("p_own", np.nan) < 0.05]
            lines.append(f"  {method:<16} {held:5d} {covered / held:6.3f} (p {coverage_p(covered, held):.2f})  "
                         f"{100 * mare:.2f} %  ({len(done)} tasks); off: {', '.join(off) or 'none'}; "
                         f"off by its own draws: {', '.join(off_own) or 'none'}")
            lines.append(f"  {'':<16} {pooled_own(done)}")
    return "\n".join(lines + error_ratios(rows))


def error_ratios(rows: list[dict], resamples: int = 10_000) -> list[str]:
    """Each method's median errors against each other's over the tasks both completed: the
    geometric mean of the MARE ratio with a bootstrap 90 % interval over tasks (seed 0), and the
    tasks where the first errs less; then, per method, the tasks where its error is within 10 %
    of the best other method's (issue 9's rule)."""
    mare = pd.DataFrame([r for r in rows if not r.get("error")]).pivot(index="task", columns="method", values="mare")
    mare = mare[[m for m in METHODS if m in mare.columns]]  # the script's order, not the alphabet's
    if mare.shape[1] < 2:
        return []
    lines = ["", "median errors against each other: geometric mean of the MARE ratio over the tasks both "
                 "completed (bootstrap 90 % interval over tasks), tasks where the first errs less"]
    rng = np.random.default_rng(0)
    for first, second in itertools.combinations(mare.columns, 2):
        log_ratio = np.log(mare[first] / mare[second]).dropna().to_numpy()
        means = rng.choice(log_ratio, (resamples, len(log_ratio))).mean(axis=1)
        low, high = np.exp(np.quantile(means, [0.05, 0.95]))
        lines.append(f"  {first} / {second}: {np.exp(log_ratio.mean()):.2f} ({low:.2f} to {high:.2f}), "
                     f"{int(np.sum(log_ratio < 0))} of {len(log_ratio)} tasks")
    for method in mare.columns:
        best_other = mare.drop(columns=method).min(axis=1)
        known = mare[method].notna()
        within = int(np.sum(mare[method][known] <= 1.1 * best_other[known]))
        lines.append(f"  {method}: within 10 % of the best other method's error on {within} of {int(known.sum())} tasks")
    return lines


def pooled_own(done: list[dict]) -> str:
    """The runs covered over all tasks against what the method's own draws expect, the tasks'
    fits taken as independent: the sum of their expected counts, SD from the sum of variances,
    and a two-sided p-value by the normal approximation."""
    known = [r for r in done if np.isfinite(r.get("own_mean", np.nan))]
    if not known:
        return "by its own draws: no draws"
    covered, held = sum(r["covered"] for r in known), sum(r["n_test"] for r in known)
    mean, sd = sum(r["own_mean"] for r in known), np.sqrt(sum(r["own_sd"] ** 2 for r in known))
    p = 2 * norm.sf(abs(covered - mean) / sd) if sd > 0 else float(covered == mean)
    return (f"by its own draws: {covered} of {held} covered where {mean:.0f} +- {sd:.0f} were expected "
            f"(p_own {p:.2f}, {len(known)} tasks)")


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
    parser.add_argument("--out", type=Path, help="CSV of per-task rows, rewritten after each fit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", help="folder of the public tables (default ../shared/data)")
    parser.add_argument("--on", choices=("local", "ray"), default="local", help="where the fits run (default local)")
    parser.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                        help="fits at once: local processes (1: one after another in this process) or "
                             "a local Ray instance's CPUs (default: one per core)")
    parser.add_argument("--address", help="Ray cluster to join (default: a local Ray instance)")
    parser.add_argument("--render", type=Path, nargs="+", metavar="CSV",
                        help="print the table of CSVs written by --out instead of fitting")
    args = parser.parse_args()
    methods = args.methods.split(",")
    if set(methods) - set(METHODS):
        parser.error(f"--methods: choose from {', '.join(METHODS)}")
    settings = Settings(seed=args.seed, bootstraps=args.bootstraps or (50 if args.quick else 200),
                        fit=dict(warmup=200, draws=200) if args.quick else {})
    if args.render:
        rows = pd.concat([pd.read_csv(path) for path in args.render]).to_dict("records")
        rows = [r | {"error": r["error"] if isinstance(r["error"], str) else ""} for r in rows]
        print("\n".join([HEADER] + [format_row(r) for r in rows]) + "\n" + pooled(rows))
        return 0
    tasks = load_tasks(args.tasks.split(",") if args.tasks else None, args.data)
    print(HEADER, flush=True)
    with make_executor(args.on, args.workers, args.address) as executor:
        rows = run_all(tasks, methods, settings, executor, args.out)
    print(pooled(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
