"""Assemble a report from a fit: candidates' risk, frontier, recommendation, allocation,
lifetime compute and costs, with every assumption written down in `notes`, and the data its
figures show (build_figures.py). Data only: the figures are drawn when the report is written.

    report = build_report(result, candidates, ReportOptions(targets=[Condition.parse("loss <= 2.95")]))
    write_report(report, "report.html")
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError, Diagnostic, listed
from ..latency import cv_column, high_cv_warning
from ..posterior.result import FitResult
from ..prediction.predict import predict_draws
from .allocation import LawOfND, compute_optimal, n_grid
from .build_figures import figure_data
from .cost import candidate_costs, lifetime_optimal
from .document import Report
from .frontier import pareto_front, recommend
from .law_function import LawFunction, reads, variable_values
from .options import ReportOptions
from .risk import Quantity, assess_candidates

LATENCY_NAMES = ("latency", "tpot_ms", "latency_ms")  # looked for when no budget names one
MS_PER_UNIT = {"ms": 1.0, "s": 1e3, "us": 1e-3, "µs": 1e-3, "ns": 1e-6}  # time units a latency may be in
# inputs that take whole values only: held at a whole number when the allocation fixes them
ARCHITECTURE_COLUMNS = ("d_model", "n_layers", "n_heads", "n_kv_heads", "vocab", "head_dim", "ffn_hidden")
# above this share of draws with their compute-optimal N on the search grid's edge, the 90 %
# interval's tail is a bound of the grid, not an optimum
MAX_SHARE_AT_EDGE = 0.05


def candidate_names(table: pd.DataFrame) -> list[str]:
    """A `name` column, else d_model x n_layers, else #row."""
    if "name" in table.columns:
        return [str(v) for v in table["name"]]
    if {"d_model", "n_layers"} <= set(table.columns):
        return [f"{int(d)}x{int(n)}" for d, n in zip(table["d_model"], table["n_layers"])]
    return [f"#{i}" for i in range(len(table))]


def display_path(filename: str) -> str:
    """The spec's path relative to the working folder when inside it (reports are shared)."""
    path = Path(filename)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return filename


def law_ess(result: FitResult, response: str, with_noise: bool) -> float | None:
    """The smallest bulk ESS among the parameters the law reads (and its sigma, with noise)."""
    spec = result.spec
    names = ({name for name in reads(spec, response) if name in spec.parameters}
             | ({spec.law_for(response).sigma} if with_noise else set()))
    values = [v for row, v in result.ess.items() if row.split("[")[0] in names and np.isfinite(v)]
    return min(values) if values else None


def fit_quantities(result: FitResult, table: pd.DataFrame, seed: int) -> dict[str, Quantity]:
    return {
        response: Quantity(observed=draws.observed, law=draws.law, ess=law_ess(result, response, True))
        for response, draws in predict_draws(result, table, seed=seed).items()
    }


def with_budget_tokens(result: FitResult, shapes: pd.DataFrame, flops: float, n_name: str = "N",
                       d_name: str = "D") -> pd.DataFrame:
    """Each shape trained on the whole budget: D = C / (6 N), written to the spec's D column."""
    n_column, d_column = result.spec.data[n_name].column, result.spec.data[d_name].column
    if n_column not in shapes.columns:
        raise DataError(Diagnostic(f"the shapes table has no column {n_column!r} (the parameter count N)",
                                   table_column=n_column, hint="add each shape's parameter count"))
    table = shapes.copy()
    table[d_column] = flops / (6.0 * table[n_column].to_numpy(dtype=np.float64))
    return table


