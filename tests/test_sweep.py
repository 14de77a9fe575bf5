"""Sweeps: the runs table's schema and its learning curves in long form, resuming after kill -9,
shards that merge, clear errors in sweep files."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from infscale_dsl.cli import main
from infscale_dsl.errors import ConfigError
from infscale_dsl.nn import runs
from infscale_dsl.nn.sweep import load_sweep, parse_shard, run_sweep

REPO = Path(__file__).resolve().parents[1]
SWEEP = """
seed = 1
corpus = "{corpus}"
eval_fraction = 0.1
[model]
seq_len = 16
[train]
batch_size = 4
eval_points = 2
eval_batches = 1
[grid]
tokens_per_param = [{budgets}]
[[grid.sizes]]
shapes = [{{ d_model = 8, n_layers = 1, n_heads = 2 }}, {{ d_model = 8, n_layers = 2, n_heads = 2, n_kv_heads = 1 }}]
"""


@pytest.fixture
def sweep_file(tmp_path):
    """A sweep of tiny models (a few thousand parameters, a few dozen steps) on a small text file."""
    def write(budgets="0.05, 0.1"):
        corpus = tmp_path / "corpus.txt"
        corpus.write_text("Shall I compare thee to a summer's day? Thou art more lovely and more temperate. " * 40)
        path = tmp_path / "sweep.toml"
        path.write_text(SWEEP.format(corpus=corpus, budgets=budgets))
        return path
    return write


def test_runs_table_schema(sweep_file, tmp_path):
    output = tmp_path / "runs.parquet"
    sweep = load_sweep(sweep_file(budgets="0.05"))
    assert run_sweep(sweep, output, log=lambda _: None) == (2, 0)
    table = pd.read_parquet(output)
    assert list(table.columns) == list(runs.COLUMNS)
    assert {c: str(t) for c, t in table.dtypes.items()} == {c: str(pd.Series(dtype=t).dtype)
                                                           for c, t in runs.COLUMNS.items()}
    row = table.iloc[0]
    assert (table["params_N"] == table["N"]).all() and (table["tokens_D"] == table["D"]).all()
    assert row["N"] == row["N_non_embedding"] + 256 * 8  # tied embeddings, byte vocabulary
    curve = json.loads(row["loss_curve"])
    assert len(curve) == 2 and curve[-1][0] == row["D"] and curve[-1][1] == pytest.approx(row["loss"])
    assert row["dtype"] == "float32" and row["seed"] == 1 and row["code_version"].startswith("0.1.0")
    assert table["config_hash"].is_unique and table["n_kv_heads"].tolist() == [2, 1]
    assert row["library_versions"].startswith("jax ") and "flax " in row["library_versions"]
    assert row["corpus"].startswith(f"{sweep.corpus}: ") and " bytes, sha256 " in row["corpus"]
    assert row["learning_rate"] == 3e-3 and pd.isna(row["lr_base_width"])
    # beside it, the long form: one row per checkpoint, what `curves by run` fits
    curves = pd.read_parquet(tmp_path / "runs_curves.parquet")
    assert list(curves.columns) == list(runs.CURVE_COLUMNS)
    for run in table.itertuples():
        rows = curves[curves["run"] == run.config_hash]
        assert [[t, loss] for t, loss in zip(rows["tokens_seen"], rows["loss"])] == json.loads(run.loss_curve)
        assert (rows["D"] == rows["tokens_seen"]).all() and (rows["D_run"] == run.D).all()
        assert (rows["tokens_seen"] == rows["step"] * 4 * 16).all()  # batch_size x seq_len per step
        assert rows["schedule_fraction"].iloc[-1] == 1.0 and (rows[["N", "d_model"]] == [run.N, run.d_model]).all().all()


def test_the_shipped_cpu_table_is_its_sweep_files_runs():
    """Settings added since (lr_base_width) left the hashes of earlier tables alone: a rerun of
    the shipped sweep trains nothing, and its table reads with the later columns empty."""
    sweep = load_sweep(REPO / "examples" / "sweeps" / "cpu_small.toml")
    table = runs.read_table(REPO / "examples" / "data" / "cpu_small_runs.parquet")
    assert sorted(sweep.config_hash(run) for run in sweep.runs) == sorted(table["config_hash"])
    assert runs.as_table(table.to_dict("records"))["library_versions"].isna().all()



def test_rerun_skips_finished_runs(sweep_file, tmp_path):
    output = tmp_path / "runs.parquet"
    sweep = load_sweep(sweep_file(budgets="0.05"))
    run_sweep(sweep, output, shard=(0, 2), log=lambda _: None)
    assert len(pd.read_parquet(output)) == 1
    assert run_sweep(sweep, output, log=lambda _: None) == (1, 1)
    assert run_sweep(sweep, output, log=lambda _: None) == (0, 2)
    shutil.rmtree(runs.parts_dir(output))  # a table kept (or committed) without its parts folder
    assert run_sweep(sweep, output, log=lambda _: None) == (0, 2)
    assert len(pd.read_parquet(output)) == 2


def test_shards_are_disjoint_and_merge(sweep_file, tmp_path):
    sweep = load_sweep(sweep_file(budgets="0.05, 0.1"))
    parts = [tmp_path / f"runs-{i}.parquet" for i in range(2)]
    for i, part in enumerate(parts):
        run_sweep(sweep, part, shard=(i, 2), log=lambda _: None)
    hashes = [set(pd.read_parquet(p)["config_hash"]) for p in parts]
    assert len(hashes[0]) == len(hashes[1]) == 2 and not hashes[0] & hashes[1]
    assert main(["sweep", "--merge", *map(str, parts), "-o", str(tmp_path / "all.csv"), "--quiet"]) == 0
    merged = runs.read_table(tmp_path / "all.csv")
    assert set(merged["config_hash"]) == hashes[0] | hashes[1]
    assert set(pd.read_csv(tmp_path / "all_curves.csv")["run"]) == hashes[0] | hashes[1]


def test_the_shipped_curve_table_is_the_long_form_of_the_shipped_runs():
    data = REPO / "examples" / "data"
    table = runs.read_table(data / "cpu_small_runs.parquet")
    curves = runs.curve_table(table, batch_size=load_sweep(REPO / "examples/sweeps/cpu_small.toml").runs[0].train.batch_size)
    pd.testing.assert_frame_equal(pd.read_parquet(data / "cpu_small_runs_curves.parquet"), curves)
    assert len(curves) == 4 * len(table) and curves.groupby("run")["step"].is_monotonic_increasing.all()


def test_a_batch_size_that_does_not_fit_the_checkpoints_is_an_error():
    table = runs.read_table(REPO / "examples" / "data" / "cpu_small_runs.parquet")
    with pytest.raises(ConfigError, match="is not a whole number of steps of 5 x 64 tokens"):
        runs.curve_table(table, batch_size=5)


@pytest.mark.slow
def test_sweep_killed_mid_run_resumes_without_loss_or_repeats(sweep_file, tmp_path):
    path, output = sweep_file(budgets="0.05, 0.1"), tmp_path / "runs.parquet"
    command = [sys.executable, "-m", "infscale_dsl", "sweep", str(path), "-o", str(output)]
    env = os.environ | {"PYTHONPATH": str(REPO), "CI": "1", "XLA_FLAGS": ""}
    sweep = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    parts = runs.parts_dir(output)
    deadline = time.monotonic() + 300
    while not list(parts.glob("*.parquet")) and sweep.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    sweep.send_signal(signal.SIGKILL)
    sweep.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in parts.glob("*.parquet")}
    assert 1 <= len(finished) < 4, "kill the sweep after its first run and before its last"
    assert len(pd.read_parquet(output)) in (len(finished) - 1, len(finished))  # readable, old or new

    resumed = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert f"{len(finished)} already finished, {4 - len(finished)} to train" in resumed.stdout
    assert {p.name: p.stat().st_mtime_ns for p in parts.glob("*.parquet") if p.name in finished} == finished
    table = pd.read_parquet(output)
    assert len(table) == 4 and table["config_hash"].is_unique


@pytest.mark.parametrize("text, message", [
    ("[grid]\ntokens_per_parm = [10]\n", "unknown key 'tokens_per_parm' in \\[grid\\]"),
    ("[model]\nd_modle = 8\n[[runs]]\ntokens = 10\n", "unknown key 'd_modle'"),
    ("[[runs]]\nd_model = 8\nn_heads = 2\n", "needs exactly one of tokens, tokens_per_param"),
    ("[[runs]]\nd_model = 10\nn_heads = 4\ntokens = 100\n", "run 1: d_model 10 is not a multiple of n_heads 4"),
    ("[model]\ndtype = 'float16'\n[[runs]]\ntokens = 10\n", "unknown dtype 'float16'"),
    ("seed = 0\n", "the sweep has no runs"),
    ("seed = \n", "not valid TOML"),
])
def test_bad_sweep_files(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_sweep(path)


def test_typo_gets_a_suggestion(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[model]\nd_modle = 8\n")
    with pytest.raises(ConfigError) as error:
        load_sweep(path)
    assert error.value.diagnostics[0].hint == "did you mean 'd_model'?"


@pytest.mark.parametrize("text", ["2/2", "1", "a/b", "-1/3"])
def test_bad_shard(text):
    with pytest.raises(ConfigError, match="bad --shard"):
        parse_shard(text)


def fake_row(config_hash: str, n: int) -> dict:
    """A finished run as the table stores it, without training one."""
    row = {column: (1.5 if dtype == "float64" else n if dtype.lower() == "int64" else f"x{n}")
           for column, dtype in runs.COLUMNS.items()}
    return row | {"config_hash": config_hash}


def test_a_damaged_part_or_table_is_set_aside_and_reported(tmp_path):
    output, said = tmp_path / "runs.parquet", []
    for n, config_hash in enumerate(["aaaa", "bbbb", "cccc"]):
        runs.save_run(output, fake_row(config_hash, n), log=said.append)
    part = runs.parts_dir(output) / "bbbb.parquet"
    part.write_bytes(part.read_bytes()[:20])  # cut short, as by a full disk
    output.write_bytes(b"")
    table = runs.rebuild_table(output, log=said.append)
    assert sorted(table["config_hash"]) == ["aaaa", "cccc"]  # the table rebuilt from the good parts
    assert (runs.parts_dir(output) / "bbbb.parquet.corrupt").is_file() and (tmp_path / "runs.parquet.corrupt").is_file()
    assert said[0].startswith(f"set aside {part} as bbbb.parquet.corrupt: cannot read bbbb.parquet")
    assert said[0].endswith("that run will be trained again")
    assert said[1].startswith(f"set aside {output} as runs.parquet.corrupt: cannot read runs.parquet")


def test_resuming_past_a_damaged_part_retrains_only_its_run(sweep_file, tmp_path):
    output, said = tmp_path / "runs.parquet", []
    sweep = load_sweep(sweep_file(budgets="0.05"))
    run_sweep(sweep, output, log=lambda _: None)
    damaged = sorted(runs.parts_dir(output).glob("*.parquet"))[0]
    damaged.write_bytes(b"PAR1 cut short")
    output.write_bytes(b"")  # a 0-byte runs table
    leftovers = [tmp_path / ".runs.parquet.k2j4.tmp", runs.parts_dir(output) / ".aaaa.parquet.x9.tmp"]
    for path in leftovers:  # temporaries of writes a kill -9 cut off
        path.write_bytes(b"half")
    assert run_sweep(sweep, output, log=said.append) == (1, 1)
    assert any(line.startswith(f"set aside {damaged}") for line in said)
    table = pd.read_parquet(output)
    assert len(table) == 2 and table["config_hash"].is_unique
    assert not any(path.exists() for path in leftovers)


def test_sweep_refuses_a_table_name_it_cannot_write(tmp_path, capsys):
    assert main(["sweep", "any.toml", "-o", str(tmp_path / "runs.txt")]) == 2
    assert "the runs table must end in .parquet or .csv" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
