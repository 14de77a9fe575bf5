"""Learning curves: `curves by run` fits tables with several rows (checkpoints) per run.

Tables are simulated from a known law, with a known offset per run (sd RUN_SD on the log scale)
and noise per checkpoint (sd NOISE_SD). Fits are small (2 chains x 300 draws after 300 warm-up,
fixed seeds) and shared: one per structure. The duplicated-checkpoint test compares posterior
sds, so its fits draw 1000 per chain.
"""
import numpy as np
import pandas as pd
import pytest

from infscale_dsl.cli import main
from infscale_dsl.inference.fit import fit
from infscale_dsl.language import load_spec
from infscale_dsl.posterior.result import FitResult
from infscale_dsl.prediction.predict import predict_draws

RUN_SD, NOISE_SD = 0.03, 0.005
SMALL_NUTS = dict(chains=2, warmup=300, draws=300, max_draws=300, seed=0)
TWO_LINES = "curves by run\nloss ~ E + A/N^alpha + B/D^beta\n"


def chinchilla(N, D):
    return 1.8 + 400 / N ** 0.34 + 2000 / D ** 0.37


def power_product(N, D):
    """A law whose size exponent only the comparison between runs can inform: N is fixed
    within a run, and on the log scale it adds to the run's offset."""
    return 3.0 * (N / 1e8) ** -0.1 * (D / 1e9) ** -0.12


def curve_table(law, n_runs: int, fractions: tuple = (), tokens: tuple = (), seed: int = 0) -> pd.DataFrame:
    """n_runs runs from N = 1e7 to 1e9 parameters, each measured at these fractions of its
    training on 20 N tokens, or at these numbers of tokens; the true offsets in column u."""
    rng = np.random.default_rng(seed)
    sizes = np.geomspace(1e7, 1e9, n_runs)
    offsets = rng.normal(0.0, RUN_SD, n_runs)
    seen = [[20 * N * f for f in fractions] or list(tokens) for N in sizes]
    rows = [dict(run=f"run{j}", N=N, D=D, u=offsets[j]) for j, N in enumerate(sizes) for D in seen[j]]
    table = pd.DataFrame(rows)
    table["loss"] = law(table["N"], table["D"]) * np.exp(table["u"] + rng.normal(0.0, NOISE_SD, len(table)))
    return table


@pytest.fixture(scope="module")
def curves():
    return curve_table(chinchilla, n_runs=8, fractions=(0.2, 0.4, 0.6, 0.8, 1.0))


@pytest.fixture(scope="module")
def curves_fit(curves):
    """The two-line spec on 8 runs x 5 checkpoints: default priors, sigma integrated out."""
    return fit(load_spec(TWO_LINES, columns=curves.columns), curves, **SMALL_NUTS)


def test_show_says_how_rows_are_grouped(curves, tmp_path, capsys):
    (tmp_path / "curves.law").write_text(TWO_LINES)
    uneven = curves.drop(index=[0, 1, 7])  # run0 keeps 3 checkpoints, run1 4, the others 5
    uneven.to_csv(tmp_path / "curves.csv", index=False)
    assert main(["show", str(tmp_path / "curves.law"), str(tmp_path / "curves.csv")]) == 0
    out = capsys.readouterr().out
    assert "curves by run: rows are checkpoints of 8 runs" in out
    assert "loss: 3 to 5 rows per run (median 5)" in out
    assert "u ~ Normal(0, tau_loss) on the log scale (centred, tau_loss__u per run)" in out
    assert "tau_loss     run_scale    InverseGamma(1, 0.0002773)" in out and "tau_loss^2 (log scale, per run)" in out


