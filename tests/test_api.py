"""The model-object API (isd.Law) as a notebook user meets it, and the InferenceData of a NUTS
fit: arviz's summary and posterior-predictive plot work on it as they are. One small NUTS fit
(2 chains x 100 draws) serves every posterior test; the rest are point fits."""
import os
import subprocess
import sys
from pathlib import Path

import arviz as az
import matplotlib
import numpy as np
import pandas as pd
import pytest

import infscale_dsl as isd
from infscale_dsl.errors import LawError
from infscale_dsl.posterior.result import FitResult

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "examples/data/cpu_small_runs.parquet"
CHINCHILLA = ROOT / "models/chinchilla.law"
PARAMETERS = ["E", "A", "alpha", "B", "beta", "sigma_loss", "drift_loss"]


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return isd.read_table(RUNS)


@pytest.fixture(scope="module")
def nuts_fit(table) -> FitResult:
    return isd.Law.from_file(CHINCHILLA).fit(table, chains=2, warmup=100, draws=100, max_draws=100)


def test_a_law_from_a_file_or_a_string_shows_itself(capsys):
    law = isd.Law.from_file(CHINCHILLA)
    assert repr(law) == f"Law({CHINCHILLA}: loss ~ E + A/N^alpha + B/D^beta)"
    law.show()
    out = capsys.readouterr().out
    assert "A            coefficient" in out and "Normal(0.5, 0.3) in [0, 2]" in out
    assert repr(isd.Law("loss ~ A/N^a + E\n")) == "Law(<string>: loss ~ A/N^a + E)"


def test_a_bad_spec_fails_when_the_law_is_made_not_when_it_is_fitted():
    with pytest.raises(LawError) as error:
        isd.Law("loss ~ A/N**a + E\n")
    assert "N^alpha" in error.value.diagnostics[0].hint


def test_a_point_fit_summarises_predicts_saves_and_loads(table, tmp_path):
    fit = isd.Law.from_file(CHINCHILLA).fit(table, method="map")
    assert isinstance(fit, FitResult)
    assert list(fit.summary().index) == PARAMETERS
    assert "map" in repr(fit) and "loss 12 rows" in repr(fit)
    predicted = fit.predict(pd.DataFrame({"N": [1e6, 1e7], "D": [1e8, 1e9]}))
    assert {"loss_median", "loss_q05", "loss_q95", "loss_law_median"} <= set(predicted.columns)
    assert predicted.loss_law_median[1] < predicted.loss_law_median[0]
    assert isinstance(fit.to_arviz(), az.InferenceData)
    fit.save(tmp_path / "fit")
    assert FitResult.load(tmp_path / "fit").summary().equals(fit.summary())


def test_a_law_fits_a_table_named_by_its_path():
    fit = isd.Law.from_file(CHINCHILLA).fit(RUNS, method="map")
    assert fit.n_obs == {"loss": 12}


def test_the_posterior_holds_the_parameters_and_arviz_needs_no_var_names(nuts_fit):
    idata = nuts_fit.to_arviz()
    assert list(idata.posterior.data_vars) == PARAMETERS
    # the sites NUTS moved in are kept apart, in arviz's group for the sampler's space
    assert set(idata.unconstrained_posterior.data_vars) == {"E__log_sum", "E__shares"}
    assert list(az.summary(idata).index) == PARAMETERS
    assert {"prior", "prior_predictive", "posterior_predictive", "observed_data"} <= set(idata.groups())


def test_posterior_predictive_runs_sit_on_the_observed_runs(nuts_fit, table):
    idata = nuts_fit.to_arviz()
    runs = idata.posterior_predictive["loss"].values
    assert runs.shape == (2, 100, len(table))
    observed = idata.observed_data["loss"].values
    np.testing.assert_allclose(np.median(runs, axis=(0, 1)), observed, rtol=0.1)
    az.plot_ppc(idata)
    az.plot_ppc(idata, group="prior")


