"""The gate sees misfit, not only convergence (checks.py): a law that cannot follow its table
fails the gate, and the report built on it says NOT RELIABLE."""
import numpy as np
import pandas as pd

from infscale_dsl.checks import misfit_checks
from infscale_dsl.fit import fit
from infscale_dsl.language import load_spec
from infscale_dsl.report.build import ReportOptions, build_report
from infscale_dsl.report.conditions import Condition

LAW = "loss ~ E + A/N^alpha + B/D^beta"


def test_chinchilla_law_on_loss_that_rises_with_N_fails_the_gate():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"N": np.exp(rng.uniform(np.log(1e7), np.log(1e9), 40))})
    table["D"] = 20 * table.N * np.exp(rng.uniform(-1, 1, len(table)))
    # loss rises with N: no law of this form, whose terms all fall with N, can follow it
    table["loss"] = 2.5 + 0.08 * np.log(table.N / 1e7) + 0.01 * rng.standard_normal(len(table))
    result = fit(load_spec(LAW, columns=table.columns), table, chains=2, warmup=200, draws=200)
    misfit = [p for p in result.diagnostics["problems"] if p.startswith("misfit")]
    assert misfit and not result.diagnostics["ok"], result.diagnostics
    assert any("trend with N" in p for p in misfit)
    assert result.checks["laws"]["loss"]["trend"]["N"] > 0.6
    report = build_report(result, pd.DataFrame({"N": [1e9], "D": [2e10]}), ReportOptions(targets=[Condition("loss", "<=", 3.0)]))
    assert not report.reliable and any(p.startswith("misfit") for p in report.problems)


def test_checks_on_a_law_that_follows_its_data_find_nothing():
    rng = np.random.default_rng(1)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e9), 30))
    law = 2.0 + 50 / N ** 0.3
    y = law * np.exp(0.01 * rng.standard_normal(30))
    spec = load_spec("loss ~ E + A/N^alpha", columns=["N", "loss"])
    report = misfit_checks(spec, {"loss": law[None, :].repeat(10, 0)}, {"loss": y}, {"loss": {"N": N}},
                           {"loss": 0.01})
    assert report["problems"] == []
    assert report["laws"]["loss"]["r2"] > 0.9 and report["laws"]["loss"]["noise_share"] < 0.3


def test_a_noise_scale_near_the_data_spread_is_misfit():
    rng = np.random.default_rng(2)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e9), 30))
    y = 3.0 * np.exp(0.05 * rng.standard_normal(30))  # no trend at all: the law's terms explain nothing
    spec = load_spec("loss ~ E + A/N^alpha", columns=["N", "loss"])
    fitted = np.full((10, 30), 3.0)
    report = misfit_checks(spec, {"loss": fitted}, {"loss": y}, {"loss": {"N": N}}, {"loss": 0.05})
    assert any("noise scale of loss" in p for p in report["problems"])
    assert any("R^2" in p for p in report["problems"])
