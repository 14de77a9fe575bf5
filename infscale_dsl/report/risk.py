"""Per-candidate risk: intervals, P(target met) with its Monte Carlo error, expected shortfall,
and how far each candidate lies beyond the data the law was fitted on.

Every figure here is a plain function of arrays of draws, shape (S, n_candidates): S posterior
draws of a quantity at each candidate. A fixed quantity (a measured latency from a table) is a
(1, n_candidates) array. Quantities from two independent fits are paired draw by draw, which is
a valid joint sample because the fits are independent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .conditions import Condition

INTERVAL = (0.05, 0.5, 0.95)  # the 90% interval and the median, everywhere in reports


@dataclass
class Quantity:
    """Draws of one quantity at every candidate."""

    observed: np.ndarray  # (S, n) a new run's value, noise included; (1, n) when fixed
    law: np.ndarray | None = None  # (S, n) the law's value alone (epistemic); None when fixed
    ess: float | None = None  # effective sample size behind the draws; None when fixed
    source: str = "fit"  # "fit" or "table"


@dataclass
class Summary:
    median: float
    q05: float
    q95: float

    @classmethod
    def of(cls, samples: np.ndarray) -> "Summary":
        q05, median, q95 = np.quantile(np.asarray(samples, dtype=np.float64), INTERVAL)
        return cls(float(median), float(q05), float(q95))


@dataclass
class TargetRisk:
    condition: str
    p_met: float  # over new-run draws (noise included)
    mc_error: float  # sqrt(p (1 - p) / ESS)
    p_met_law: float | None  # over the law's draws alone; None for fixed quantities
    expected_shortfall: float  # E[(value - threshold)+] (for <=), new-run draws


@dataclass
class CandidateRisk:
    name: str
    inputs: dict[str, float]  # data and derived variables of the candidate
    training_flops: float | None  # 6 N D
    quantities: dict[str, dict[str, Summary | str | None]]  # name -> law / observed / source
    targets: list[TargetRisk]
    p_all_met: float | None
    mc_error_all: float | None
    extrapolation: dict[str, float] = field(default_factory=dict)  # name -> factor beyond range

    @property
    def extrapolating(self) -> bool:
        return any(factor > 1.0 for factor in self.extrapolation.values())


def probability(met: np.ndarray, ess: float | None) -> tuple[float, float]:
    """P(met) over draws (axis 0) and its Monte Carlo error sqrt(p (1 - p) / ESS)."""
    p = float(np.mean(met))
    n_eff = ess if ess else met.shape[0]
    return p, float(np.sqrt(p * (1.0 - p) / max(n_eff, 1.0)))


def extrapolation_factor(value: float, observed: tuple[float, float]) -> float:
    """1 inside the observed range; else how many times beyond it (value/max or min/value)."""
    low, high = observed
    if value > high > 0:
        return float(value / high)
    if 0 < value < low:
        return float(low / value)
    return 1.0


def shared_draws(quantities: list[Quantity]) -> int:
    """How many draws all the given quantities share (fixed ones broadcast)."""
    sizes = [q.observed.shape[0] for q in quantities if q.observed.shape[0] > 1]
    return min(sizes) if sizes else 1


def assess_candidates(
    names: list[str],
    quantities: Mapping[str, Quantity],
    conditions: list[Condition],
    inputs: Mapping[str, np.ndarray],
    data_ranges: Mapping[str, tuple[float, float]],
    flops: np.ndarray | None,
) -> list[CandidateRisk]:
    """One CandidateRisk per candidate; `inputs` name -> (n,) values of the data variables."""
    used = [quantities[c.name] for c in conditions]
    n_joint = shared_draws(used)
    ess_all = min((q.ess for q in used if q.ess), default=None)
    risks = []
    for i, name in enumerate(names):
        summaries = {
            q_name: {
                "law": Summary.of(q.law[:, i]) if q.law is not None else None,
                "observed": Summary.of(q.observed[:, i]),
                "source": q.source,
            }
            for q_name, q in quantities.items()
        }
        targets = []
        for condition in conditions:
            q = quantities[condition.name]
            p, error = probability(condition.met(q.observed[:, i]), q.ess)
            targets.append(TargetRisk(
                condition=str(condition),
                p_met=p,
                mc_error=error,
                p_met_law=float(np.mean(condition.met(q.law[:, i]))) if q.law is not None else None,
                expected_shortfall=float(np.mean(condition.shortfall(q.observed[:, i]))),
            ))
        p_all = error_all = None
        if conditions:
            # (n_joint,) per condition; fixed quantities broadcast from a single row
            met_all = np.ones(n_joint, dtype=bool)
            for condition in conditions:
                column = quantities[condition.name].observed[:, i]
                met_all &= condition.met(np.broadcast_to(column[:n_joint], (n_joint,)))
            p_all, error_all = probability(met_all, ess_all)
        candidate_inputs = {k: float(v[i]) for k, v in inputs.items()}
        risks.append(CandidateRisk(
            name=name,
            inputs=candidate_inputs,
            training_flops=float(flops[i]) if flops is not None else None,
            quantities=summaries,
            targets=targets,
            p_all_met=p_all,
            mc_error_all=error_all,
            extrapolation={
                k: extrapolation_factor(v, data_ranges[k])
                for k, v in candidate_inputs.items() if k in data_ranges
            },
        ))
    return risks
