"""Several backtests at once: each hold-out rule's fit is a task of an executor, and the answers
are those of the same backtests run one by one."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infscale_dsl.errors import LawError
from infscale_dsl.executors import InProcess
from infscale_dsl.language import load_spec
from infscale_dsl.report.backtest import backtest, backtests

ROOT = Path(__file__).resolve().parents[1]
# rules that each hold out 6 of the 30 rows, so every fit has the same shapes and compiles once
HOLDOUTS = ["N >= N.quantile(0.8)", "D >= D.quantile(0.8)"]
MAP = dict(method="map", n_starts=256)


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = np.exp(rng.uniform(np.log(1e7), np.log(5e8), 30))
    d = np.exp(rng.uniform(np.log(1e8), np.log(1e10), 30))
    loss = (1.69 + 406.4 / n ** 0.34 + 410.7 / d ** 0.28) * np.exp(0.01 * rng.standard_normal(30))
    return pd.DataFrame({"N": n, "D": d, "loss": loss})


def test_backtests_match_one_by_one(table):
    spec = load_spec(ROOT / "models/chinchilla.law", columns=table.columns)
    together = backtests(spec, table, HOLDOUTS, executor=InProcess(), **MAP)
    assert [b.holdout for b in together] == HOLDOUTS
    for rule, result in zip(HOLDOUTS, together):
        alone = backtest(spec, table, rule, **MAP)
        assert result.scores == alone.scores and result.scores[0].n_held_out == 6
        pd.testing.assert_frame_equal(result.predictions, alone.predictions)


def test_a_failed_backtest_names_its_rule(table):
    spec = load_spec(ROOT / "models/chinchilla.law", columns=table.columns)
    with pytest.raises(LawError, match=r"the backtest holding out 'N >= N.quantile\(0.8\)' failed: \w+"):
        backtests(spec, table, HOLDOUTS, executor=InProcess(), method="nope")
