"""Several backtests at once: each hold-out's fit is a task of an executor, the answers are those
of the same backtests run one by one on any executor, and the command scores them together."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infscale_dsl.cli import main
from infscale_dsl.errors import LawError
from infscale_dsl.executors import InProcess, LocalProcesses
from infscale_dsl.language import load_spec
from infscale_dsl.prediction.coverage import coverage_p
from infscale_dsl.report.backtest import (Holdout, backtest, backtests, describe_all, fittable, group_holdouts, pooled,
                                         split, top_holdouts)

ROOT = Path(__file__).resolve().parents[1]
CHINCHILLA = ROOT / "models/chinchilla.law"
# rules that each hold out 6 of the 30 rows, so every fit has the same shapes and compiles once
HOLDOUTS = ["N >= N.quantile(0.8)", "D >= D.quantile(0.8)"]
MAP = dict(method="map", n_starts=256)


@pytest.fixture(scope="module")
def table():
    """30 runs of Chinchilla's law with 1 % noise, in three size groups of 10 by N."""
    rng = np.random.default_rng(0)
    n = np.exp(rng.uniform(np.log(1e7), np.log(5e8), 30))
    d = np.exp(rng.uniform(np.log(1e8), np.log(1e10), 30))
    loss = (1.69 + 406.4 / n ** 0.34 + 410.7 / d ** 0.28) * np.exp(0.01 * rng.standard_normal(30))
    size_group = np.array(["small", "medium", "large"])[np.argsort(np.argsort(n)) // 10]
    return pd.DataFrame({"N": n, "D": d, "loss": loss, "size_group": size_group})


@pytest.fixture(scope="module")
def spec(table):
    return load_spec(CHINCHILLA, columns=table.columns)


@pytest.fixture(scope="module")
def in_process(spec, table):
    return backtests(spec, table, HOLDOUTS, executor=InProcess(), **MAP)


def test_backtests_match_one_by_one(spec, table, in_process):
    assert [b.holdout for b in in_process] == HOLDOUTS
    for rule, result in zip(HOLDOUTS, in_process):
        alone = backtest(spec, table, rule, **MAP)
        assert result.scores == alone.scores and result.scores[0].n_held_out == 6
        pd.testing.assert_frame_equal(result.predictions, alone.predictions)


def test_fits_in_worker_processes_give_the_same_answers(spec, table, in_process):
    # Ray's workers are the same kind of fresh process (tests/test_executors.py runs its path)
    with LocalProcesses(2) as executor:
        elsewhere = backtests(spec, table, HOLDOUTS, executor=executor, **MAP)
    for here, there in zip(in_process, elsewhere):
        assert there.holdout == here.holdout
        pd.testing.assert_frame_equal(there.predictions, here.predictions, rtol=1e-9)


def test_pooled_scores_count_every_held_out_prediction(in_process):
    (score,) = pooled(in_process)
    predictions = pd.concat([b.predictions for b in in_process])
    assert score.n_held_out == 12 and score.n_fit is None
    assert score.coverage_90 == pytest.approx(predictions["loss_covered"].mean())
    assert score.median_abs_rel_error == pytest.approx(predictions["loss_abs_rel_error"].median())
    assert score.mean_rel_width_90 == pytest.approx(
        ((predictions["loss_q95"] - predictions["loss_q05"]) / predictions["loss"]).mean())


def test_expected_coverage_is_the_fits_own(in_process):
    """A point fit's draws are noise alone, independent per run: were the fit right, its 6
    held-out runs would be covered as Binomial(6, 0.9) (mean 5.4, 4000 draws: +-0.03)."""
    for b in in_process:
        assert b.covered_draws["loss"].mean() == pytest.approx(5.4, abs=0.1)
        (score,) = b.scores
        assert score.coverage_90_p == coverage_p(int(b.predictions["loss_covered"].sum()), b.covered_draws["loss"])
    (score,) = pooled(in_process)
    assert score.coverage_90_expected == (9 / 12, 1.0)  # Binomial(12, 0.9): 2.6 % at or under 8, 11 % under 10
    assert "expected" in describe_all(in_process).splitlines()[1]


def test_each_group_is_predicted_from_the_smaller_groups(table):
    holdouts = group_holdouts(table, "size_group", rank_by="N")
    assert holdouts == [Holdout("size_group == 'medium'", "size_group in ['small']"),
                        Holdout("size_group == 'large'", "size_group in ['small', 'medium']")]
    for holdout, fitted in zip(holdouts, (["small"], ["small", "medium"])):
        kept, held = split(table, holdout)
        assert set(kept["size_group"]) == set(fitted) and len(held) == 10


def test_top_fractions_hold_out_the_largest_runs(table):
    holdouts = top_holdouts([0.1, 0.2], rank_by="N")
    assert holdouts == [Holdout("N >= N.quantile(0.9)"), Holdout("N >= N.quantile(0.8)")]
    assert [len(split(table, h)[1]) for h in holdouts] == [3, 6]
    assert split(table, holdouts[0])[1]["N"].min() > split(table, holdouts[0])[0]["N"].max()


@pytest.mark.parametrize("column, rank_by, message", [
    ("family", "N", "the table has no column 'family'"),
    ("size_group", "size_group", "cannot order the groups of 'size_group' by 'size_group': it is not numeric"),
])
def test_group_holdouts_say_what_is_wrong(table, column, rank_by, message):
    with pytest.raises(LawError, match=message):
        group_holdouts(table, column, rank_by)


def test_one_group_has_nothing_larger_to_predict(table):
    with pytest.raises(LawError, match="'size_group' has 1 group: nothing larger to predict"):
        group_holdouts(table.assign(size_group="all"), "size_group", "N")


def test_hold_outs_leaving_too_few_rows_are_found_before_any_fit(spec, table):
    # 'small' has 10 rows, enough for the 6 parameters; 3 tiny runs alone are not
    tiny = table.assign(size_group=np.where(table["N"] <= table["N"].nsmallest(3).max(), "tiny", table["size_group"]))
    holdouts = group_holdouts(tiny, "size_group", rank_by="N")
    kept, skipped = fittable(spec, tiny, holdouts, "runs.csv")
    assert kept == holdouts[1:]
    assert skipped == ["holding out \"size_group == 'small'\": the law for loss has 6 parameters but only 3 rows"]
    with pytest.raises(LawError, match="runs.csv: error: no hold-out can be fitted: holding out") as error:
        fittable(spec, tiny, holdouts[:1], "runs.csv")
    assert "hint: hold out fewer rows" in str(error.value)


def test_backtest_command_names_a_misspelt_column(table, tmp_path, capsys):
    table.to_csv(tmp_path / "runs.csv", index=False)
    assert main(["backtest", str(CHINCHILLA), str(tmp_path / "runs.csv"), "--holdout-top", "0.2",
                 "--rank-by", "size_grup"]) == 2
    assert "--rank-by 'size_grup' is not a column of the table\n    hint: did you mean 'size_group'?" in \
        capsys.readouterr().err
    assert main(["backtest", str(CHINCHILLA), str(tmp_path / "runs.csv"), "--holdout", "n >= 1e8"]) == 2
    assert "runs.csv: error: cannot evaluate the row rule 'n >= 1e8'" in capsys.readouterr().err


def test_a_failed_backtest_names_its_rule(spec, table):
    with pytest.raises(LawError, match=r"the backtest holding out 'N >= N.quantile\(0.8\)' failed: \w+"):
        backtests(spec, table, HOLDOUTS, executor=InProcess(), method="nope")


def test_backtest_command_needs_rows_to_hold_out(table, tmp_path, capsys):
    table.to_csv(tmp_path / "runs.csv", index=False)
    assert main(["backtest", str(CHINCHILLA), str(tmp_path / "runs.csv")]) == 2
    assert "hint: give --holdout" in capsys.readouterr().err


@pytest.mark.slow
def test_backtest_command_with_several_holdouts(table, tmp_path, capsys):
    """Two group hold-outs and a top fifth, scored one by one and pooled; --min-coverage judges
    the pooled coverage and names the hold-outs below it."""
    table.to_csv(tmp_path / "runs.csv", index=False)
    code = main(["backtest", str(CHINCHILLA), str(tmp_path / "runs.csv"), "--holdout-groups", "size_group",
                 "--holdout-top", "0.2", "--method", "map", "--min-coverage", "0.99",
                 "-o", str(tmp_path / "held.csv")])
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    assert lines[0] == "3 backtests:"
    assert [line.split()[:3] for line in lines[2:5]] == [["size_group", "==", "'medium'"],
                                                        ["size_group", "==", "'large'"], ["N", ">=", "N.quantile(0.8)"]]
    assert lines[5].split()[:3] == ["pooled", "loss", "26"]  # 10 + 10 + 6 held-out predictions
    assert "warning: every fit failed the diagnostics: a point fit" in printed.out
    written = pd.read_csv(tmp_path / "held.csv")
    assert written.columns[0] == "holdout" and written["holdout"].value_counts().to_dict() == {
        "size_group == 'medium'": 10, "size_group == 'large'": 10, "N >= N.quantile(0.8)": 6}
    pooled_coverage = written["loss_covered"].mean()
    assert pooled_coverage < 0.99 and code == 1
    assert f"pooled over 3 hold-outs, is {pooled_coverage:.2f}, below --min-coverage 0.99" in printed.err
    assert "hold-outs below --min-coverage 0.99 on their own:" in printed.err
