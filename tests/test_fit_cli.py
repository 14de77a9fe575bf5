"""The fit, predict and show commands as a user runs them, and the fit folder they share."""
import json

import numpy as np
import pandas as pd
import pytest

from infscale_dsl.cli import main
from infscale_dsl.posterior.result import FitResult

SPEC = "loss ~ A/N^a + B/D^b + E\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A synthetic runs table (Chinchilla-like law, 1% noise) and its spec, on disk."""
    folder = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    N = np.exp(rng.uniform(np.log(1e7), np.log(3e9), 60))
    D = N * np.exp(rng.uniform(np.log(5), np.log(100), 60))
    loss = (1.8 + 480 / N**0.35 + 2100 / D**0.37) * np.exp(0.01 * rng.standard_normal(60))
    pd.DataFrame({"N": N, "D": D, "loss": loss}).to_csv(folder / "runs.csv", index=False)
    (folder / "chinchilla.law").write_text(SPEC)
    return folder


@pytest.fixture(scope="module")
def fitted(runs):
    """`infscale-dsl fit` with few draws: enough to test the plumbing, too few to pass the gate."""
    out = runs / "fit"
    code = main(["fit", str(runs / "chinchilla.law"), str(runs / "runs.csv"), "-o", str(out),
                 "--chains", "2", "--warmup", "150", "--draws", "100", "--max-draws", "100", "--quiet"])
    assert code == 0  # without --strict a failed gate still exits 0
    return out


def test_fit_folder_holds_posterior_summary_spec_and_data_hash(fitted, runs):
    assert {p.name for p in fitted.iterdir()} >= {"posterior.nc", "summary.json", "spec.law", "fit.json"}
    summary = json.loads((fitted / "summary.json").read_text())
    assert set(summary["params"]) == {"A", "a", "B", "b", "E", "sigma_loss", "drift_loss"}
    assert set(summary["params"]["A"]) == {"mean", "median", "q05", "q95", "r_hat", "ess_bulk"}
    assert set(summary["diagnostics"]) >= {"divergences", "max_r_hat", "min_ess_bulk", "ok"}
    assert summary["n_obs"] == {"loss": 60} and summary["method"] == "nuts"
    # 2 chains x 100 draws need an ESS of 2 per draw to pass; --mass auto asks for 1 per draw in
    # the first quarter of warm-up, and the note says what it measured and what it chose
    sampler = summary["sampler"]
    assert sampler["draws"] == 100 and sampler["min_draws"] == 100 and sampler["max_draws"] == 100
    # the CLI asks for a CPU device per chain (the tests' JAX started with 2)
    assert sampler["chain_method"] == "parallel" and sampler["chain_method_fallback"] is None
    assert sampler["device"] == "cpu"
    assert sampler["mass_note"].startswith("first quarter of warm-up with the Laplace metric: ESS ")
    assert sampler["mass_note"].endswith({"laplace": "1.00 wanted: metric kept",
                                          "adapt": "1.00 wanted: metric re-estimated in the rest of warm-up"}[sampler["mass"]])
    assert len(summary["data_sha256"]) == 64
    assert summary["fit_id"] == json.loads((fitted / "fit.json").read_text())["fit_id"]
    assert (fitted / "spec.law").read_text() == SPEC


def test_few_draws_fail_the_gate_and_strict_exits_1(runs, tmp_path, capsys):
    code = main(["fit", str(runs / "chinchilla.law"), str(runs / "runs.csv"), "-o", str(tmp_path / "f"),
                 "--chains", "2", "--warmup", "150", "--draws", "100", "--max-draws", "100", "--quiet",
                 "--strict", "--mass", "laplace"])
    out = capsys.readouterr().out
    assert code == 1
    assert "NUTS: 2 chains x 100 draws after 150 warm-up, target acceptance 0.99, mass matrix laplace" in out
    assert "priors:" in out and "E            Gamma(2, " in out  # the priors used, as show prints them
    assert "DIAGNOSTICS FAILED" in out and "ESS" in out
    assert json.loads((tmp_path / "f" / "summary.json").read_text())["diagnostics"]["ok"] is False


def test_fit_folder_round_trips(fitted):
    loaded = FitResult.load(fitted)
    assert loaded.method == "nuts" and loaded.n_draws == 200
    assert loaded.draws["A"].shape == (200,)
    assert loaded.priors["a"].startswith("Normal(0.5, 0.5) in [0, 3]")
    assert loaded.sampler == json.loads((fitted / "fit.json").read_text())["sampler"]
    assert loaded.sampler["chains"] == 2 and loaded.sampler["seed"] == 0
    pd.testing.assert_frame_equal(loaded.summary(), FitResult.load(fitted).summary())


def test_predict_writes_intervals_per_response(fitted, tmp_path):
    candidates = pd.DataFrame({"N": [1e8, 1e10], "D": [2e9, 2e11]})
    candidates.to_csv(tmp_path / "cand.csv", index=False)
    assert main(["predict", str(fitted), str(tmp_path / "cand.csv"), "-o", str(tmp_path / "p.parquet")]) == 0
    predicted = pd.read_parquet(tmp_path / "p.parquet")
    for column in ("loss_median", "loss_q05", "loss_q95", "loss_law_median"):
        assert column in predicted
    assert (predicted.loss_q05 < predicted.loss_median).all() and (predicted.loss_median < predicted.loss_q95).all()
    # a bigger model trained longer has lower predicted loss
    assert predicted.loss_law_median[1] < predicted.loss_law_median[0]