def test_a_two_line_spec_fits_a_curve_table(curves_fit):
    assert curves_fit.diagnostics["divergences"] == 0
    assert {"tau_loss", "sigma_loss", "alpha"} <= set(curves_fit.summary().index)
    # each run's offset, in the order of the run ids
    assert curves_fit.levels["run"] == tuple(f"run{j}" for j in range(8))
    # (chains, draws, runs), beside the other sampling sites (posterior.py)
    assert curves_fit.idata.unconstrained_posterior["tau_loss__u"].shape == (2, 300, 8)


def test_sigma_is_the_noise_within_runs_and_tau_the_spread_between_them(curves, curves_fit):
    draws = curves_fit.draws
    # sigma drawn after sampling from the residuals less each run's offset: the checkpoint
    # noise (0.005), not the runs' spread (0.03) that a fit without offsets would report
    assert 0.0035 < np.median(draws["sigma_loss"]) < 0.0075
    spread = curves.groupby("run")["u"].first().std()
    assert 0.5 * spread < np.median(draws["tau_loss"]) < 2 * spread


def test_a_new_run_draws_its_own_offset_shared_by_its_rows(curves_fit):
    candidates = pd.DataFrame({"run": ["new_a", "new_a", "new_b"], "N": 3e8, "D": [3e9, 6e9, 3e9]})
    log_draws = np.log(predict_draws(curves_fit, candidates)["loss"].observed)  # (S, 3)
    same_run = np.corrcoef(log_draws[:, 0], log_draws[:, 1])[0, 1]
    other_run = np.corrcoef(log_draws[:, 0], log_draws[:, 2])[0, 1]
    assert same_run > 0.8 and other_run < same_run - 0.3
    # without a run column, every row is a run of its own
    alone = np.log(predict_draws(curves_fit, candidates.drop(columns="run"))["loss"].observed)
    assert np.corrcoef(alone[:, 0], alone[:, 1])[0, 1] < same_run - 0.3


def test_a_curves_fit_is_saved_and_loaded(curves_fit, tmp_path):
    loaded = FitResult.load(curves_fit.save(tmp_path / "fit"))
    assert loaded.spec.curves.column == "run"
    candidates = pd.DataFrame({"N": [3e8], "D": [6e9]})
    np.testing.assert_allclose(predict_draws(loaded, candidates)["loss"].observed,
                               predict_draws(curves_fit, candidates)["loss"].observed)


def test_a_point_fit_reads_tau_and_sigma_from_the_runs_mean_residuals(curves):
    result = fit(load_spec(TWO_LINES, columns=curves.columns), curves, method="map", seed=0)
    draws = result.draws
    assert 0.003 < float(draws["sigma_loss"][0]) < 0.008
    spread = curves.groupby("run")["u"].first().std()
    assert 0.5 * spread < float(draws["tau_loss"][0]) < 2 * spread


def test_a_law_on_curves_beside_a_law_on_plain_rows(curves, tmp_path, capsys):
    # `loss curves by run`: the loss rows are checkpoints; the latency rows, timed per shape,
    # have no run id and no run offset
    latency = pd.DataFrame({"n_layers": [2, 4, 8, 16, 2, 4, 8, 16], "d_model": [64] * 4 + [128] * 4})
    latency["latency"] = (0.1 + 0.02 * latency["n_layers"]) * np.exp(
        np.random.default_rng(1).normal(0.0, 0.01, len(latency)))
    table = pd.concat([curves, latency], ignore_index=True)
    text = "loss curves by run\nloss ~ E + A/N^alpha + B/D^beta\nlatency ~ c0 + c1 * n_layers\n"
    result = fit(load_spec(text, columns=table.columns), table, **SMALL_NUTS)
    assert "tau_loss" in result.draws and "tau_latency" not in result.draws
    assert result.n_obs == {"loss": len(curves), "latency": len(latency)}
    assert 0.015 < float(np.median(result.draws["c1"])) < 0.025
    # two rows of one new run share their offset; latency rows are plain new rows
    new = pd.DataFrame({"run": ["new", "new"], "N": 3e8, "D": [3e9, 6e9], "n_layers": [4, 4]})
    draws = predict_draws(result, new)
    log_loss = np.log(draws["loss"].observed)
    assert np.corrcoef(log_loss[:, 0], log_loss[:, 1])[0, 1] > 0.8
    assert np.all(np.isfinite(draws["latency"].observed))
    # the same table under `curves by run` for every law: the latency rows lack run ids
    (tmp_path / "every.law").write_text("curves by run\n" + text.split("\n", 1)[1])
    table.to_csv(tmp_path / "runs.csv", index=False)
    assert main(["check", str(tmp_path / "every.law"), str(tmp_path / "runs.csv")]) == 2
    assert "column 'run' has no run id on some rows" in capsys.readouterr().err


