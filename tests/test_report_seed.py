"""The seed question (Bian et al. 2025 data): which of the three 1B shapes to train. The report's
probabilities, frontier and choice are recomputed here straight from the posterior draws and the
latency table, and must agree."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from infscale_dsl.inference.fit import fit
from infscale_dsl.language import load_spec
from infscale_dsl.prediction.predict import predict_draws
from infscale_dsl.report.build import build_report
from infscale_dsl.report.frontier import pareto_front

ROOT = Path(__file__).resolve().parents[1]
TARGET = 3.0  # strict enough that the choice is not simply the fastest shape
LATENCY_BUDGET = 20.0  # ms per token


def load_example():
    spec = importlib.util.spec_from_file_location("seed_example", ROOT / "examples/seed_report/make_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def seed(shared_data):
    example = load_example()
    fitted, candidates = example.seed_tables(shared_data)
    spec = load_spec(ROOT / "models" / "bian2025.law", columns=fitted.columns)
    result = fit(spec, fitted, chains=2, warmup=300, draws=300, seed=0)
    return example, fitted, candidates, result


@pytest.mark.slow
def test_seed_tables_hold_the_paper_runs(seed):
    _, fitted, candidates, result = seed
    assert len(fitted) == 27 and result.n_obs["loss"] == 27
    assert sorted(candidates["name"]) == ["Morph-1B", "Morph-1B-v1", "Morph-1B-v2"]
    assert set(zip(candidates["d_model"], candidates["n_layers"])) == {(2048, 24), (2560, 16), (3072, 12)}


@pytest.mark.slow
def test_report_agrees_with_the_draws(seed):
    example, fitted, candidates, result = seed
    report = build_report(result, candidates, example.seed_options(fitted, f"loss <= {TARGET}"))

    # the law by hand, from the posterior draws: (E + A/N^a + B/D^a) (1 + eps R^a), (S, 3)
    d = {k: v[:, None] for k, v in result.draws.items()}
    n, tokens = candidates["params_N"].to_numpy(float), candidates["tokens_D"].to_numpy(float)
    r = candidates["d_model"].to_numpy(float) / candidates["n_layers"].to_numpy(float)
    law = (d["E"] + d["A"] / n ** d["alpha"] + d["B"] / tokens ** d["alpha"]) * (1 + d["eps"] * r ** d["alpha"])
    new_run = predict_draws(result, candidates, seed=0)["loss"].observed
    np.testing.assert_allclose(predict_draws(result, candidates, seed=0)["loss"].law, law, rtol=1e-10)
    latency = candidates["latency_s"].to_numpy(float) * 1000 / 256

    p_law = (law <= TARGET).mean(axis=0)
    p_new = (new_run <= TARGET).mean(axis=0)
    p_all = ((new_run <= TARGET) & (latency <= LATENCY_BUDGET)).mean(axis=0)
    for i, candidate in enumerate(report.candidates):
        loss_target, latency_budget = candidate.targets
        assert loss_target.p_met_law == pytest.approx(p_law[i], abs=1e-12)
        assert loss_target.p_met == pytest.approx(p_new[i], abs=1e-12)
        assert latency_budget.p_met == float(latency[i] <= LATENCY_BUDGET)
        assert candidate.p_all_met == pytest.approx(p_all[i], abs=1e-12)

    # an independent draw of a new run (y = law * exp(sigma z + drift d z'), d its distance beyond
    # the fitted runs) agrees within 5 Monte Carlo errors
    rng = np.random.default_rng(123)
    z, z_beyond = rng.standard_normal(law.shape), rng.standard_normal(law.shape)
    distance = predict_draws(result, candidates, seed=0)["loss"].distance  # (3,)
    noise = d["sigma_loss"] * z + d["drift_loss"] * distance * z_beyond
    p_independent = (law * np.exp(noise) <= TARGET).mean(axis=0)
    for i, candidate in enumerate(report.candidates):
        assert abs(p_independent[i] - candidate.targets[0].p_met) < 5 * candidate.targets[0].mc_error + 0.02

    on_front = pareto_front(np.median(new_run, axis=0), latency)
    assert [report.on_frontier[c.name] for c in report.candidates] == list(on_front)
    qualified = np.flatnonzero(p_all >= 0.9)
    expected = report.candidates[qualified[np.argmin(latency[qualified])]].name if qualified.size else None
    assert report.recommendation.chosen == expected
    print(f"\nP(loss <= {TARGET}):", dict(zip(candidates["name"], p_new.round(3))), "chosen:", expected)


@pytest.mark.slow
def test_allocation_at_1e21_respects_the_cap(seed):
    example, fitted, candidates, result = seed
    report = build_report(result, None, example.seed_options(fitted))
    a = report.allocation
    assert a["n_opt"].q05 < a["n_opt"].median < a["n_opt"].q95 <= 2e9 * 1.0001
    assert a["d_opt"].median * a["n_opt"].median * 6 == pytest.approx(1e21, rel=0.05)
    assert report.lifetime["share_feasible"] > 0.9
    # serving 1e12 tokens pushes the lifetime optimum below the training-only one
    assert report.lifetime["saving_vs_chinchilla"].median > 0
