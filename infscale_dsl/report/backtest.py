"""Backtest: fit without the held-out rows, predict them, and score the predictions.

The scores are the two a reader of a scaling-law paper wants (Choshen et al. 2024, "A
Hitchhiker's Guide to Scaling Law Estimation"): how often the 90% predictive interval covers the
held-out value, and the absolute relative error |median - actual| / actual of the point
prediction.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data import rows_matching
from ..errors import Diagnostic, LawError
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
    kept, held_out = split(table, holdout)
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
