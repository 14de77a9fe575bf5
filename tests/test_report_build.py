"""build_report on fits made from known draws (no sampling): a loss fit and a latency fit with
its own uncertainty, paired draw by draw; a fit that failed its diagnostics."""
from dataclasses import replace
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest

from infscale_dsl.errors import LawError
from infscale_dsl.language import load_spec
from infscale_dsl.posterior.result import FitResult
from infscale_dsl.prediction.predict import predict_draws
from infscale_dsl.report import figures, plots, render
from infscale_dsl.report.build import ReportOptions, build_report
from infscale_dsl.report.build_figures import size_range
from infscale_dsl.report.conditions import Condition
from infscale_dsl.report.cost import CostAssumptions
from infscale_dsl.report.document import to_dict
from infscale_dsl.report.figure_data import FigureData

LOSS_LAW = "data N : positive\ndata D : positive\nloss ~ E + A/N^alpha + B/D^beta\n"
LATENCY_LAW = ("data latency = tpot_ms : positive\ndata n_layers : positive\ndata d_model : positive\n"
               "latency ~ c0 + c1 * n_layers + c2 * n_layers * d_model^2\n")


def fit_from_draws(source: str, columns: list[str], means: dict[str, float], spread: float,
                   ranges: dict, diverging: int = 0, seed: int = 0) -> FitResult:
    """A FitResult whose posterior is independent normal draws around `means` (2 chains x 1000)."""
    rng = np.random.default_rng(seed)
    spec = load_spec(source, columns=columns)
    posterior = {name: mean * (1 + spread * rng.standard_normal((2, 1000))) for name, mean in means.items()}
    flags = np.zeros((2, 1000), dtype=bool)
    flags[0, :diverging] = True
    response = spec.laws[0].response
    return FitResult(spec=spec, method="nuts", idata=az.from_dict(posterior=posterior, sample_stats={"diverging": flags}),
                     levels={}, data_ranges=ranges, n_obs={response: 40}, left_out={}, data_sha256="",
                     columns=tuple(columns))


@pytest.fixture(scope="module")
def fits():
    loss = fit_from_draws(LOSS_LAW, ["N", "D", "loss"],
                          {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28, "sigma_loss": 0.01,
                           "drift_loss": 0.02},
                          spread=0.02, ranges={"N": (1e7, 5e8), "D": (1e8, 1e10)})
    latency = fit_from_draws(LATENCY_LAW, ["tpot_ms", "n_layers", "d_model"],
                             {"c0": 1.5, "c1": 0.5, "c2": 1e-7, "sigma_latency": 0.05, "drift_latency": 0.02},
                             spread=0.1, ranges={"n_layers": (4, 32), "d_model": (512, 4096)}, seed=1)
    return loss, latency


CANDIDATES = pd.DataFrame({"name": ["deep", "mid", "wide"], "N": [1e9, 1e9, 1e9], "D": [2e10, 2e10, 2e10],
                           "d_model": [2048, 2560, 3072], "n_layers": [24, 16, 12]})


def test_latency_from_a_fit_is_paired_with_the_loss_draws(fits):
    loss_fit, latency_fit = fits
    options = ReportOptions(targets=[Condition.parse("loss <= 2.62")], budgets=[Condition.parse("latency <= 13")])
    report = build_report(loss_fit, CANDIDATES, options, latency_fit)
    assert report.reliable and report.latency == "latency"
    loss = predict_draws(loss_fit, CANDIDATES, seed=options.seed)["loss"].observed
    latency = predict_draws(latency_fit, CANDIDATES, seed=options.seed + 1)["latency"]
    p_all = ((loss <= 2.62) & (latency.observed <= 13)).mean(axis=0)
    for i, candidate in enumerate(report.candidates):
        assert candidate.p_all_met == pytest.approx(p_all[i], abs=1e-12)
        band = candidate.quantities["latency"]
        assert band["source"] == "fit" and band["law"].q05 < band["law"].median < band["law"].q95
        assert band["law"].median == pytest.approx(np.median(latency.law[:, i]))
    # equal N and D: equal loss, so only latency separates them and the shallowest wins
    qualified = [c for c in report.candidates if c.p_all_met >= 0.9]
    expected = min(qualified, key=lambda c: c.quantities["latency"]["observed"].median).name if qualified else None
    assert report.recommendation.chosen == expected
    assert report.candidates[0].extrapolation["N"] == pytest.approx(2.0)


