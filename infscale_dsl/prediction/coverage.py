"""What coverage held-out runs would show if the fit were right.

A backtest counts how many held-out runs fall inside their 90 % intervals. Were the runs'
errors independent, that count would be Binomial(n, 0.9) for calibrated intervals. They are
not: every run predicted by one fit shares that fit's error in the law's parameters. Six runs
cannot pin an exponent down, and whether the true exponent sits near the posterior's centre or
in its tail moves every held-out run together, so a calibrated fit shows coverage near 1.00 on
one table and far under 0.90 on another. The binomial test then calls both miscalibrated.

The reference here is the fit's own: each joint predictive draw s (one posterior draw of the
law, with a new run's noise and drift per row; `predict_draws`) is read as a possible truth,
and the held-out set's coverage counted against the intervals as they are. If the fit is
right, the real count is one more draw from that distribution:

    counts = covered_counts(draws.observed, q05, q95)   # (S,): runs covered were draw s the truth
    low, high = expected_range(counts, n)               # 90 % of calibrated backtests land here
    p = coverage_p(covered, counts)                     # two-sided: too narrow or too wide

It is only as good as the fit's joint model: the drift beyond the data is drawn per row
(likelihood.py), so a misfit that moves all far runs together is not in the reference.
"""
from __future__ import annotations

import numpy as np

EXPECTED_MASS = 0.90  # the share of calibrated backtests `expected_range` spans


def covered_counts(observed: np.ndarray, q05: np.ndarray, q95: np.ndarray) -> np.ndarray:
    """(S,): how many of the n rows' intervals [q05, q95] (n,) would cover the truth were
    joint draw s of `observed` (S, n) the truth."""
    return np.sum((q05 <= observed) & (observed <= q95), axis=1)


def expected_range(counts: np.ndarray, n: int) -> tuple[float, float]:
    """The central EXPECTED_MASS of the coverage (a share of n) under the fit's own draws."""
    tail = (1 - EXPECTED_MASS) / 2
    low, high = np.quantile(counts, [tail, 1 - tail], method="inverted_cdf")
    return float(low) / n, float(high) / n


def coverage_p(covered: int, counts: np.ndarray) -> float:
    """Two-sided mid-p-value of `covered` runs covered among the fit's own counts: twice the
    smaller tail, each tail counting half the draws equal to it (a count is discrete: counted
    whole in both tails, the draws equal to it make the test reject far less often than its
    level says)."""
    tie = np.mean(counts == covered) / 2
    below, above = np.mean(counts < covered) + tie, np.mean(counts > covered) + tie
    return float(min(1.0, 2 * min(below, above)))


def pooled_counts(counts: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Counts over several hold-outs at once, their fits taken as independent: each fit's counts
    in an order of their own, summed draw by draw (as many draws as the shortest has)."""
    n_draws = min(len(c) for c in counts)
    return np.sum([rng.permutation(c)[:n_draws] for c in counts], axis=0)
