"""The coverage a backtest should show were the fit right (prediction/coverage.py): when the
held-out runs' errors are independent it is the binomial's; when they share the fit's error it
spreads, and judging a calibrated fit by the binomial then cries wolf."""
import numpy as np
import pytest
from scipy.stats import binomtest

from infscale_dsl.prediction.coverage import coverage_p, covered_counts, expected_range, pooled_counts

DRAWS = 4000


def intervals(observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.quantile(observed, 0.05, axis=0), np.quantile(observed, 0.95, axis=0)


def joint_draws(rng: np.random.Generator, shared_sd: float, own_sd: float, shape: tuple[int, int]) -> np.ndarray:
    """(S, n): a common error per draw (the fit's parameters) plus each run's own."""
    return shared_sd * rng.standard_normal((shape[0], 1)) + own_sd * rng.standard_normal(shape)


def test_independent_runs_give_the_binomial():
    rng = np.random.default_rng(0)
    observed = joint_draws(rng, 0.0, 1.0, (DRAWS, 50))
    counts = covered_counts(observed, *intervals(observed))
    # Binomial(50, 0.9): mean 45, SD 2.12; tolerances: 4000 draws give the mean to +-0.1
    assert counts.mean() == pytest.approx(45, abs=0.3)
    assert counts.std() == pytest.approx(np.sqrt(50 * 0.9 * 0.1), rel=0.1)
    low, high = expected_range(counts, 50)
    assert 0.8 <= low <= 0.86 and 0.94 <= high <= 0.98


def test_a_shared_error_makes_all_or_nothing():
    rng = np.random.default_rng(1)
    observed = joint_draws(rng, 1.0, 0.01, (DRAWS, 30))
    counts = covered_counts(observed, *intervals(observed))
    assert np.mean((counts == 0) | (counts == 30)) > 0.95
    assert expected_range(counts, 30) == (0.0, 1.0)
    assert coverage_p(30, counts) > 0.8  # every run covered: what about 90 % of such fits show


def test_p_values_are_calibrated_where_the_binomial_is_not():
    """Truths drawn from the fit's own joint model: this p falls under 0.1 at most about 10 % of
    the time (less: a fifth of the counts sit at 100 of 100, a tail that cannot reject); the
    binomial's, blind to the shared error, far more often."""
    rng = np.random.default_rng(2)
    observed = joint_draws(rng, 1.0, 0.7, (DRAWS, 100))
    q05, q95 = intervals(observed)
    counts = covered_counts(observed, q05, q95)
    truths = joint_draws(rng, 1.0, 0.7, (400, 100))
    covered = covered_counts(truths, q05, q95)
    ours = np.array([coverage_p(int(c), counts) for c in covered])
    binomial = np.array([binomtest(int(c), 100, 0.9).pvalue for c in covered])
    # 400 truths: a share of 0.10 has SD 0.015
    assert 0.02 <= np.mean(ours < 0.1) <= 0.13
    assert np.mean(binomial < 0.1) > 0.4  # it calls every fit that covers all 100 too wide


def test_pooled_counts_add_fits_draw_by_draw():
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 5, size=1000), rng.integers(0, 7, size=800)
    pooled = pooled_counts([a, b], np.random.default_rng(0))
    assert pooled.shape == (800,) and pooled.mean() == pytest.approx(a.mean() + b.mean(), abs=0.2)
    assert np.array_equal(pooled, pooled_counts([a, b], np.random.default_rng(0)))
