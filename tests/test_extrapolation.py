"""Predictions beyond the fitted runs widen with distance (likelihood.py's drift), as far as
real extrapolation errors need, and a user can override how much."""
import numpy as np
import pandas as pd
import pytest

from infscale_dsl.model.compile import compile_spec
from infscale_dsl.inference.fit import fit
from infscale_dsl.language import load_spec
from infscale_dsl.model.likelihood import distance_beyond
from infscale_dsl.prediction.predict import predict, predict_draws

TRUTH = {"E": 2.0, "A": 40.0, "alpha": 0.3}
BEND = 0.01  # the truth leaves the law by 1 % per log unit of N beyond 1e8


def truth(N):
    law = TRUTH["E"] + TRUTH["A"] / N ** TRUTH["alpha"]
    return law * (1 + BEND * np.log(np.maximum(N / 1e8, 1.0)))


@pytest.fixture(scope="module")
def train():
    """30 runs up to N = 1e8 (0.5 % noise), where the law is exactly right."""
    rng = np.random.default_rng(3)
    train = pd.DataFrame({"N": np.exp(rng.uniform(np.log(1e6), np.log(1e8), 30))})
    train["loss"] = truth(train.N) * np.exp(0.005 * rng.standard_normal(len(train)))
    return train


@pytest.fixture(scope="module")
def bent(train):
    spec = load_spec("loss ~ E + A/N^alpha", columns=["N", "loss"])
    return fit(spec, train, chains=2, warmup=300, draws=300, seed=0)


@pytest.mark.slow
def test_intervals_beyond_the_data_cover_a_law_that_bends_there(bent):
    far = pd.DataFrame({"N": [1e9, 3e9, 1e10, 3e10]})  # 2.3 to 5.7 log units beyond the data
    frame = predict(bent, far)
    y = truth(far.N)
    assert ((frame.loss_q05 <= y) & (y <= frame.loss_q95)).all(), frame
    # without the drift term the same posterior is confidently wrong out there
    draws = predict_draws(bent, far)["loss"]
    q05, q95 = np.quantile(draws.law * np.exp(bent.draws["sigma_loss"][:, None] * 1.645), [0.05, 0.95], axis=0)
    assert not ((q05 <= y) & (y <= q95)).any()


@pytest.mark.slow
def test_intervals_widen_with_distance_and_not_inside(bent):
    inside = pd.DataFrame({"N": [3e6, 1e7, 3e7]})
    outside = pd.DataFrame({"N": [1e9, 1e10, 1e11]})
    assert (predict_draws(bent, inside)["loss"].distance == 0).all()
    widths = []
    for table in (inside, outside):
        frame = predict(bent, table)
        widths.append(((frame.loss_q95 - frame.loss_q05) / frame.loss_median).to_numpy())
    assert widths[0].max() < 0.05  # noise and the law's own uncertainty, about 2 %
    assert np.all(np.diff(widths[1]) > 0) and widths[1][0] > 2 * widths[0].max()


def test_distance_is_from_the_hull_of_the_fitted_runs():
    # runs at (1, 1), (10, 1), (1, 10), (1, 3): in log space the triangle x + y <= log 10, whose
    # corner (10, 10) lies outside although N and D each stay inside their fitted ranges
    support = {"N": np.array([1.0, 10, 1, 1]), "D": np.array([1.0, 1, 10, 3])}
    rows = {"N": np.array([3.0, 10.0, 10 * np.e]), "D": np.array([3.0, 10.0, 10.0])}
    L = np.log(10)
    assert distance_beyond(rows, support, 3) == pytest.approx([0, L / np.sqrt(2), (L + 1) / np.sqrt(2)], abs=1e-4)


