"""The report, recommend, compare and backtest commands, end to end on a small synthetic table
(Chinchilla's law with 1% noise), and their answers to bad input (exit 2, a hint)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infscale_dsl.cli import main

ROOT = Path(__file__).resolve().parents[1]
TIED = """# Chinchilla with one exponent for N and D, for comparison
data N : positive
data D : positive
loss ~ E + A/N^alpha + B/D^alpha
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    n = np.exp(rng.uniform(np.log(1e7), np.log(5e8), 30))
    d = np.exp(rng.uniform(np.log(1e8), np.log(1e10), 30))
    loss = (1.69 + 406.4 / n ** 0.34 + 410.7 / d ** 0.28) * np.exp(0.01 * rng.standard_normal(30))
    pd.DataFrame({"N": n, "D": d, "loss": loss}).to_csv(folder / "runs.csv", index=False)
    pd.DataFrame({"name": ["small", "large"], "N": [2e8, 1e9], "D": [4e9, 2e10],
                  "latency": [6.0, 25.0]}).to_csv(folder / "candidates.csv", index=False)
    (folder / "tied.law").write_text(TIED)
    code = main(["fit", str(ROOT / "models/chinchilla.law"), str(folder / "runs.csv"), "-o", str(folder / "fit"),
                 "--chains", "2", "--warmup", "200", "--draws", "200", "--quiet"])
    assert code == 0
    return folder


@pytest.mark.slow
def test_report_command_writes_the_json_contract(workspace, capsys):
    out = workspace / "report.json"
    code = main(["report", str(workspace / "fit"), "--candidates", str(workspace / "candidates.csv"),
                 "--target", "loss <= 2.6", "--budget", "latency <= 20", "--flops", "1e21",
                 "--gpu-hour-price", "2.5", "--requests-per-year", "1e6", "-o", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    assert [c["name"] for c in doc["candidates"]] == ["small", "large"]
    large = doc["candidates"][1]
    assert large["extrapolation"]["N"] == pytest.approx(1e9 / pd.read_csv(workspace / "runs.csv")["N"].max())
    assert large["targets"][1]["condition"] == "latency <= 20"
    if doc["reliable"]:
        assert large["p_all_met"] == 0.0  # 25 ms misses the 20 ms budget in every draw
    assert doc["allocation"]["flops"] == 1e21
    assert large["costs"]["total_cost"]["median"] > large["costs"]["training_cost"]["median"]
    assert "written:" in capsys.readouterr().out


@pytest.mark.slow
def test_recommend_prints_the_allocation_and_the_choice(workspace, capsys):
    code = main(["recommend", str(workspace / "fit"), "--flops", "1e21", "--max-params", "2e9",
                 "--candidates", str(workspace / "candidates.csv"), "--target", "loss <= 3",
                 "--inference-tokens", "1e12", "-o", str(workspace / "recommend.md")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "compute-optimal at C = 1e+21" in printed and "lifetime optimum" in printed
    assert "rule: the lowest median latency" in printed
    assert (workspace / "recommend.md").read_text().startswith("# ")


@pytest.mark.slow
def test_compare_and_backtest_commands(workspace, capsys):
    code = main(["compare", str(ROOT / "models/chinchilla.law"), str(workspace / "tied.law"),
                 str(workspace / "runs.csv"), "--chains", "2", "--warmup", "200", "--draws", "200",
                 "--max-draws", "200", "--quiet", "--strict"])
    # 2 chains x 200 draws cannot reach a bulk ESS of 400: both fits fail the gate, so --strict exits 1
    assert code == 1
    printed = capsys.readouterr().out
    assert "PSIS-LOO comparison on 'loss'" in printed and "chinchilla" in printed and "tied" in printed
    assert "warning: chinchilla: the fit failed its diagnostics" in printed
    code = main(["backtest", str(ROOT / "models/chinchilla.law"), str(workspace / "runs.csv"),
                 "--holdout", "N >= N.quantile(0.8)", "--chains", "2", "--warmup", "200", "--draws", "200",
                 "--quiet", "--min-coverage", "0.0", "-o", str(workspace / "held.csv")])
    assert code == 0
    assert "6 held out" in capsys.readouterr().out
    assert {"loss_covered", "loss_abs_rel_error"} <= set(pd.read_csv(workspace / "held.csv").columns)


@pytest.mark.parametrize("argv, message", [
    (["--target", "loss = 3"], "cannot read the condition"),
    (["--target", "loss <= 3", "--budget", "memory <= 3"], "nothing gives 'memory'"),
    (["-o", "{workspace}/report.pdf"], "name the output .html, .md or .json"),
])
@pytest.mark.slow
def test_report_bad_input_exits_2_with_a_hint(workspace, capsys, argv, message):
    code = main(["report", str(workspace / "fit"), "--candidates", str(workspace / "candidates.csv")]
                + [a.format(workspace=workspace) for a in argv])
    assert code == 2
    assert message in capsys.readouterr().err


def test_report_on_a_folder_that_is_not_a_fit(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "is not a fit folder" in capsys.readouterr().err


def test_backtest_with_a_bad_holdout_rule(tmp_path, capsys):
    pd.DataFrame({"N": [1e7, 1e8, 1e9], "D": [1e9, 1e9, 1e9], "loss": [3.0, 2.8, 2.6]}).to_csv(tmp_path / "t.csv")
    assert main(["backtest", str(ROOT / "models/chinchilla.law"), str(tmp_path / "t.csv"),
                 "--holdout", "params >= 1e9"]) == 2
    assert "cannot evaluate the row rule" in capsys.readouterr().err
