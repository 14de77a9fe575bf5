"""What a report holds, and its JSON form: the machine-readable contract.

JSON schema ("schema": "infscale-dsl/report", "version": 1); every interval is
{"median", "q05", "q95"} (the 90% interval):
  title, spec, method, reliable (bool), problems [str], warnings [str] (figures to doubt: a noisy
  latency row, an allocation at its search grid's edge), diagnostics {...},
  mc_error_basis (str: which ESS the Monte Carlo errors use), conditions [str], notes [str],
  latency_quantity (str | null: the frontier's latency axis), units {quantity: unit} (the loss,
  the latency, "cost": the currency; a quantity without a known unit is absent),
  candidates [{name, inputs {variable: value}, training_flops, extrapolation {variable: factor},
               extrapolating, on_frontier,
               quantities {name: {law: interval | null, observed: interval, source: "fit"|"table"}},
               targets [{condition, p_met, mc_error, p_met_law, expected_shortfall}],
               p_all_met, mc_error_all, costs {training_gpu_hours, training_cost,
               serving_gpu_hours_per_year, serving_cost_per_year, total_cost: interval} | null}],
  recommendation {rule, rule_text, threshold, chosen, reason} | null,
  allocation {flops, fixed {variable: value}, response (the law minimised), n_opt, d_opt, loss,
              tokens_per_parameter, share_at_grid_edge} | null,
  lifetime {target_loss, inference_tokens, share_feasible, n_opt, d_train, tokens_per_parameter,
            total_flops, chinchilla_total_flops, saving_vs_chinchilla} | null,
  cost_assumptions str | null, figures [str]  (titles; the images live in the .html / .md)
When reliable is false every probability (p_met, mc_error, p_met_law, p_all_met, mc_error_all)
and expected_shortfall is null and recommendation.chosen is null: a failed fit gives no probabilities to act on.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import __version__
from .figure_data import FigureData
from .frontier import Recommendation
from .risk import CandidateRisk

# risk figures a failed fit must not give
WITHHELD_KEYS = ("p_met", "mc_error", "p_met_law", "p_all_met", "mc_error_all", "expected_shortfall")


@dataclass
class Report:
    title: str
    spec: str  # the spec's file name
    method: str  # "nuts" | "map"
    reliable: bool  # the fit passed its diagnostics
    problems: list[str]  # why it is not reliable
    diagnostics: dict[str, Any]
    mc_error_basis: str
    conditions: list[str]
    candidates: list[CandidateRisk]
    notes: list[str] = field(default_factory=list)  # assumptions, in words
    warnings: list[str] = field(default_factory=list)  # figures to doubt, and why
    latency: str | None = None  # the quantity on the frontier's latency axis
    units: dict[str, str] = field(default_factory=dict)  # quantity -> unit, "cost" -> currency
    on_frontier: dict[str, bool] = field(default_factory=dict)  # candidate -> on the frontier
    recommendation: Recommendation | None = None
    allocation: dict[str, Any] | None = None
    lifetime: dict[str, Any] | None = None
    costs: dict[str, dict[str, Any]] | None = None  # candidate -> cost intervals
    cost_assumptions: str | None = None
    figures: FigureData = field(default_factory=FigureData)  # drawn when written as .html or .md

    def label(self, quantity: str) -> str:
        """`latency (ms)`, or the quantity's name alone when its unit is not known."""
        return f"{quantity} ({self.units[quantity]})" if quantity in self.units else quantity


def _plain(value: Any) -> Any:
    """Dataclasses, numpy scalars and nested containers as JSON-ready values (NaN -> None)."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _withhold_probabilities(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: None if k in WITHHELD_KEYS else _withhold_probabilities(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_withhold_probabilities(v) for v in node]
    return node


def to_dict(report: Report) -> dict[str, Any]:
    candidates = []
    for candidate in report.candidates:
        entry = _plain(candidate)
        entry["extrapolating"] = candidate.extrapolating
        entry["on_frontier"] = report.on_frontier.get(candidate.name)
        entry["costs"] = _plain(report.costs.get(candidate.name)) if report.costs else None
        candidates.append(entry)
    if not report.reliable:
        candidates = _withhold_probabilities(candidates)
    recommendation = _plain(report.recommendation)
    if recommendation is not None and not report.reliable:
        recommendation["chosen"] = None
        recommendation["reason"] = "NOT RELIABLE: " + "; ".join(report.problems)
    return {
        "schema": "infscale-dsl/report",
        "version": 1,
        "generator": f"infscale-dsl {__version__}",
        "title": report.title,
        "spec": report.spec,
        "method": report.method,
        "reliable": report.reliable,
        "problems": list(report.problems),
        "warnings": list(report.warnings),
        "diagnostics": _plain(report.diagnostics),
        "mc_error_basis": report.mc_error_basis,
        "conditions": list(report.conditions),
        "notes": list(report.notes),
        "latency_quantity": report.latency,
        "units": dict(report.units),
        "candidates": candidates,
        "recommendation": recommendation,
        "allocation": _plain(report.allocation),
        "lifetime": _plain(report.lifetime),
        "cost_assumptions": report.cost_assumptions,
        "figures": report.figures.titles(),
    }


def to_json(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, allow_nan=False)