def test_show_prints_the_drift_and_a_declared_prior_overrides_it():
    default = compile_spec(load_spec("loss ~ E + A/N^alpha", columns=["N", "loss"]), None).describe()
    assert "drift_loss   drift        HalfNormal(sqrt(0.01^2 + (2*sigma_loss)^2))" in default
    assert "misfit grows by drift_loss per log unit of distance in N" in default
    unknown_inputs = compile_spec(load_spec("loss ~ E + A/N^alpha"), None).describe()  # no table: N a parameter
    assert "distance in its inputs (none is data yet: give the table)" in unknown_inputs
    declared = load_spec("drift_loss ~ HalfNormal(0.05)\nloss ~ E + A/N^alpha\n", columns=["N", "loss"])
    assert "HalfNormal(0.05)" in compile_spec(declared, None).describe()


def test_a_declared_drift_may_read_the_noise_scale():
    spec = load_spec("drift_loss ~ HalfNormal(3 * sigma_loss)\nloss ~ E + A/N^alpha\n", columns=["N", "loss"])
    compiled = compile_spec(spec, None)
    assert "HalfNormal(3*sigma_loss)" in compiled.describe()
    assert compiled.priors["drift_loss"].median({"sigma_loss": 0.01}) == pytest.approx(0.6745 * 0.03, rel=1e-3)
    # drawn after the noise scale it reads, in the prior's draws as in the fit's
    order = compiled.sample_order()
    assert order.index("sigma_loss") < order.index("drift_loss")


def test_the_drift_default_scales_with_each_draws_noise_and_a_run_spread():
    spec = load_spec("loss ~ E + A/N^alpha", columns=["N", "loss"])
    drift = compile_spec(spec, None).priors["drift_loss"]
    sigma = np.array([0.0, 0.005, 0.05])
    # the median of HalfNormal(s) is 0.674 s, s = sqrt(0.01^2 + (2 sigma)^2): a floor, then 2 sigma
    expected = 0.6745 * np.sqrt(0.01 ** 2 + (2 * sigma) ** 2)
    assert drift.median({"sigma_loss": sigma}) == pytest.approx(expected, rel=1e-3)
    # under `curves by`, a new run scatters by its offset too: sigma and tau together
    curves = load_spec("curves by run\nloss ~ E + A/N^alpha", columns=["N", "loss", "run"])
    drift = compile_spec(curves, None).priors["drift_loss"]
    assert drift.median({"sigma_loss": 0.03, "tau_loss": 0.04}) == pytest.approx(0.6745 * np.sqrt(0.01 ** 2 + 0.1 ** 2), rel=1e-3)
    # on the identity scale the noise is in the response's units: relative to its median
    identity = load_spec("loss noise Normal on identity\nloss ~ E + A/N^alpha", columns=["N", "loss"])
    prior = compile_spec(identity, None).priors["drift_loss"]
    assert prior.median({"sigma_loss": 0.15, "y_ref:loss": 3.0}) == pytest.approx(0.6745 * np.sqrt(0.01 ** 2 + 0.1 ** 2), rel=1e-3)


def test_a_fit_draws_each_drift_from_its_own_draws_noise(bent, train):
    """One drift per posterior draw, from HalfNormal(sqrt(0.01^2 + (2 sigma)^2)) at that draw's
    sigma: drift / scale is HalfNormal(1) (mean sqrt(2/pi)) and independent of sigma."""
    sigma, drift = bent.draws["sigma_loss"], bent.draws["drift_loss"]
    standard = drift / np.sqrt(0.01 ** 2 + (2 * sigma) ** 2)
    assert np.mean(standard) == pytest.approx(np.sqrt(2 / np.pi), rel=0.08)  # 600 draws: SE 3 %
    assert abs(np.corrcoef(standard, sigma)[0, 1]) < 0.15

    # a point fit sets the drift to its prior's median at the sigma it read off the residuals
    point = fit(bent.spec, train, method="map")
    expected = 0.6745 * np.sqrt(0.01 ** 2 + (2 * point.draws["sigma_loss"]) ** 2)
    assert point.draws["drift_loss"] == pytest.approx(expected, rel=1e-3)
