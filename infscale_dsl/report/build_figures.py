"""The data each of the report's figures shows, gathered from the fit while the report is
built (figure_data.py holds it; figures.py draws it when the report is written)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..posterior.result import FitResult
from ..prediction.predict import predict_draws
from .allocation import LawOfND, allocation_curve
from .document import Report
from .figure_data import BudgetProbability, ComputeFan, DataCurves, FigureData, Frontier, GroupCurve
from .law_function import LawFunction
from .options import ReportOptions

MAX_PAIR_PARAMETERS = 6  # in the pair plot
BUDGET_POINTS = 24  # along the compute-optimal fan
MAX_GROUPS = 6  # panels of the data-against-law figure


def figure_data(result: FitResult, report: Report, law: LawFunction, of_nd: LawOfND | None, response: str,
                options: ReportOptions) -> FigureData:
    """Every figure's data; `of_nd` is the law of N and D alone, None when it has none to
    allocate (then no compute figures)."""
    figures = FigureData(frontier=frontier(report, response, options))
    if options.training_table is not None:
        figures.data = data_curves(result, response, options, report.label(response))
    if of_nd is not None:
        figures.fan, figures.probability = compute_fan(result, of_nd, report, response, options)
    shown = dict(list(law.parameters.items())[:MAX_PAIR_PARAMETERS])  # name -> (S, 1)
    if shown and next(iter(shown.values())).shape[0] > 1:  # a point fit has no spread to show
        figures.parameters = {name: draws[:, 0] for name, draws in shown.items()}
    return figures


def frontier(report: Report, response: str, options: ReportOptions) -> Frontier | None:
    """The candidates' loss against latency, once the report knows its frontier."""
    latency = report.latency
    if not report.on_frontier or latency is None:
        return None
    names = [c.name for c in report.candidates]
    return Frontier(
        names=names, loss=[c.quantities[response]["observed"] for c in report.candidates],
        latency=[c.quantities[latency]["observed"] for c in report.candidates],
        on_front=np.array([report.on_frontier[n] for n in names]),
        chosen=report.recommendation.chosen if report.recommendation and report.reliable else None,
        target=next((c.threshold for c in options.targets if c.name == response), None),
        budget=next((c.threshold for c in options.targets + options.budgets if c.name == latency), None),
        loss_label=f"{report.label(response)}, new run", latency_label=report.label(latency))


def compute_fan(result: FitResult, of_nd: LawOfND, report: Report, response: str,
                options: ReportOptions) -> tuple[ComputeFan, BudgetProbability | None]:
    """The compute-optimal loss from the data's smallest compute to 1000 times its largest (or
    10 times the allocation's budget), and P(target met) along it when the fit is reliable."""
    low, high = observed_compute(result, options)
    top = max(high * 1e3, 10 * options.flops) if options.flops else high * 1e3
    budgets = np.logspace(np.log10(low), np.log10(top), BUDGET_POINTS)  # (B,)
    loss = np.stack([point.loss for point in allocation_curve(of_nd, budgets, options.max_params)])  # (B, S)
    target = next((c for c in options.targets if c.name == response), None)
    fan = ComputeFan(budgets, loss, high, target.threshold if target else None, report.label(response))
    if target is None or not report.reliable:
        return fan, None
    return fan, BudgetProbability(budgets, target.met(loss).mean(axis=1), f"{target} at the compute-optimal point",
                                  options.threshold)


def observed_compute(result: FitResult, options: ReportOptions) -> tuple[float, float]:
    """Smallest and largest training compute 6 N D of the fitted data (rows if given, else ranges)."""
    spec = result.spec
    table = options.training_table
    n_col, d_col = spec.data[options.n_name].column, spec.data[options.d_name].column
    if table is not None and {n_col, d_col} <= set(table.columns):
        compute = 6.0 * table[n_col].to_numpy(dtype=float) * table[d_col].to_numpy(dtype=float)
        return float(compute.min()), float(compute.max())
    (n_lo, n_hi), (d_lo, d_hi) = result.data_ranges[options.n_name], result.data_ranges[options.d_name]
    return 6.0 * n_lo * d_lo, 6.0 * n_hi * d_hi


def data_curves(result: FitResult, response: str, options: ReportOptions, y_label: str) -> DataCurves:
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
        grid = np.logspace(np.log10(x.min() / 1.5), np.log10(x.max() * 1.5), 40)  # (G,)
        typical = {c: (rows[c].median() if pd.api.types.is_numeric_dtype(rows[c]) else rows[c].mode()[0])
                   for c in columns}
        frame = pd.DataFrame({**{c: [v] * grid.size for c, v in typical.items()}, x_col: grid})
        draws = predict_draws(result, frame, seed=options.seed)[response]
        curves.append(GroupCurve(str(name), x, rows[spec.data[response].column].to_numpy(dtype=float),
                                 grid, draws.law, draws.observed))
    return DataCurves(curves, f"{x_col} (training tokens)", y_label)


def size_range(name: str, values: pd.Series) -> str:
    """A panel title such as "N 17.1k to 20.1k", from the smallest and largest value."""
    return f"{name} {short_number(values.min())} to {short_number(values.max())}"


def short_number(x: float) -> str:
    """17099 -> 17.1k, 1.2e9 -> 1.2B: sizes as model and data sizes are spoken of."""
    for factor, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.3g}{suffix}"
    return f"{x:.3g}"
