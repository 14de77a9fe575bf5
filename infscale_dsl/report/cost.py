"""Lifetime cost: training plus serving, in FLOPs (Sardana et al. 2024) and in money.

"Beyond Chinchilla-Optimal" (Sardana et al. 2024): to reach a target loss and then serve
D_inf tokens, minimise 6 N D_train + 2 N D_inf over N, where D_train(N) is the data that brings
the law to the target at size N. Per posterior draw: D_train(N) by bisection in log D on a grid
of N, then the cheapest N. Draws where the target is out of reach (the law's floor lies above
it) count as infeasible and are reported as a share, never silently dropped.

Money, per candidate: training GPU-hours from FLOPs / (MFU x peak FLOP/s); serving GPU-hours per
year from the latency per token x tokens served per year (batch 1, one GPU per stream: the
setting the latency tables measure); each times the price of a GPU-hour.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..devices import ACCELERATORS
from .allocation import LawOfND
from .risk import Summary

D_RANGE = (1e6, 1e16)  # tokens searched for D_train
BISECTION_STEPS = 60  # halves log D's interval to ~1e-17 of its width
N_POINTS = 256


@dataclass
class LifetimeDraws:
    target: float
    inference_tokens: float
    n_opt: np.ndarray  # (S,) per draw; NaN where infeasible
    d_train: np.ndarray  # (S,)
    total_flops: np.ndarray  # (S,) 6 N D_train + 2 N D_inf at the optimum
    chinchilla_flops: np.ndarray  # (S,) the same lifetime cost at the training-only optimum
    feasible: float  # share of draws that can reach the target

    def summary(self) -> dict[str, object]:
        ok = np.isfinite(self.total_flops)
        if not ok.any():
            return {"target_loss": self.target, "inference_tokens": self.inference_tokens,
                    "share_feasible": self.feasible}
        return {
            "target_loss": self.target,
            "inference_tokens": self.inference_tokens,
            "share_feasible": self.feasible,
            "n_opt": Summary.of(self.n_opt[ok]),
            "d_train": Summary.of(self.d_train[ok]),
            "tokens_per_parameter": Summary.of(self.d_train[ok] / self.n_opt[ok]),
            "total_flops": Summary.of(self.total_flops[ok]),
            "chinchilla_total_flops": Summary.of(self.chinchilla_flops[ok]),
            "saving_vs_chinchilla": Summary.of(1.0 - self.total_flops[ok] / self.chinchilla_flops[ok]),
        }


def tokens_to_reach(law: LawOfND, n: np.ndarray, target: float, n_draws: int) -> np.ndarray:
    """D_train (S, G) at which the law (decreasing in D) meets the target; inf where out of
    reach within D_RANGE, the low end where even that is enough."""
    low = np.full((n_draws, n.size), np.log(D_RANGE[0]))
    high = np.full((n_draws, n.size), np.log(D_RANGE[1]))
    reachable = law(n, np.exp(high)) <= target
    already = law(n, np.exp(low)) <= target
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (low + high)
        meets = law(n, np.exp(mid)) <= target
        high = np.where(meets, mid, high)
        low = np.where(meets, low, mid)
    tokens = np.exp(high)
    tokens = np.where(already, D_RANGE[0], tokens)
    return np.where(reachable, tokens, np.inf)


def lifetime_optimal(law: LawOfND, target: float, inference_tokens: float, n_draws: int,
                     n_range: tuple[float, float] = (1e6, 1e13), max_params: float | None = None) -> LifetimeDraws:
    """Per draw, the N minimising 6 N D_train(N) + 2 N D_inf (Sardana et al. 2024, eq. 2)."""
    high = min(n_range[1], max_params) if max_params else n_range[1]
    n = np.logspace(np.log10(n_range[0]), np.log10(high), N_POINTS)
    d_train = tokens_to_reach(law, n, target, n_draws)  # (S, G)
    with np.errstate(invalid="ignore"):
        total = 6.0 * n * d_train + 2.0 * n * inference_tokens
        training = 6.0 * n * d_train
    rows = np.arange(n_draws)
    best = np.argmin(total, axis=1)
    chinchilla = np.argmin(training, axis=1)  # training-only optimum, then charged for serving
    feasible = np.isfinite(total[rows, best])

    def at(values: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Each draw's value at its own grid index; NaN for infeasible draws."""
        chosen = values[rows, index] if values.ndim == 2 else values[index]
        return np.where(feasible, chosen, np.nan)

    return LifetimeDraws(
        target=target,
        inference_tokens=inference_tokens,
        n_opt=at(n, best),
        d_train=at(d_train, best),
        total_flops=at(total, best),
        chinchilla_flops=at(total, chinchilla),
        feasible=float(np.mean(feasible)),
    )


@dataclass
class CostAssumptions:
    """What turns FLOPs and latency into GPU-hours and money; all stated in the report."""

    gpu_hour_price: float  # currency units per GPU-hour
    mfu: float = 0.4  # model FLOPs utilisation in training
    peak_flops: float = ACCELERATORS["H100"].peak_flops["bfloat16"]  # per GPU
    requests_per_year: float | None = None
    tokens_per_request: float = 256.0  # output tokens per request
    years: float = 1.0  # serving lifetime counted in the total
    currency: str = "USD"  # of gpu_hour_price, and so of every cost

    def training_gpu_hours(self, flops: np.ndarray) -> np.ndarray:
        return np.asarray(flops, dtype=np.float64) / (self.mfu * self.peak_flops) / 3600.0

    def serving_gpu_hours_per_year(self, ms_per_token: np.ndarray) -> np.ndarray:
        tokens = (self.requests_per_year or 0.0) * self.tokens_per_request
        return np.asarray(ms_per_token, dtype=np.float64) * 1e-3 * tokens / 3600.0

    def describe(self) -> str:
        text = (f"training at {self.mfu:.0%} MFU of {self.peak_flops:.3g} FLOP/s per GPU; "
                f"{self.gpu_hour_price:g} {self.currency} per GPU-hour")
        if self.requests_per_year:
            text += (f"; serving {self.requests_per_year:.3g} requests per year x "
                     f"{self.tokens_per_request:g} tokens at batch 1 for {self.years:g} year(s)")
        return text


def candidate_costs(training_flops: np.ndarray, ms_per_token: np.ndarray | None,
                    assumptions: CostAssumptions) -> list[dict[str, Summary]]:
    """Per candidate: training cost, serving GPU-hours and cost per year, total cost.

    training_flops: (n,) or (S, n); ms_per_token: (S, n) draws or (1, n) measured, or None.
    """
    flops = np.atleast_2d(np.asarray(training_flops, dtype=np.float64))
    train_cost = assumptions.training_gpu_hours(flops) * assumptions.gpu_hour_price
    rows = []
    for i in range(flops.shape[1]):
        row = {"training_gpu_hours": Summary.of(assumptions.training_gpu_hours(flops[:, i])),
               "training_cost": Summary.of(train_cost[:, i])}
        total = train_cost[:, i]
        if ms_per_token is not None and assumptions.requests_per_year:
            hours = assumptions.serving_gpu_hours_per_year(ms_per_token[:, i])
            serving = hours * assumptions.gpu_hour_price
            n = max(total.size, serving.size)
            total = np.broadcast_to(total, (n,)) + np.broadcast_to(serving, (n,)) * assumptions.years
            row.update(serving_gpu_hours_per_year=Summary.of(hours),
                       serving_cost_per_year=Summary.of(serving))
        row["total_cost"] = Summary.of(total)
        rows.append(row)
    return rows
