"""The loss-latency Pareto frontier and the rule that picks one candidate from it.

A candidate is on the frontier when no other candidate has both a lower (or equal) median
latency and a lower (or equal) median loss, one of them strictly. The recommendation is made by
a rule stated in words in the report; the default is the one the lead asked for: the lowest
latency among candidates whose probability of meeting every target and budget is at least 0.9.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RULES = {
    "min-latency": "the lowest median {latency} among candidates with P(all targets and budgets met) >= {threshold:g}",
    "min-cost": "the lowest median total cost among candidates with P(all targets and budgets met) >= {threshold:g}",
    "max-probability": "the highest P(all targets and budgets met), ties broken by the lower median {latency}",
}


def pareto_front(loss: np.ndarray, latency: np.ndarray) -> np.ndarray:
    """Boolean mask (n,) of the candidates no other candidate dominates (both minimised)."""
    loss, latency = np.asarray(loss, dtype=np.float64), np.asarray(latency, dtype=np.float64)
    no_worse = (loss[None, :] <= loss[:, None]) & (latency[None, :] <= latency[:, None])
    better = (loss[None, :] < loss[:, None]) | (latency[None, :] < latency[:, None])
    dominated = (no_worse & better).any(axis=1)  # row i: does some j dominate i
    return ~dominated


@dataclass
class Recommendation:
    rule: str  # the rule's name, a key of RULES
    rule_text: str  # the rule in words, as printed in the report
    threshold: float
    chosen: str | None  # candidate name; None when no candidate qualifies
    reason: str  # one sentence: why this one, or why none


def recommend(names: list[str], p_all: np.ndarray, latency: np.ndarray | None,
              total_cost: np.ndarray | None = None, *, rule: str = "min-latency",
              threshold: float = 0.9, latency_name: str = "latency") -> Recommendation:
    """Pick a candidate by `rule`; p_all, latency and total_cost are per candidate (n,)."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
    text = RULES[rule].format(latency=latency_name, threshold=threshold)
    p_all = np.asarray(p_all, dtype=np.float64)
    order_key = {"min-latency": latency, "min-cost": total_cost}.get(rule, latency)
    if order_key is None:
        need = "latency per candidate" if rule != "min-cost" else "costs (give --gpu-hour-price)"
        return Recommendation(rule, text, threshold, None, f"no recommendation: the rule needs {need}")
    order_key = np.asarray(order_key, dtype=np.float64)
    if rule == "max-probability":
        best = int(np.lexsort((order_key, -p_all))[0])
        return Recommendation(rule, text, threshold, names[best],
                              f"{names[best]} has the highest P(all met) = {p_all[best]:.3f}")
    qualified = np.flatnonzero(p_all >= threshold)
    if qualified.size == 0:
        best = int(np.argmax(p_all))
        return Recommendation(rule, text, threshold, None,
                              f"no candidate reaches P(all met) >= {threshold:g}; the highest is "
                              f"{names[best]} with {p_all[best]:.3f}")
    best = int(qualified[np.argmin(order_key[qualified])])
    measure = "median total cost" if rule == "min-cost" else f"median {latency_name}"
    return Recommendation(rule, text, threshold, names[best],
                          f"{qualified.size} of {len(names)} candidates qualify; {names[best]} has the "
                          f"lowest {measure} ({order_key[best]:.4g}) with P(all met) = {p_all[best]:.3f}")