def test_a_fit_with_divergences_is_not_reliable(fits):
    loss_fit, _ = fits
    failed = fit_from_draws(LOSS_LAW, ["N", "D", "loss"],
                            {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28, "sigma_loss": 0.01,
                           "drift_loss": 0.02},
                            spread=0.02, ranges={"N": (1e7, 5e8), "D": (1e8, 1e10)}, diverging=5)
    candidates = CANDIDATES.assign(latency=[14.0, 10.0, 7.7])
    report = build_report(failed, candidates, ReportOptions(targets=[Condition.parse("loss <= 2.62")]))
    doc = to_dict(report)
    assert doc["reliable"] is False and "5 divergent transitions" in doc["problems"][0]
    assert all(c["p_all_met"] is None for c in doc["candidates"])
    assert doc["recommendation"]["chosen"] is None and doc["recommendation"]["reason"].startswith("NOT RELIABLE")
    assert "P(target met) against budget" not in report.figures.titles()


def test_allocation_needs_the_n_and_d_names(fits):
    loss_fit, _ = fits
    with pytest.raises(LawError, match="does not read P"):
        build_report(loss_fit, None, ReportOptions(flops=1e21, n_name="P"))
    report = build_report(loss_fit, None, ReportOptions(flops=1e21))
    assert report.allocation["n_opt"].q05 < report.allocation["n_opt"].median < report.allocation["n_opt"].q95


# ---- figure data: gathered by build, drawn when written ----------------------------------------

def test_build_gathers_each_figures_data_and_draws_none(fits, monkeypatch):
    loss_fit, latency_fit = fits
    drawn = []
    real_png = plots.png
    monkeypatch.setattr(plots, "png", lambda fig, tight=True: drawn.append(fig) or real_png(fig, tight))
    rng = np.random.default_rng(0)
    n, d = np.exp(rng.uniform(np.log(1e7), np.log(5e8), 30)), np.exp(rng.uniform(np.log(1e8), np.log(1e10), 30))
    training = pd.DataFrame({"N": n, "D": d, "loss": 1.69 + 406.4 / n ** 0.34 + 410.7 / d ** 0.28})
    options = ReportOptions(targets=[Condition.parse("loss <= 2.62")], budgets=[Condition.parse("latency <= 13")],
                            flops=1e21, training_table=training)
    report = build_report(loss_fit, CANDIDATES.assign(latency=[14.0, 10.0, 7.7]), options)
    assert not drawn
    data = report.figures
    assert data.titles() == to_dict(report)["figures"] == [
        "Data against the fitted law", "Loss against latency", "Compute-optimal loss against compute",
        "P(target met) against budget", "Posterior draws of the law's parameters"]
    assert data.frontier.target == 2.62 and data.frontier.budget == 13
    assert data.fan.loss.shape == (24, 2000) and data.probability.p_met.shape == (24,)
    assert [g.name for g in data.data.groups][0].startswith("N ") and data.parameters["alpha"].shape == (2000,)
    images = figures.draw(data)
    assert list(images) == data.titles() and len(drawn) == 5
    # a law without N and D: no compute figures, and no error unless an allocation is asked for
    assert build_report(latency_fit, None, ReportOptions()).figures.titles() == [
        "Posterior draws of the law's parameters"]


# ---- units, warnings and readable figures --------------------------------------------------------

SHAPE_LAW = ("data N : positive\ndata D : positive\ndata n_layers : positive\n"
             "loss ~ E + A/N^alpha + B/D^beta + c / n_layers\n")


def shape_fit(alpha: float) -> FitResult:
    """A loss law that also reads n_layers (fitted on 2 to 16 layers)."""
    return fit_from_draws(SHAPE_LAW, ["N", "D", "n_layers", "loss"],
                          {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": alpha, "beta": 0.28, "c": 0.05,
                           "sigma_loss": 0.01, "drift_loss": 0.02},
                          spread=0.02, ranges={"N": (1e7, 5e8), "D": (1e8, 1e10), "n_layers": (2, 16)})


