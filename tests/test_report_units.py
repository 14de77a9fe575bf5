"""The report's arithmetic on synthetic draws: conditions, risk, allocation, lifetime cost,
frontier and recommendation. No fitting here; every expected value is worked out by hand."""
import numpy as np
import pytest

from infscale_dsl.errors import LawError
from infscale_dsl.report.allocation import compute_optimal
from infscale_dsl.report.conditions import Condition
from infscale_dsl.report.cost import CostAssumptions, candidate_costs, lifetime_optimal
from infscale_dsl.report.frontier import pareto_front, recommend
from infscale_dsl.report.risk import Quantity, assess_candidates, extrapolation_factor, probability


def test_condition_parses_and_judges():
    c = Condition.parse(" loss <= 2.95 ")
    assert (c.name, c.op, c.threshold) == ("loss", "<=", 2.95)
    np.testing.assert_array_equal(c.met(np.array([2.9, 2.95, 3.0])), [True, True, False])
    np.testing.assert_allclose(c.shortfall(np.array([2.9, 3.05])), [0.0, 0.1])
    high = Condition.parse("accuracy>=0.5")
    np.testing.assert_allclose(high.shortfall(np.array([0.4, 0.6])), [0.1, 0.0])
    assert str(Condition.parse("latency < 2e1")) == "latency < 20"


@pytest.mark.parametrize("text", ["loss = 3", "loss <=", "<= 3", "loss <= three", "2 <= loss"])
def test_bad_condition_says_how_to_write_one(text):
    with pytest.raises(LawError) as error:
        Condition.parse(text)
    assert "loss <= 2.95" in error.value.diagnostics[0].hint


def test_probability_and_its_monte_carlo_error():
    met = np.array([True] * 90 + [False] * 10)
    p, error = probability(met, ess=25.0)
    assert p == pytest.approx(0.9)
    assert error == pytest.approx(np.sqrt(0.9 * 0.1 / 25.0))


def test_extrapolation_factor_is_one_inside_and_a_ratio_outside():
    assert extrapolation_factor(5.0, (1.0, 10.0)) == 1.0
    assert extrapolation_factor(30.0, (1.0, 10.0)) == pytest.approx(3.0)
    assert extrapolation_factor(0.25, (1.0, 10.0)) == pytest.approx(4.0)


def test_assess_candidates_on_known_draws():
    rng = np.random.default_rng(0)
    s = 4000
    law = np.stack([rng.normal(2.9, 0.02, s), rng.normal(3.0, 0.02, s)], axis=1)  # (S, 2)
    observed = law + rng.normal(0.0, 0.01, law.shape)
    quantities = {
        "loss": Quantity(observed=observed, law=law, ess=1000.0),
        "latency": Quantity(observed=np.array([[25.0, 10.0]]), source="table"),
    }
    conditions = [Condition.parse("loss <= 2.95"), Condition.parse("latency <= 20")]
    risks = assess_candidates(["a", "b"], quantities, conditions,
                              inputs={"N": np.array([1e9, 2e9])}, data_ranges={"N": (1e8, 1e9)},
                              flops=np.array([6e18, 1.2e19]))
    a, b = risks
    assert a.targets[0].p_met == pytest.approx(np.mean(observed[:, 0] <= 2.95))
    assert a.targets[0].p_met_law == pytest.approx(np.mean(law[:, 0] <= 2.95))
    assert a.targets[0].mc_error == pytest.approx(np.sqrt(a.targets[0].p_met * (1 - a.targets[0].p_met) / 1000))
    assert a.targets[1].p_met == 0.0 and b.targets[1].p_met == 1.0
    assert a.p_all_met == 0.0  # its latency misses the budget in every draw
    assert b.p_all_met == pytest.approx(np.mean(observed[:, 1] <= 2.95))
    assert b.targets[0].expected_shortfall == pytest.approx(np.mean(np.maximum(observed[:, 1] - 2.95, 0)))
    assert a.extrapolation == {"N": 1.0} and b.extrapolation["N"] == pytest.approx(2.0)
    assert b.extrapolating and not a.extrapolating
    assert a.quantities["loss"]["law"].median == pytest.approx(2.9, abs=0.005)


def chinchilla_law(alpha, beta, a=400.0, b=410.0, e=1.69):
    """Chinchilla's law with (S,) draws of the exponents; returns law(N, D) -> (S, G)."""
    alpha, beta = np.asarray(alpha)[:, None], np.asarray(beta)[:, None]
    return lambda n, d: e + a / np.power(n, alpha) + b / np.power(d, beta)