def build_report(result: FitResult, candidates: pd.DataFrame | None, options: ReportOptions,
                 latency_fit: FitResult | None = None) -> Report:
    spec = result.spec
    responses = [law.response for law in spec.laws]
    response = options.response or next((c.name for c in options.targets if c.name in responses), responses[0])
    law = LawFunction(spec, result.draws, response)  # the one the allocation, lifetime and figures read
    diagnostics = result.diagnostics
    notes = [
        "P(met) is over a new training run's value (the law's draws plus the fitted noise); "
        "'P(met), law' counts the law's draws alone.",
        "Extrapolation factors: how many times beyond the fitted data's range each input lies (1 = inside).",
        *options.notes,
    ]
    report = Report(
        title=options.title, spec=display_path(spec.filename), method=result.method, reliable=bool(diagnostics["ok"]),
        problems=list(diagnostics["problems"]), diagnostics={k: v for k, v in diagnostics.items() if k != "problems"},
        mc_error_basis="sqrt(p (1 - p) / ESS), ESS the smallest bulk ESS (arviz, over chains) among the "
                       "parameters of the law and its noise scale",
        conditions=[str(c) for c in options.targets + options.budgets], candidates=[], notes=notes,
        warnings=list(result.checks.get("notes", [])),  # an input the fitted rows hold at one value
    )
    if options.loss_unit:
        report.units[response] = options.loss_unit
    if options.cost is not None:
        report.units["cost"] = options.cost.currency
    conditions = options.targets + options.budgets
    if candidates is None or not len(candidates):  # with candidates, their columns may be named too (below)
        # a target is read without candidates too (the lifetime optimum); budgets then go unused
        fitted = responses + ([law.response for law in latency_fit.spec.laws] if latency_fit is not None else [])
        for name in [c.name for c in options.targets if c.name not in fitted]:
            raise ConfigError(Diagnostic(f"nothing gives {name!r}: it is not a fitted response, and there are "
                                         "no candidates whose columns it could name",
                                         hint=f"responses: {', '.join(fitted)}"))
    if candidates is not None and len(candidates):
        quantities = fit_quantities(result, candidates, options.seed)
        if latency_fit is not None:
            for name, q in fit_quantities(latency_fit, candidates, options.seed + 1).items():
                quantities.setdefault(name, q)
            notes.append(f"Latency from the fitted law {latency_fit.spec.filename}, with its own uncertainty; "
                         "its draws are paired with the loss fit's draws (independent fits).")
        latency = options.latency or next(
            (n for n in [c.name for c in options.budgets] + list(LATENCY_NAMES)
             if n in quantities or n in candidates.columns), None)
        for name in [c.name for c in conditions] + ([latency] if latency else []):
            if name in quantities:
                continue
            if name not in candidates.columns:
                raise ConfigError(Diagnostic(
                    f"nothing gives {name!r}: it is neither a fitted response nor a candidates column",
                    hint=f"responses: {', '.join(quantities)}; columns: {', '.join(map(str, candidates.columns))}"))
            quantities[name] = Quantity(observed=candidates[name].to_numpy(dtype=np.float64)[None, :],
                                        source="table")
        names = candidate_names(candidates)
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:  # results are kept by name: a repeated one would take another's figures
            raise ConfigError(Diagnostic(f"candidate names repeat: {listed(repeated, 5)}",
                                         hint="give each candidate its own name (a name column, or distinct shapes)"))
        if latency is not None:
            check_latency(report, latency, quantities[latency], candidates, names, options, [result, latency_fit])
        inputs = {k: v for k, v in variable_values(spec, candidates).items() if k not in responses}
        flops = (6.0 * inputs[options.n_name] * inputs[options.d_name]
                 if {options.n_name, options.d_name} <= set(inputs) else None)
        report.candidates = assess_candidates(names, quantities, conditions, inputs, result.data_ranges, flops)
        assess_choice(report, names, quantities, response, latency, flops, options)
    gap = allocation_gap(result, law, options)  # None: the law has N and D to allocate
    if gap is not None and (options.flops or options.inference_tokens is not None):
        raise ConfigError(gap)
    fixed = fixed_inputs(result, law, options) if gap is None else None
    of_nd = law_of_nd(law, fixed, options) if gap is None else None  # None: no compute figures
    if options.flops:
        report.allocation = compute_optimal(of_nd, options.flops, options.max_params).summary() | {
            "fixed": fixed, "response": response}
        share = report.allocation["share_at_grid_edge"]
        if share > MAX_SHARE_AT_EDGE:
            grid = n_grid(options.flops, options.max_params)
            report.warnings.append(
                f"{share:.0%} of the posterior draws have their compute-optimal N at the edge of the search "
                f"grid (N from {grid[0]:.3g} to {grid[-1]:.3g}): for them N* is a bound of the grid, not an "
                f"optimum, so the allocation's interval is cut there. Their law barely depends on N or D "
                f"(an exponent near 0): check the fit's exponents, or cap N with --max-params")
    if options.inference_tokens is not None:
        report.lifetime = lifetime_section(of_nd, law.n_draws, response, options)
    report.figures = figure_data(result, report, law, of_nd, response, options)
    return report


def check_latency(report: Report, latency: str, quantity: Quantity, candidates: pd.DataFrame, names: list[str],
                  options: ReportOptions, fits: list[FitResult | None]) -> None:
    """The latency's unit into `report.units`, and a warning for measured rows too noisy to trust."""
    unit = latency_unit(latency, options, candidates, fits)
    if unit:
        report.units[latency] = unit
    if quantity.source == "table" and cv_column(latency) in candidates.columns:
        warning = high_cv_warning(names, list(candidates[cv_column(latency)]), latency)
        report.warnings += [warning] if warning else []


def latency_unit(latency: str, options: ReportOptions, candidates: pd.DataFrame,
                 fits: list[FitResult | None]) -> str | None:
    """The latency's unit: --latency-unit; else the table's `<latency>_unit` or `unit` column
    (one value); else the suffix of the column it is read from (tpot_ms: ms); else None."""
    if options.latency_unit:
        return options.latency_unit
    for column in (f"{latency}_unit", "unit"):
        if column in candidates.columns:
            units = candidates[column].dropna().astype(str).unique()
            if len(units) > 1:
                raise DataError(Diagnostic(f"the {column!r} column holds several units: {', '.join(units)}",
                                           hint="give every latency in one unit, or name it with --latency-unit"))
            if len(units) == 1:
                return units[0]
    source = next((fit.spec.data[latency].column for fit in fits
                   if fit is not None and latency in fit.spec.data), latency)
    suffix = source.rsplit("_", 1)[-1]
    return suffix if "_" in source and suffix in MS_PER_UNIT else None


