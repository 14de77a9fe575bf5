"""Compute-optimal allocation under a FLOPs budget, with its posterior uncertainty.

Chinchilla's approach 3 (Hoffmann et al. 2022) with intervals from the posterior instead of a
bootstrap: for each posterior draw, minimise the law over N on a log grid with D = C / (6 N),
refine the minimum with a parabola through the three grid points around it (in log N), and
keep that draw's N*, D*, loss there and tokens per parameter D*/N*.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .risk import Summary

# law(N, D) -> (S, G) loss per draw; N and D broadcast against (S, G)
LawOfND = Callable[[np.ndarray, np.ndarray], np.ndarray]

GRID_POINTS = 512
GRID_DECADES = 3.0  # N searched over sqrt(C/6) * 10^(+-3): D/N from 1e-6 to 1e6


@dataclass
class AllocationDraws:
    flops: float
    n_opt: np.ndarray  # (S,) N* per draw
    d_opt: np.ndarray  # (S,) D* = C / (6 N*)
    loss: np.ndarray  # (S,) the law at (N*, D*)
    at_edge: float  # share of draws whose minimum sits on the grid's edge (search range too narrow)

    @property
    def tokens_per_parameter(self) -> np.ndarray:
        return self.d_opt / self.n_opt

    def summary(self) -> dict[str, object]:
        return {
            "flops": self.flops,
            "n_opt": Summary.of(self.n_opt),
            "d_opt": Summary.of(self.d_opt),
            "loss": Summary.of(self.loss),
            "tokens_per_parameter": Summary.of(self.tokens_per_parameter),
            "share_at_grid_edge": self.at_edge,
        }


def n_grid(flops: float, max_params: float | None = None, points: int = GRID_POINTS) -> np.ndarray:
    """Log grid of N around sqrt(C/6) (where D = N), capped at max_params."""
    centre = np.log10(np.sqrt(flops / 6.0))
    high = centre + GRID_DECADES
    if max_params is not None:
        high = min(high, np.log10(max_params))
    low = min(centre - GRID_DECADES, high - 1.0)
    return np.logspace(low, high, points)


def refine_minimum(log_n: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of values (S, G): the grid argmin moved to the vertex of the parabola through
    its neighbours (in log N, equally spaced). Returns (log N*, edge flag), both (S,)."""
    index = np.argmin(np.where(np.isfinite(values), values, np.inf), axis=1)
    edge = (index == 0) | (index == len(log_n) - 1)
    inner = np.clip(index, 1, len(log_n) - 2)
    rows = np.arange(values.shape[0])
    left, mid, right = values[rows, inner - 1], values[rows, inner], values[rows, inner + 1]
    curvature = left - 2.0 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curvature > 0, 0.5 * (left - right) / curvature, 0.0)
    step = log_n[1] - log_n[0]
    refined = log_n[inner] + np.clip(np.nan_to_num(shift), -1.0, 1.0) * step
    return np.where(edge, log_n[index], refined), edge


def compute_optimal(law: LawOfND, flops: float, max_params: float | None = None) -> AllocationDraws:
    """N*, D*, loss at the optimum, per posterior draw, for the budget C = flops."""
    grid = n_grid(flops, max_params)
    values = law(grid, flops / (6.0 * grid))  # (S, G)
    log_n_opt, edge = refine_minimum(np.log(grid), values)
    n_opt = np.exp(log_n_opt)
    d_opt = flops / (6.0 * n_opt)
    # the law at each draw's own optimum: a (S, 1) input per draw, diagonal taken by the shape
    loss = law(n_opt[:, None], d_opt[:, None])[:, 0]
    at_edge = float(np.mean(edge))
    if max_params is not None:
        # hitting the cap is a constraint, not a too-narrow search
        at_edge = float(np.mean(edge & (n_opt < 0.999 * max_params)))
    return AllocationDraws(flops, n_opt, d_opt, loss, at_edge)


def allocation_curve(law: LawOfND, budgets: np.ndarray, max_params: float | None = None) -> list[AllocationDraws]:
    """Compute-optimal draws at each budget, for a fan chart of loss against compute."""
    return [compute_optimal(law, float(c), max_params) for c in budgets]