def test_allocation_holds_architecture_inputs_at_whole_numbers():
    report = build_report(shape_fit(alpha=0.34), None, ReportOptions(flops=1e21))
    fixed = report.allocation["fixed"]
    assert fixed == {"n_layers": 6} and isinstance(fixed["n_layers"], int)  # sqrt(2 x 16) = 5.66 layers
    assert not report.warnings


def test_an_allocation_optimum_at_the_grid_edge_is_a_warning():
    # with alpha near 0 the loss does not fall with N: the optimum runs to the smallest N searched
    report = build_report(shape_fit(alpha=1e-6), None, ReportOptions(flops=1e21))
    assert report.allocation["share_at_grid_edge"] > 0.05
    assert "edge of the search grid" in report.warnings[0] and "--max-params" in report.warnings[0]
    assert "Warning: " in to_markdown(report)


def test_a_noisy_latency_row_is_a_warning_that_says_the_threshold(fits):
    loss_fit, _ = fits
    candidates = CANDIDATES.assign(tpot_ms=[14.0, 10.0, 7.7], tpot_cv=[0.02, 0.25, 0.05])
    report = build_report(loss_fit, candidates, ReportOptions(budgets=[Condition.parse("tpot_ms <= 20")]))
    assert len(report.warnings) == 1
    assert "mid (25%)" in report.warnings[0] and "more than 10%" in report.warnings[0]
    assert "deep" not in report.warnings[0]
    assert report.units == {"tpot_ms": "ms"}  # read from the column's name


def test_latency_units_label_the_axes_and_convert_for_costs(fits, monkeypatch):
    loss_fit, _ = fits
    labels = {}
    real_frontier = plots.frontier_plot

    def frontier_plot(*args):
        labels["loss"], labels["latency"] = args[-2:]
        return real_frontier(*args)

    monkeypatch.setattr(plots, "frontier_plot", frontier_plot)
    cost = CostAssumptions(gpu_hour_price=2.0, requests_per_year=1e6, currency="EUR")
    in_ms = build_report(loss_fit, CANDIDATES.assign(latency=[14.0, 10.0, 7.7]),
                         ReportOptions(latency_unit="ms", loss_unit="nats/token", cost=cost))
    figures.draw(in_ms.figures)
    assert labels == {"loss": "loss (nats/token), new run", "latency": "latency (ms)"}
    in_s = build_report(loss_fit, CANDIDATES.assign(latency_s=[0.014, 0.010, 0.0077]),
                        ReportOptions(latency="latency_s", cost=cost))
    assert in_s.units == {"latency_s": "s", "cost": "EUR"}
    for name in ("deep", "mid", "wide"):  # the same serving time, whatever its unit
        assert in_s.costs[name]["total_cost"].median == pytest.approx(in_ms.costs[name]["total_cost"].median)
    assert "training cost (EUR)" in to_markdown(in_s)


def test_the_latency_budget_is_drawn_on_the_loss_latency_plot(fits):
    loss_fit, _ = fits
    report = build_report(loss_fit, CANDIDATES.assign(tpot_ms=[14.0, 10.0, 7.7]),
                          ReportOptions(targets=[Condition.parse("loss <= 3.1")],
                                        budgets=[Condition.parse("tpot_ms <= 12")]))
    assert (report.figures.frontier.target, report.figures.frontier.budget) == (3.1, 12.0)


def test_a_latency_in_a_unit_that_is_not_time_cannot_be_costed(fits):
    loss_fit, _ = fits
    options = ReportOptions(latency_unit="tokens", cost=CostAssumptions(gpu_hour_price=2.0, requests_per_year=1e6))
    with pytest.raises(LawError, match="cannot turn latency in 'tokens' into serving time"):
        build_report(loss_fit, CANDIDATES.assign(latency=[14.0, 10.0, 7.7]), options)


@pytest.mark.parametrize("values, title", [
    ([17100, 18000, 20088], "N 17.1k to 20.1k"),   # pandas would title it "(17099.999, 20088.0]"
    ([1.2e9, 3e9], "N 1.2B to 3B"),
    ([5e6, 2.5e7], "N 5M to 25M"),
    ([12, 96], "N 12 to 96"),
])
def test_size_group_titles_read_as_sizes(values, title):
    assert size_range("N", pd.Series(values)) == title


def to_markdown(report) -> str:
    """The report's Markdown text, without writing its figures anywhere."""
    return render.to_markdown(replace(report, figures=FigureData()), Path("/nonexistent"), "r")
