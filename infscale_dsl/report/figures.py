"""The report's figures from a fit: which draws and grids each plot in plots.py is given."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..posterior import FitResult
from ..predict import predict_draws
from . import plots
from .allocation import allocation_curve
from .document import Report
from .law_function import LawFunction

if TYPE_CHECKING:
    from .build import ReportOptions

MAX_PAIR_PARAMETERS = 6
BUDGET_POINTS = 24
MAX_GROUPS = 6


def report_figures(result: FitResult, report: Report, response: str, options: "ReportOptions") -> dict[str, bytes]:
    from .build import fixed_inputs  # build imports this module

    figures: dict[str, bytes] = {}
    law = LawFunction(result.spec, result.draws, response)
    if options.training_table is not None:
        figures["Data against the fitted law"] = data_figure(result, response, options, report.label(response))
    if report.on_frontier:
        names = [c.name for c in report.candidates]
        latency = report.latency
        if latency is not None:
            chosen = report.recommendation.chosen if report.recommendation and report.reliable else None
            target = next((c.threshold for c in options.targets if c.name == response), None)
            figures["Loss against latency"] = plots.frontier_plot(
                names, [c.quantities[response]["observed"] for c in report.candidates],
                [c.quantities[latency]["observed"] for c in report.candidates],
                np.array([report.on_frontier[n] for n in names]), chosen, target,
                f"{report.label(response)}, new run", report.label(latency))
    try:
        fixed = fixed_inputs(result, law, options)
    except ConfigError:
        fixed = None  # the law has no N and D to allocate: no compute figures
    if fixed is not None:
        low, high = observed_compute(result, options)
        top = max(high * 1e3, 10 * options.flops) if options.flops else high * 1e3
        budgets = np.logspace(np.log10(low), np.log10(top), BUDGET_POINTS)
        curve = allocation_curve(lambda n, d: law({**fixed, options.n_name: n, options.d_name: d}),
                                 budgets, options.max_params)
        loss = np.stack([point.loss for point in curve])  # (budgets, S)
        target = next((c for c in options.targets if c.name == response), None)
        figures["Compute-optimal loss against compute"] = plots.fan_chart(
            budgets, loss, high, target.threshold if target else None, report.label(response))
        if target is not None and report.reliable:
            figures["P(target met) against budget"] = plots.probability_against_budget(
                budgets, target.met(loss).mean(axis=1), f"{target} at the compute-optimal point",
                options.threshold)
    shown = dict(list(law.parameters.items())[:MAX_PAIR_PARAMETERS])
    if next(iter(shown.values())).shape[0] > 1:
        figures["Posterior draws of the law's parameters"] = plots.pair_plot({k: v[:, 0] for k, v in shown.items()})
    return figures


def observed_compute(result: FitResult, options: "ReportOptions") -> tuple[float, float]:
    """Smallest and largest training compute 6 N D of the fitted data (rows if given, else ranges)."""
    spec = result.spec
    table = options.training_table
    n_col, d_col = spec.data[options.n_name].column, spec.data[options.d_name].column
    if table is not None and {n_col, d_col} <= set(table.columns):
        compute = 6.0 * table[n_col].to_numpy(dtype=float) * table[d_col].to_numpy(dtype=float)
        return float(compute.min()), float(compute.max())
    (n_lo, n_hi), (d_lo, d_hi) = result.data_ranges[options.n_name], result.data_ranges[options.d_name]
    return 6.0 * n_lo * d_lo, 6.0 * n_hi * d_hi


def data_figure(result: FitResult, response: str, options: "ReportOptions", y_label: str) -> bytes:
    """Per size group: the data and the law along D with the group's other inputs at their median."""
    spec = result.spec
    table = options.training_table
    x_col = spec.data[options.d_name].column
    if options.group_column and options.group_column in table.columns:
        groups = table[options.group_column].astype(str)
        order = list(dict.fromkeys(groups))
    else:  # no group column: quartiles of N, titled by the range of N in each
        n = table[spec.data[options.n_name].column]
        quartile = pd.qcut(n, 4, labels=False, duplicates="drop")
        order = [size_range(options.n_name, n[quartile == q]) for q in sorted(quartile.unique())]
        groups = quartile.map(dict(enumerate(order)))
    columns = [d.column for name, d in spec.data.items() if name != response and d.column in table.columns]
    curves = []
    for name in order[:MAX_GROUPS]:
        rows = table[groups == name]
        x = rows[x_col].to_numpy(dtype=float)
        grid = np.logspace(np.log10(x.min() / 1.5), np.log10(x.max() * 1.5), 40)
        typical = {c: (rows[c].median() if pd.api.types.is_numeric_dtype(rows[c]) else rows[c].mode()[0])
                   for c in columns}
        frame = pd.DataFrame({**{c: [v] * grid.size for c, v in typical.items()}, x_col: grid})
        draws = predict_draws(result, frame, seed=options.seed)[response]
        curves.append(plots.GroupCurve(str(name), x, rows[spec.data[response].column].to_numpy(dtype=float),
                                       grid, draws.law, draws.observed))
    return plots.data_against_law(curves, f"{x_col} (training tokens)", y_label)


def size_range(name: str, values: pd.Series) -> str:
    """A panel title such as "N 17.1k to 20.1k", from the smallest and largest value."""
    return f"{name} {short_number(values.min())} to {short_number(values.max())}"


def short_number(x: float) -> str:
    """17099 -> 17.1k, 1.2e9 -> 1.2B: sizes as model and data sizes are spoken of."""
    for factor, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.3g}{suffix}"
    return f"{x:.3g}"