@pytest.mark.slow
def test_declared_sigma_and_tau_priors_with_few_rows_per_run(tmp_path, capsys):
    """Runs of 2 rows: the offsets are sampled non-centred; sigma, declared, is sampled too."""
    table = curve_table(chinchilla, n_runs=12, fractions=(0.5, 1.0), seed=2)
    source = "curves by run\nsigma_loss ~ HalfNormal(0.02)\ntau_loss ~ HalfNormal(0.05)\nloss ~ E + A/N^alpha + B/D^beta\n"
    (tmp_path / "declared.law").write_text(source)
    table.to_csv(tmp_path / "declared.csv", index=False)
    assert main(["show", str(tmp_path / "declared.law"), str(tmp_path / "declared.csv")]) == 0
    assert "(non-centred, tau_loss__u = tau_loss * tau_loss__z" in capsys.readouterr().out
    result = fit(load_spec(source, columns=table.columns), table, **SMALL_NUTS)
    assert result.diagnostics["divergences"] == 0
    assert result.priors["tau_loss"] == "HalfNormal(0.05) over tau_loss (declared)"
    assert 0.0025 < np.median(result.draws["sigma_loss"]) < 0.01
    assert 0.01 < np.median(result.draws["tau_loss"]) < 0.06


# --- duplicated checkpoints ---------------------------------------------------------------------

WITH_RUNS = "curves by run\nloss ~ A / N^alpha / D^beta\n"
WITHOUT_RUNS = "loss ~ A / N^alpha / D^beta\n"


@pytest.fixture(scope="module")
def alpha_sd():
    """Posterior sd of alpha, the size exponent, with and without `curves by`, on 6 runs
    measured at the same 4 token counts, and on the same table with every checkpoint twice."""
    table = curve_table(power_product, n_runs=6, tokens=(1e9, 2e9, 4e9, 8e9), seed=1)
    doubled = pd.concat([table, table], ignore_index=True)
    sd = {}
    for spec in (WITH_RUNS, WITHOUT_RUNS):
        for name, data in (("once", table), ("twice", doubled)):
            result = fit(load_spec(spec, columns=data.columns), data, **SMALL_NUTS | dict(draws=1000, max_draws=1000))
            assert result.diagnostics["divergences"] == 0
            sd[spec, name] = float(np.std(result.draws["alpha"]))
    return sd


@pytest.mark.slow
def test_duplicated_checkpoints_are_not_new_runs(alpha_sd):
    # N is fixed within a run and every run saw the same token counts, so alpha is known from
    # the runs, not from their checkpoints: with the runs' offsets, twice the checkpoints leave
    # its sd within 15 % (the Monte Carlo error of a ratio of two sds from 2 x 1000 draws is
    # about 4 %)
    assert 0.85 < alpha_sd[WITH_RUNS, "twice"] / alpha_sd[WITH_RUNS, "once"] < 1.15


@pytest.mark.slow
def test_without_curves_duplicated_checkpoints_count_as_data(alpha_sd):
    # the same rows read as independent runs: the sd shrinks by about 1 / sqrt(2) = 0.71
    assert alpha_sd[WITHOUT_RUNS, "twice"] / alpha_sd[WITHOUT_RUNS, "once"] < 0.8