def test_compute_optimal_matches_the_closed_form():
    # Hoffmann et al. 2022, eq. 4: N* = G (C/6)^(beta/(alpha+beta)), G = (alpha A / (beta B))^(1/(alpha+beta))
    alpha, beta, a, b = np.array([0.34, 0.30]), np.array([0.28, 0.33]), 406.4, 410.7
    flops = 5.76e23
    result = compute_optimal(chinchilla_law(alpha, beta, a, b), flops)
    g = (alpha * a / (beta * b)) ** (1 / (alpha + beta))
    expected = g * (flops / 6) ** (beta / (alpha + beta))
    np.testing.assert_allclose(result.n_opt, expected, rtol=1e-3)
    np.testing.assert_allclose(result.d_opt * result.n_opt * 6, flops, rtol=1e-12)
    assert result.at_edge == 0.0


def test_compute_optimal_respects_a_parameter_cap():
    result = compute_optimal(chinchilla_law(np.array([0.34]), np.array([0.28])), 5.76e23, max_params=1e10)
    assert result.n_opt[0] <= 1e10 * 1.0001
    assert result.at_edge == 0.0  # the cap binds; that is not a too-narrow search


def test_lifetime_optimum_moves_to_smaller_models_when_serving_many_tokens():
    law = chinchilla_law(np.array([0.34]), np.array([0.28]), 406.4, 410.7)
    train_only = lifetime_optimal(law, target=2.2, inference_tokens=0.0, n_draws=1)
    serving = lifetime_optimal(law, target=2.2, inference_tokens=2e13, n_draws=1)
    assert train_only.feasible == 1.0
    # the law at the found point meets the target
    assert law(train_only.n_opt[:, None], train_only.d_train[:, None])[0, 0] == pytest.approx(2.2, abs=1e-6)
    assert serving.n_opt[0] < 0.7 * train_only.n_opt[0]
    assert serving.d_train[0] > train_only.d_train[0]
    assert serving.total_flops[0] <= serving.chinchilla_flops[0]
    unreachable = lifetime_optimal(law, target=1.5, inference_tokens=0.0, n_draws=1)  # below E = 1.69
    assert unreachable.feasible == 0.0 and np.isnan(unreachable.n_opt[0])


def test_candidate_costs():
    assumptions = CostAssumptions(gpu_hour_price=2.0, mfu=0.5, peak_flops=1e15, requests_per_year=1e6,
                                  tokens_per_request=100)
    flops = np.array([1.8e21])  # 1.8e21 / 5e14 = 3.6e6 s = 1000 GPU-hours
    latency = np.array([[10.0], [20.0], [30.0]])  # ms per token draws: 1e8 tokens -> 1e6 s = 277.8 h at 10 ms
    (row,) = candidate_costs(flops, latency, assumptions)
    assert row["training_gpu_hours"].median == pytest.approx(1000.0)
    assert row["training_cost"].median == pytest.approx(2000.0)
    assert row["serving_gpu_hours_per_year"].median == pytest.approx(20e-3 * 1e8 / 3600)
    assert row["total_cost"].median == pytest.approx(2000.0 + 2.0 * 20e-3 * 1e8 / 3600)
    assert row["total_cost"].q05 < row["total_cost"].median < row["total_cost"].q95


def test_pareto_front():
    loss = np.array([2.90, 2.92, 2.95, 2.93])
    latency = np.array([14.0, 10.0, 7.0, 12.0])  # the last is dominated by the second
    np.testing.assert_array_equal(pareto_front(loss, latency), [True, True, True, False])


def test_recommend_lowest_latency_above_threshold():
    names = ["deep", "mid", "wide"]
    choice = recommend(names, p_all=np.array([0.97, 0.93, 0.6]), latency=np.array([14.0, 10.0, 7.0]))
    assert choice.chosen == "mid"
    assert "0.9" in choice.rule_text and "lowest median latency" in choice.rule_text
    none = recommend(names, p_all=np.array([0.5, 0.4, 0.3]), latency=np.array([14.0, 10.0, 7.0]))
    assert none.chosen is None and "deep" in none.reason
    safest = recommend(names, p_all=np.array([0.9, 0.95, 0.95]), latency=np.array([14.0, 10.0, 7.0]),
                       rule="max-probability")
    assert safest.chosen == "wide"