def test_predict_refuses_a_table_without_a_needed_column(fitted, tmp_path, capsys):
    pd.DataFrame({"N": [1e8], "tokens": [2e9]}).to_csv(tmp_path / "bad.csv", index=False)
    assert main(["predict", str(fitted), str(tmp_path / "bad.csv"), "-o", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert "'D'" in err and "bad.csv" in err
    assert not (tmp_path / "p.csv").exists()


@pytest.fixture(scope="module")
def fitted_without_d(runs):
    """A law that ignores D, fitted to the same table (whose loss falls with D): a worse law."""
    (runs / "no_d.law").write_text("loss ~ A/N^a + E\n")
    out = runs / "fit_no_d"
    assert main(["fit", str(runs / "no_d.law"), str(runs / "runs.csv"), "-o", str(out), "--chains", "2",
                 "--warmup", "150", "--draws", "100", "--max-draws", "100", "--quiet"]) == 0
    return out


def test_predict_from_two_fits_stacks_them_by_loo_weight(fitted, fitted_without_d, tmp_path, capsys):
    candidates = pd.DataFrame({"N": [1e8, 1e10], "D": [2e9, 2e11]})
    candidates.to_csv(tmp_path / "cand.csv", index=False)
    single = {}
    for name, folder in (("full", fitted), ("no_d", fitted_without_d)):
        assert main(["predict", str(folder), str(tmp_path / "cand.csv"), "-o", str(tmp_path / f"{name}.csv")]) == 0
        single[name] = pd.read_csv(tmp_path / f"{name}.csv")
    capsys.readouterr()
    assert main(["predict", str(fitted), str(fitted_without_d), str(tmp_path / "cand.csv"),
                 "-o", str(tmp_path / "stacked.csv")]) == 0
    stacked = pd.read_csv(tmp_path / "stacked.csv")
    err = capsys.readouterr().err
    weights = dict(item.rsplit(" ", 1) for item in err.split("loss: stacking weights ")[1].splitlines()[0].split(", "))
    weights = {folder: float(w) for folder, w in weights.items()}
    assert abs(sum(weights.values()) - 1) < 0.011
    assert weights[str(fitted)] > 0.9  # the law that cannot follow D gets next to no say
    # a mixture's median lies between its parts' (here next to the full law's); intervals keep their order
    low = np.minimum(single["full"].loss_median, single["no_d"].loss_median)
    high = np.maximum(single["full"].loss_median, single["no_d"].loss_median)
    assert ((stacked.loss_median >= 0.995 * low) & (stacked.loss_median <= 1.005 * high)).all()
    assert (stacked.loss_q05 < stacked.loss_median).all() and (stacked.loss_median < stacked.loss_q95).all()


def test_fits_of_different_tables_are_not_stacked(fitted, fitted_without_d):
    from dataclasses import replace

    import infscale_dsl as isd

    other = replace(FitResult.load(fitted_without_d), data_sha256="0" * 64)
    with pytest.raises(isd.DataError, match="different tables"):
        isd.predict_stacked({"full": FitResult.load(fitted), "other": other}, pd.DataFrame({"N": [1e8], "D": [2e9]}))


def test_map_fit_and_where(runs, tmp_path, capsys):
    code = main(["fit", str(runs / "chinchilla.law"), str(runs / "runs.csv"), "-o", str(tmp_path / "m"),
                 "--method", "map", "--where", "N < 1e9"])
    assert code == 0
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert summary["method"] == "map" and summary["objective"] > 0
    assert summary["n_obs"]["loss"] < 60
    assert "point fit" in capsys.readouterr().out
    # its predictions carry an interval of the fitted noise around the point law, and say so
    (tmp_path / "new.csv").write_text("N,D\n2e9,4e10\n")
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "new.csv"), "-o", str(tmp_path / "p.csv")]) == 0
    frame = pd.read_csv(tmp_path / "p.csv")
    assert (frame.loss_q05 < frame.loss_median).all() and (frame.loss_median < frame.loss_q95).all()
    assert "noise around the point law only" in capsys.readouterr().err


def test_show_prints_roles_and_default_priors(runs, capsys):
    assert main(["show", str(runs / "chinchilla.law"), str(runs / "runs.csv")]) == 0
    out = capsys.readouterr().out
    assert "A            coefficient" in out and "a            exponent" in out
    assert "E            offset" in out and "default" in out
    assert "E__log_sum" in out  # the sampling parametrisation is shown


def test_bad_spec_exits_2_with_location(runs, tmp_path, capsys):
    (tmp_path / "bad.law").write_text("loss ~ A/N**a + E\n")
    assert main(["fit", str(tmp_path / "bad.law"), str(runs / "runs.csv"), "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "bad.law:1:" in err and "^" in err
