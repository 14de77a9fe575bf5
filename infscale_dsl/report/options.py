"""What a report is asked: targets, budgets, the allocation's budget, costs and where to
read each quantity. Apart from build.py so that its helpers can read it without importing it."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .conditions import Condition
from .cost import CostAssumptions


@dataclass
class ReportOptions:
    targets: list[Condition] = field(default_factory=list)  # on the fitted responses
    budgets: list[Condition] = field(default_factory=list)  # e.g. latency, from a table or a fit
    response: str | None = None  # the loss-like response; default: the first target's, else the first law's
    latency: str | None = None  # quantity on the frontier's x axis; default: a budget's or a LATENCY_NAMES
    latency_unit: str | None = None  # default: the table's unit column, else the column name's suffix (tpot_ms)
    loss_unit: str | None = None  # unit of the response, e.g. "nats/token"; default: none known
    rule: str = "min-latency"
    threshold: float = 0.9
    flops: float | None = None  # budget for the compute-optimal allocation
    max_params: float | None = None
    fixed: dict[str, float] = field(default_factory=dict)  # other data variables during allocation
    n_name: str = "N"
    d_name: str = "D"
    inference_tokens: float | None = None  # lifetime serving volume (Sardana et al. 2024)
    cost: CostAssumptions | None = None
    training_table: pd.DataFrame | None = None  # the fitted rows, for the data-against-law plot
    group_column: str | None = None  # size groups in that plot
    title: str = "Scaling-law risk report"
    notes: list[str] = field(default_factory=list)  # the caller's own assumptions, e.g. what latency measures
    seed: int = 0
