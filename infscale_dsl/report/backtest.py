"""Backtest: fit without the held-out rows, predict them, and score the predictions.

The scores are the two a reader of a scaling-law paper wants (Choshen et al. 2024, "A
Hitchhiker's Guide to Scaling Law Estimation"): how often the 90% predictive interval covers the
held-out value, and the absolute relative error |median - actual| / actual of the point
prediction.

`backtests` runs several hold-out rules at once, one fit per rule, through an executor
(`infscale_dsl.executors`): local processes by default, Ray or SLURM when asked.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data import rows_matching
from ..errors import Diagnostic, LawError
from ..executors import Executor, make_executor
from ..fit import fit
from ..language.ast import CheckedSpec
from ..posterior import FitResult
from ..predict import predict


@dataclass
class BacktestScore:
    response: str
    n_fit: int
    n_held_out: int
    coverage_90: float  # share of held-out values inside their 90% predictive interval
    mean_abs_rel_error: float
    max_abs_rel_error: float


@dataclass
class Backtest:
    holdout: str
    result: FitResult  # the fit without the held-out rows
    predictions: pd.DataFrame  # held-out rows + {r}_median, {r}_q05, {r}_q95, {r}_covered, {r}_abs_rel_error
    scores: list[BacktestScore]


def split(table: pd.DataFrame, holdout: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows to fit, rows held out) by a pandas query string such as "N >= 1e9"."""
    held = rows_matching(table, holdout)
    if not held.any() or held.all():
        raise LawError(Diagnostic(
            f"the hold-out rule {holdout!r} holds out {int(held.sum())} of {len(table)} rows",
            hint="choose a rule that leaves rows on both sides"))
    return table[~held], table[held]


def score(result: FitResult, held_out: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, list[BacktestScore]]:
    predictions = predict(result, held_out, seed=seed)
    scores = []
    for law in result.spec.laws:
        column = result.spec.data[law.response].column
        if column not in held_out.columns:
            continue
        r = law.response
        actual = held_out[column].to_numpy(dtype=float)
        present = np.isfinite(actual)
        if not present.any():
            continue
        predictions[f"{r}_covered"] = (predictions[f"{r}_q05"] <= actual) & (actual <= predictions[f"{r}_q95"])
        predictions[f"{r}_abs_rel_error"] = np.abs(predictions[f"{r}_median"] - actual) / np.abs(actual)
        errors = predictions[f"{r}_abs_rel_error"].to_numpy()[present]
        scores.append(BacktestScore(
            response=r, n_fit=result.n_obs[r], n_held_out=int(present.sum()),
            coverage_90=float(predictions[f"{r}_covered"].to_numpy()[present].mean()),
            mean_abs_rel_error=float(errors.mean()), max_abs_rel_error=float(errors.max()),
        ))
    return predictions, scores


def backtest(spec: CheckedSpec, table: pd.DataFrame, holdout: str, *, seed: int = 0, **fit_options) -> Backtest:
    """Fit `spec` on the rows the rule keeps, score its predictions of the rows it holds out."""
    return _fit_and_score(spec, *split(table, holdout), holdout, seed, fit_options)


def backtests(spec: CheckedSpec, table: pd.DataFrame, holdouts: list[str], *, executor: Executor | None = None,
              workers: int = 2, seed: int = 0, **fit_options) -> list[Backtest]:
    """One backtest per hold-out rule, their fits side by side on `executor` (default: `workers`
    local processes). Returned in the order of `holdouts`; a failed fit raises after all finish."""
    tasks = [(spec, *split(table, holdout), holdout, seed, fit_options) for holdout in holdouts]
    own = executor is None
    executor = executor or make_executor("local", workers)
    try:
        outcomes = sorted(executor.map(_fit_and_score, tasks), key=lambda outcome: outcome.index)
    finally:
        if own:
            executor.close()
    failed = [Diagnostic(f"the backtest holding out {holdouts[o.index]!r} failed: {o.error_line()}")
              for o in outcomes if o.error is not None]
    if failed:
        raise LawError(failed)
    return [outcome.value for outcome in outcomes]


def _fit_and_score(spec: CheckedSpec, kept: pd.DataFrame, held_out: pd.DataFrame, holdout: str, seed: int,
                   fit_options: dict) -> Backtest:
    result = fit(spec, kept, seed=seed, **fit_options)
    predictions, scores = score(result, held_out, seed=seed)
    return Backtest(holdout, result, predictions, scores)


def describe(backtest: Backtest) -> str:
    lines = [f"backtest, holding out {backtest.holdout!r}:"]
    for s in backtest.scores:
        lines.append(f"  {s.response}: fitted on {s.n_fit} rows, {s.n_held_out} held out; 90% interval "
                     f"coverage {s.coverage_90:.2f}; absolute relative error mean {s.mean_abs_rel_error:.4f}, "
                     f"max {s.max_abs_rel_error:.4f}")
    if not backtest.result.diagnostics["ok"]:
        lines.append("  warning: the fit failed its diagnostics: " + "; ".join(backtest.result.diagnostics["problems"]))
    return "\n".join(lines)