def milliseconds(draws: np.ndarray, latency: str, unit: str | None) -> np.ndarray:
    """Latency draws in ms, what the serving cost reads; an unknown unit is read as ms (and
    the report's cost assumptions say so)."""
    if unit is None:
        return draws
    if unit not in MS_PER_UNIT:
        raise ConfigError(Diagnostic(f"cannot turn {latency} in {unit!r} into serving time",
                                     hint=f"costs need a time per token in one of {', '.join(MS_PER_UNIT)}; "
                                          "give --latency-unit"))
    return draws * MS_PER_UNIT[unit]


def assess_choice(report: Report, names: list[str], quantities: dict[str, Quantity], response: str,
                  latency: str | None, flops: np.ndarray | None, options: ReportOptions) -> None:
    """Frontier, costs and the recommendation, written into `report`."""
    loss_median = np.median(quantities[response].observed, axis=0)
    latency_draws = quantities[latency].observed if latency else None
    report.latency = latency
    if latency_draws is not None:
        front = pareto_front(loss_median, np.median(latency_draws, axis=0))
        report.on_frontier = dict(zip(names, map(bool, front)))
    total_cost = None
    if options.cost is not None and flops is not None:
        unit = report.units.get(latency)
        ms_per_token = milliseconds(latency_draws, latency, unit) if latency_draws is not None else None
        rows = candidate_costs(flops, ms_per_token, options.cost)
        report.costs = dict(zip(names, rows))
        read_as = f"in {unit}" if unit else "read as ms (its unit is not known: give --latency-unit)"
        report.cost_assumptions = options.cost.describe() + (
            f"; latency per token ({latency}) {read_as}" if latency_draws is not None else "")
        total_cost = np.array([row["total_cost"].median for row in rows])
    p_all = np.array([c.p_all_met if c.p_all_met is not None else 1.0 for c in report.candidates])
    if latency_draws is not None or total_cost is not None:
        report.recommendation = recommend(
            names, p_all, np.median(latency_draws, axis=0) if latency_draws is not None else None,
            total_cost, rule=options.rule, threshold=options.threshold, latency_name=latency or "latency")


def allocation_gap(result: FitResult, law: LawFunction, options: ReportOptions) -> Diagnostic | None:
    """Why the law cannot be minimised over N and D, None when it can: it does not read them,
    or it reads another input with neither a --fix value nor an observed range."""
    missing = [n for n in (options.n_name, options.d_name) if n not in law.data_names]
    if missing:
        return Diagnostic(f"the law for {law.response!r} does not read {' and '.join(missing)}",
                          hint=f"name the parameter count and token variables with --n-name / --d-name "
                               f"(the law reads {', '.join(law.data_names)})")
    unknown = [n for n in law.data_names if n not in (options.n_name, options.d_name)
               and n not in options.fixed and n not in result.data_ranges]
    if unknown:
        return Diagnostic(f"allocation needs a value for {unknown[0]!r}", hint=f"give --fix {unknown[0]}=VALUE")
    return None


def fixed_inputs(result: FitResult, law: LawFunction, options: ReportOptions) -> dict[str, float]:
    """Values of the law's other data variables during allocation (where allocation_gap finds
    none missing): as given, else the geometric middle of their observed range."""
    fixed = {}
    for name in law.data_names:
        if name in (options.n_name, options.d_name):
            continue
        whole = result.spec.data[name].domain == "count" or result.spec.data[name].column in ARCHITECTURE_COLUMNS
        if name in options.fixed:
            value = float(options.fixed[name])
        else:
            low, high = result.data_ranges[name]
            value = float(np.sqrt(low * high)) if low > 0 else 0.5 * (low + high)
            value = float(round(value)) if whole else value  # no model has 5.66 layers
        fixed[name] = int(value) if whole and value.is_integer() else value
    return fixed


def law_of_nd(law: LawFunction, fixed: dict[str, float], options: ReportOptions) -> LawOfND:
    """The law as a function of N and D alone, its other inputs held at `fixed`."""
    return lambda n, d: law({**fixed, options.n_name: n, options.d_name: d})


def lifetime_section(of_nd: LawOfND, n_draws: int, response: str, options: ReportOptions) -> dict:
    target = next((c for c in options.targets if c.name == response and c.wants_low), None)
    if target is None:
        raise ConfigError(Diagnostic("lifetime cost needs a target on the loss, e.g. --target \"loss <= 2.9\"",
                                  hint="give --target together with --inference-tokens"))
    draws = lifetime_optimal(of_nd, target.threshold, options.inference_tokens, n_draws,
                             max_params=options.max_params)
    return draws.summary()
