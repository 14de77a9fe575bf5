"""Backtest: fit without the held-out rows, predict them, and score the predictions.

The scores are the two a reader of a scaling-law paper wants (Choshen et al. 2024, "A
Hitchhiker's Guide to Scaling Law Estimation"): how often the 90% predictive interval covers the
held-out value, and the absolute relative error |median - actual| / actual of the point
prediction. Beside the coverage stands what the fit itself expects it to be (coverage.py): the
held-out runs share the fit's error, so even calibrated intervals cover all of them on one
table and far fewer on another, and a binomial test would call both wrong.

`backtests` runs several hold-outs at once, one fit per hold-out, through an executor
(`infscale_dsl.executors`): local processes by default, Ray or SLURM when asked. `group_holdouts`
and `top_holdouts` write the usual sets of hold-outs (each size group predicted from the smaller
ones; the top tenth, fifth, ... of the runs), and `pooled` scores every held-out prediction at once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..model.data import prepare, rows_matching
from ..errors import ConfigError, DataError, Diagnostic, InfscaleError
from ..executors import Executor, make_executor
from ..inference.fit import fit
from ..language.ast import CheckedSpec
from ..posterior.result import FitResult
from ..prediction.coverage import coverage_p, covered_counts, expected_range, pooled_counts
from ..prediction.predict import add_columns, predict_draws


@dataclass
class BacktestScore:
    response: str
    n_fit: int | None  # None when pooled over hold-outs that fitted different rows
    n_held_out: int
    coverage_90: float  # share of held-out values inside their 90% predictive interval
    mean_abs_rel_error: float
    max_abs_rel_error: float
    median_abs_rel_error: float  # MARE, as the extrapolation benchmark reports it
    mean_rel_width_90: float  # mean (q95 - q05) / |actual|
    # the coverage's central 90 % were the fit right (each joint predictive draw read as the truth),
    # and the two-sided p-value of the coverage seen among them (coverage.py)
    coverage_90_expected: tuple[float, float]
    coverage_90_p: float


@dataclass(frozen=True)
class Holdout:
    """Rows to predict (`rule`) and rows to fit (`fit_on`, default: all the others), as pandas
    queries such as "N >= 1e9"."""
    rule: str
    fit_on: str | None = None


@dataclass
class Backtest:
    holdout: str  # the rule of the rows held out
    result: FitResult  # the fit without the held-out rows
    predictions: pd.DataFrame  # held-out rows + {r}_median, _q05, _q95, _covered, _abs_rel_error, _rel_width
    scores: list[BacktestScore]
    covered_draws: dict[str, np.ndarray]  # response -> (S,) held-out runs covered were draw s the truth


def split(table: pd.DataFrame, holdout: str | Holdout,
          filename: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows to fit, rows held out) by a hold-out or a pandas query string such as "N >= 1e9"."""
    holdout = _as_holdout(holdout)
    held = rows_matching(table, holdout.rule, filename)
    fitted = ~held if holdout.fit_on is None else ~held & rows_matching(table, holdout.fit_on, filename)
    if not held.any() or not fitted.any():
        raise ConfigError(Diagnostic(
            f"the hold-out rule {holdout.rule!r} holds out {int(held.sum())} of {len(table)} rows "
            f"and leaves {int(fitted.sum())} to fit", filename=filename,
            hint="choose a rule that leaves rows on both sides"))
    return table[fitted], table[held]


def fittable(spec: CheckedSpec, table: pd.DataFrame, holdouts: list[str | Holdout],
             filename: str | None = None) -> tuple[list[Holdout], list[str]]:
    """The hold-outs whose rows to fit pass the data checks, and a line for each that does not
    (the smallest size group left with fewer rows than the law has parameters, say), before any
    fit runs. A problem of the whole table raises as it is; DataError if no hold-out is left."""
    fitted = [(holdout, split(table, holdout, filename)[0]) for holdout in map(_as_holdout, holdouts)]  # rules first
    prepare(spec, table, filename=filename)
    kept, skipped = [], []
    for holdout, rows in fitted:
        try:
            prepare(spec, rows, filename=filename)
            kept.append(holdout)
        except DataError as error:
            skipped.append(f"holding out {holdout.rule!r}: {error.diagnostics[0].message}")
    if not kept:
        raise DataError([Diagnostic(f"no hold-out can be fitted: {line}", filename=filename,
                                    hint="hold out fewer rows, e.g. --holdout-top 0.1") for line in skipped])
    return kept, skipped


