"""build_report on fits made from known draws (no sampling): a loss fit and a latency fit with
its own uncertainty, paired draw by draw; a fit that failed its diagnostics."""
import arviz as az
import numpy as np
import pandas as pd
import pytest

from infscale_dsl.language import load_spec
from infscale_dsl.posterior import FitResult
from infscale_dsl.predict import predict_draws
from infscale_dsl.report.build import ReportOptions, build_report
from infscale_dsl.report.conditions import Condition
from infscale_dsl.report.document import to_dict

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
    assert "P(target met) against budget" not in report.figures


def test_allocation_needs_the_n_and_d_names(fits):
    loss_fit, _ = fits
    from infscale_dsl.errors import LawError

    with pytest.raises(LawError, match="does not read P"):
        build_report(loss_fit, None, ReportOptions(flops=1e21, n_name="P"))
    report = build_report(loss_fit, None, ReportOptions(flops=1e21))
    assert report.allocation["n_opt"].q05 < report.allocation["n_opt"].median < report.allocation["n_opt"].q95
