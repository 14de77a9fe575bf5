"""The extrapolation benchmark's fits are independent tasks of an executor: worker processes
give the same rows as the sequential run (same seeds), in the same order."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infscale_dsl.executors import InProcess, LocalProcesses

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benchmark's modules import as benchmarks.*, here and in its workers
from benchmarks.extrapolation import Settings, coverage_p, run_all  # noqa: E402
from benchmarks.tasks import Task  # noqa: E402

# the point fit and the seed paper's baseline: seconds per fit, both deterministic at a fixed seed
SETTINGS = Settings(seed=0, fit=dict(method="map", n_starts=256))
METHODS = ["infscale-dsl", "curve_fit"]


def tiny_task(name: str, seed: int) -> Task:
    """24 runs of Chinchilla's law with 1 % noise fitted, the 6 largest in N predicted."""
    rng = np.random.default_rng(seed)
    n = np.sort(np.exp(rng.uniform(np.log(1e7), np.log(1e9), 30)))
    d = np.exp(rng.uniform(np.log(1e8), np.log(1e10), 30))
    loss = (1.69 + 406.4 / n ** 0.34 + 410.7 / d ** 0.28) * np.exp(0.01 * rng.standard_normal(30))
    table = pd.DataFrame({"N": n, "D": d, "loss": loss})
    return Task(name, "chinchilla.law", table[:24], table[24:].reset_index(drop=True), "a test task")


def test_worker_processes_give_the_sequential_rows(capsys):
    tasks = [tiny_task("tiny_a", 0), tiny_task("tiny_b", 1)]
    sequential = pd.DataFrame(run_all(tasks, METHODS, SETTINGS, InProcess()))
    with LocalProcesses(2) as executor:
        parallel = pd.DataFrame(run_all(tasks, METHODS, SETTINGS, executor))
    assert sequential["error"].eq("").all(), sequential["error"]
    assert list(zip(parallel["task"], parallel["method"])) == [
        ("tiny_a", "infscale-dsl"), ("tiny_a", "curve_fit"), ("tiny_b", "infscale-dsl"), ("tiny_b", "curve_fit")]
    pd.testing.assert_frame_equal(parallel.drop(columns="wall_s"), sequential.drop(columns="wall_s"), rtol=1e-9)
    assert len(capsys.readouterr().out.splitlines()) == 8  # each row printed as its fit finished
    # both methods' intervals come with their joint draws, so each row says how likely its
    # coverage is under the method's own claims (6 runs: 0 to 6 covered, a p-value in (0, 1])
    assert sequential["p_own"].between(0, 1).all() and (sequential["p_own"] > 0).all()


def test_a_task_is_judged_by_its_coverage_p_value_not_by_a_range():
    # 4 of 4 covered is what calibrated 90 % intervals give two times in three
    assert coverage_p(4, 4) == 1.0
    assert coverage_p(234, 234) < 1e-9  # 234 of 234: far too wide
    assert coverage_p(19, 30) < 0.001 and coverage_p(27, 30) > 0.5  # 0.63 too narrow; 0.90 fine


def test_pooled_coverage_against_what_the_methods_own_draws_expect():
    from benchmarks.extrapolation import pooled_own

    rows = [{"covered": 10, "n_test": 12, "own_mean": 9.0, "own_sd": 3.0},
            {"covered": 20, "n_test": 28, "own_mean": 18.0, "own_sd": 4.0},
            {"covered": 3, "n_test": 4, "own_mean": np.nan, "own_sd": np.nan}]  # no draws: left out
    # 30 covered where 27 +- 5 were expected: z 0.6, two-sided p 0.55
    assert pooled_own(rows) == "by its own draws: 30 of 40 covered where 27 +- 5 were expected (p_own 0.55, 2 tasks)"


def test_methods_errors_are_compared_over_the_tasks_both_completed():
    from benchmarks.extrapolation import error_ratios

    rows = [{"task": t, "method": m, "mare": e, "error": ""} for t, m, e in [
        ("a", "infscale-dsl", 0.01), ("a", "curve_fit", 0.02),
        ("b", "infscale-dsl", 0.04), ("b", "curve_fit", 0.02),
        ("c", "infscale-dsl", 0.01), ("c", "curve_fit", 0.01)]]
    rows.append({"task": "d", "method": "curve_fit", "mare": np.nan, "error": "RuntimeError at x.py:1: no start"})
    lines = error_ratios(rows)
    # ratios 0.5, 2 and 1: geometric mean 1; infscale-dsl errs less on a alone; d crashed and is left out
    assert lines[2].startswith("  infscale-dsl / curve_fit: 1.00 (") and lines[2].endswith("), 1 of 3 tasks")
    assert lines[3] == "  infscale-dsl: within 10 % of the best other method's error on 2 of 3 tasks"
    assert lines[4] == "  curve_fit: within 10 % of the best other method's error on 2 of 3 tasks"


def test_the_drift_benchmark_scores_intervals_and_holds_the_default_among_its_candidates():
    from benchmarks.drift_default import candidates, interval_score
    from infscale_dsl.model.likelihood import DRIFT_FLOOR, DRIFT_PER_SCATTER

    truth = np.ones(2)
    # the first interval covers (its width, 0.2), the second misses by 0.1 (width 0.1 + 20 x 0.1)
    assert interval_score(truth, np.array([0.9, 1.1]), np.array([1.1, 1.2])) == pytest.approx((0.2 + 2.1) / 2)
    sigma = np.array([[0.0], [0.03]])
    default = candidates()[f"scatter {DRIFT_PER_SCATTER:g}, {DRIFT_FLOOR:g}"]
    np.testing.assert_allclose(default(sigma), np.sqrt(DRIFT_FLOOR ** 2 + (DRIFT_PER_SCATTER * sigma) ** 2))
    np.testing.assert_allclose(candidates()["fixed 0.02"](sigma), [[0.02], [0.02]])