def test_prior_draws_follow_the_priors(nuts_fit, table):
    prior = {name: values.values[0] for name, values in nuts_fit.to_arviz().prior.items()}
    assert all(values.shape == (500,) for values in prior.values())
    # drift_loss ~ HalfNormal(sqrt(0.01^2 + (2 sigma_loss)^2)), at each draw's sigma_loss
    scale = np.sqrt(0.01 ** 2 + (2 * prior["sigma_loss"]) ** 2)
    assert np.mean(prior["drift_loss"] / scale) == pytest.approx(np.sqrt(2 / np.pi), rel=0.1)
    # alpha ~ Normal(0.5, 0.3) in [0, 2], as declared
    assert prior["alpha"].min() >= 0 and np.median(prior["alpha"]) == pytest.approx(0.5, abs=0.05)
    # A's default prior is on the log of its term at the typical N: Normal(log median loss, 3)
    log_term = np.log(prior["A"]) - prior["alpha"] * np.mean(np.log(table["N"]))
    assert np.median(log_term) == pytest.approx(np.log(np.median(table["loss"])), abs=0.5)
    assert np.std(log_term) == pytest.approx(3.0, rel=0.15)


def test_the_new_groups_survive_the_fit_folder(nuts_fit, tmp_path):
    nuts_fit.save(tmp_path / "fit")
    loaded = az.from_netcdf(str(tmp_path / "fit" / "posterior.nc"))
    assert {"prior", "prior_predictive", "posterior_predictive", "unconstrained_posterior"} <= set(loaded.groups())
    assert list(FitResult.load(tmp_path / "fit").summary().index) == PARAMETERS


def test_a_fit_folder_from_before_the_new_groups_still_loads(nuts_fit, tmp_path):
    """Older posterior.nc files hold the sampling sites beside the parameters, and no prior or
    predictive groups."""
    idata = nuts_fit.to_arviz()
    old_posterior = idata.posterior.merge(idata.unconstrained_posterior)
    old = az.InferenceData(posterior=old_posterior, log_likelihood=idata.log_likelihood,
                           sample_stats=idata.sample_stats, observed_data=idata.observed_data)
    result = FitResult(spec=nuts_fit.spec, method="nuts", idata=old, levels={}, data_ranges=nuts_fit.data_ranges,
                       n_obs=nuts_fit.n_obs, left_out={}, data_sha256=nuts_fit.data_sha256,
                       columns=nuts_fit.columns, support=nuts_fit.support)
    result.save(tmp_path / "old")
    loaded = FitResult.load(tmp_path / "old")
    assert "E__log_sum" in loaded.idata.posterior  # as written
    assert list(loaded.summary().index) == PARAMETERS
    np.testing.assert_allclose(loaded.draws["A"], nuts_fit.draws["A"])


def test_a_fit_runs_in_float64_and_leaves_jax_as_it_found_it(nuts_fit, table):
    """x64 is scoped to the fit (fit.py), so JAX code after it (the nn models) keeps float32."""
    import jax

    before = jax.config.jax_enable_x64
    again = isd.Law.from_file(CHINCHILLA).fit(table, chains=2, warmup=100, draws=100, max_draws=100)
    assert jax.config.jax_enable_x64 == before
    assert jax.numpy.zeros(1).dtype == (np.float64 if before else np.float32)
    assert all(draws.dtype == np.float64 for draws in again.draws.values())
    assert all(draws.dtype == np.float64 for draws in nuts_fit.draws.values())


def run_python(code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter without the tests' XLA_FLAGS, as a user's script starts."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)


def test_import_is_quick_and_loads_no_fitting_stack():
    done = run_python("import sys, infscale_dsl as isd\n"
                      "law = isd.Law.from_file('models/chinchilla.law')\n"
                      "print(sorted(m for m in ('jax', 'numpyro', 'arviz', 'pandas') if m in sys.modules))\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_law_fit_asks_jax_for_a_cpu_device_per_chain():
    done = run_python("import infscale_dsl as isd, jax\n"
                      "isd.Law.from_file('models/chinchilla.law').fit("
                      "'examples/data/cpu_small_runs.parquet', method='map', chains=4)\n"
                      "print(jax.local_device_count())\n")
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) >= 4


def test_a_law_fit_says_how_when_jax_started_too_early():
    done = run_python("import warnings, jax, infscale_dsl as isd\n"
                      "jax.devices()  # JAX starts with one CPU device\n"
                      "warnings.simplefilter('error')  # the warning stops the fit: no sampling here\n"
                      "try:\n"
                      "    isd.Law.from_file('models/chinchilla.law').fit('examples/data/cpu_small_runs.parquet', chains=4)\n"
                      "except UserWarning as warning:\n"
                      "    print(warning)\n")
    assert done.returncode == 0, done.stderr
    assert "not in parallel" in done.stdout
    assert "XLA_FLAGS=--xla_force_host_platform_device_count=4 before importing jax" in done.stdout