def group_holdouts(table: pd.DataFrame, column: str, rank_by: str) -> list[Holdout]:
    """Each group of `column` but the smallest held out in turn and predicted from the groups
    smaller than it, groups ordered by their median `rank_by` (the extrapolation a scaling law
    is for: fit the small models, predict the next size up)."""
    for name in (column, rank_by):
        if name not in table.columns:
            raise ConfigError(Diagnostic(f"the table has no column {name!r} to form hold-outs by",
                                         hint=f"use one of {', '.join(map(str, table.columns))}"))
    if not pd.api.types.is_numeric_dtype(table[rank_by]):
        raise ConfigError(Diagnostic(f"cannot order the groups of {column!r} by {rank_by!r}: it is not numeric",
                                     hint="name a numeric column such as the parameter count with --rank-by"))
    order = table.groupby(column)[rank_by].median().sort_values().index.tolist()
    if len(order) < 2:
        raise ConfigError(Diagnostic(f"{column!r} has {len(order)} group: nothing larger to predict",
                                     hint="hold out by a column with two or more groups"))
    name = _quoted(column)
    return [Holdout(f"{name} == {group!r}", f"{name} in {order[:i]!r}") for i, group in enumerate(order[1:], 1)]


def top_holdouts(fractions: list[float], rank_by: str) -> list[Holdout]:
    """The top `fraction` of the rows by `rank_by` held out, one hold-out per fraction."""
    name = _quoted(rank_by)
    return [Holdout(f"{name} >= {name}.quantile({1 - fraction:g})") for fraction in fractions]


def _quoted(column: str) -> str:
    return column if column.isidentifier() else f"`{column}`"  # pandas' quoting of odd column names


def score(result: FitResult, held_out: pd.DataFrame,
          seed: int = 0) -> tuple[pd.DataFrame, list[BacktestScore], dict[str, np.ndarray]]:
    """The held-out rows with their predictions and scores, the scores per response, and per
    response the runs covered were each joint predictive draw the truth (coverage.py)."""
    draws = predict_draws(result, held_out, seed=seed)
    predictions = held_out.copy()
    scores, covered_draws = [], {}
    for law in result.spec.laws:
        add_columns(predictions, law.response, draws[law.response])
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
        predictions[f"{r}_rel_width"] = (predictions[f"{r}_q95"] - predictions[f"{r}_q05"]) / np.abs(actual)
        interval = (predictions[f"{r}_q05"].to_numpy()[present], predictions[f"{r}_q95"].to_numpy()[present])
        covered_draws[r] = covered_counts(draws[r].observed[:, present], *interval)
        scores.append(_summary(r, result.n_obs[r], predictions[present], covered_draws[r]))
    return predictions, scores, covered_draws


def pooled(backtests: list[Backtest]) -> list[BacktestScore]:
    """Per response, the scores of every held-out prediction of every backtest together (a row
    that two hold-outs predict counts twice: those are two predictions). The expected coverage
    takes the hold-outs' fits as independent."""
    scores = []
    rng = np.random.default_rng(0)  # pairs the fits' draws: the same pooled figures every time
    for response in dict.fromkeys(s.response for b in backtests for s in b.scores):
        scored = [b for b in backtests if response in b.covered_draws]
        column = backtests[0].result.spec.data[response].column
        rows = pd.concat([b.predictions[b.predictions[column].notna()] for b in scored])
        counts = pooled_counts([b.covered_draws[response] for b in scored], rng)
        scores.append(_summary(response, None, rows, counts))
    return scores


def all_predictions(backtests: list[Backtest]) -> pd.DataFrame:
    """Every backtest's predictions in one table, the hold-out's rule in a first column."""
    frame = pd.concat([b.predictions.assign(holdout=b.holdout) for b in backtests])
    return frame[["holdout", *frame.columns.drop("holdout")]]


def _summary(response: str, n_fit: int | None, rows: pd.DataFrame, covered_draws: np.ndarray) -> BacktestScore:
    """The scores of `response` over predictions that have their actual value; `covered_draws`
    (S,): how many of them the fit's own draws would have covered."""
    errors = rows[f"{response}_abs_rel_error"].to_numpy(dtype=float)
    covered = int(rows[f"{response}_covered"].sum())
    return BacktestScore(
        response=response, n_fit=n_fit, n_held_out=len(rows),
        coverage_90=covered / len(rows),
        mean_abs_rel_error=float(errors.mean()), max_abs_rel_error=float(errors.max()),
        median_abs_rel_error=float(np.median(errors)),
        mean_rel_width_90=float(rows[f"{response}_rel_width"].mean()),
        coverage_90_expected=expected_range(covered_draws, len(rows)),
        coverage_90_p=coverage_p(covered, covered_draws))


def backtest(spec: CheckedSpec, table: pd.DataFrame, holdout: str | Holdout, *, seed: int = 0,
             **fit_options) -> Backtest:
    """Fit `spec` on the rows the hold-out keeps, score its predictions of the rows it holds out."""
    return _fit_and_score(spec, *split(table, holdout), _as_holdout(holdout).rule, seed, fit_options)


def backtests(spec: CheckedSpec, table: pd.DataFrame, holdouts: list[str | Holdout], *,
              executor: Executor | None = None, workers: int = 2, seed: int = 0, **fit_options) -> list[Backtest]:
    """One backtest per hold-out, their fits side by side on `executor` (default: `workers`
    local processes). Returned in the order of `holdouts`; a failed fit raises after all finish."""
    holdouts = [_as_holdout(holdout) for holdout in holdouts]
    tasks = [(spec, *split(table, holdout), holdout.rule, seed, fit_options) for holdout in holdouts]
    own = executor is None
    executor = executor or make_executor("local", workers)
    try:
        outcomes = sorted(executor.map(_fit_and_score, tasks), key=lambda outcome: outcome.index)
    finally:
        if own:
            executor.close()
    failed = [Diagnostic(f"the backtest holding out {holdouts[o.index].rule!r} failed: {o.error_line()}")
              for o in outcomes if o.error is not None]
    if failed:
        raise InfscaleError(failed)
    return [outcome.value for outcome in outcomes]


def _as_holdout(holdout: str | Holdout) -> Holdout:
    return Holdout(holdout) if isinstance(holdout, str) else holdout


def _fit_and_score(spec: CheckedSpec, kept: pd.DataFrame, held_out: pd.DataFrame, holdout: str, seed: int,
                   fit_options: dict) -> Backtest:
    result = fit(spec, kept, seed=seed, **fit_options)
    predictions, scores, covered_draws = score(result, held_out, seed=seed)
    return Backtest(holdout, result, predictions, scores, covered_draws)


def describe(backtest: Backtest) -> str:
    lines = [f"backtest, holding out {backtest.holdout!r}:"]
    for s in backtest.scores:
        lines.append(f"  {s.response}: fitted on {s.n_fit} rows, {s.n_held_out} held out; 90% interval "
                     f"coverage {s.coverage_90:.2f} ({_expected(s)}), mean width {s.mean_rel_width_90:.2%} of "
                     f"the actual; absolute relative error median (MARE) {s.median_abs_rel_error:.2%}, mean "
                     f"{s.mean_abs_rel_error:.2%}, max {s.max_abs_rel_error:.2%}")
    if not backtest.result.diagnostics["ok"]:
        lines.append("  warning: the fit failed its diagnostics: " + "; ".join(backtest.result.diagnostics["problems"]))
    return "\n".join(lines)


def describe_all(backtests: list[Backtest]) -> str:
    """One line per hold-out and response, then the pooled line per response and a warning per
    fit that failed its diagnostics."""
    width = max(len("hold-out"), *(len(b.holdout) for b in backtests))
    header = (f"  {'hold-out':<{width}} {'response':<10} {'fitted':>6} {'held out':>8} {'MARE':>8} {'cov90':>6} "
              f"{'expected':>11} {'p':>5} {'width90':>8}  gate")
    lines = [f"{len(backtests)} backtests:", header]
    for b in backtests:
        gate = "ok" if b.result.diagnostics["ok"] else "FAILED"
        lines += [_score_line(b.holdout, width, s) + f"  {gate}" for s in b.scores]
    lines += [_score_line("pooled", width, s) for s in pooled(backtests)]
    lines.append("  expected: the central 90 % of the coverage were the fit right (its held-out runs share its "
                 "error); p: of the coverage seen, two-sided")
    failed: dict[str, list[str]] = {}  # problems -> the hold-outs whose fit has them (map fits all share one)
    for b in backtests:
        if not b.result.diagnostics["ok"]:
            failed.setdefault("; ".join(b.result.diagnostics["problems"]), []).append(b.holdout)
    for problems, rules in failed.items():
        which = "every fit" if len(rules) == len(backtests) else "the fits holding out " + ", ".join(map(repr, rules))
        lines.append(f"warning: {which} failed the diagnostics: {problems}")
    return "\n".join(lines)


def _score_line(label: str, width: int, s: BacktestScore) -> str:
    fitted = "" if s.n_fit is None else s.n_fit
    low, high = s.coverage_90_expected
    return (f"  {label:<{width}} {s.response:<10} {fitted:>6} {s.n_held_out:>8} {100 * s.median_abs_rel_error:6.2f} % "
            f"{s.coverage_90:6.2f} {f'{low:.2f}-{high:.2f}':>11} {s.coverage_90_p:5.2f} {100 * s.mean_rel_width_90:6.2f} %")


def _expected(s: BacktestScore) -> str:
    low, high = s.coverage_90_expected
    return f"{low:.2f} to {high:.2f} if the fit is right, p {s.coverage_90_p:.2f}"
