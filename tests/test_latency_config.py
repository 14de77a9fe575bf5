"""Latency configs and tables: shapes read from TOML or a runs table, clear errors naming the
file and the key, the join of latency rows with training runs, and the `latency` command."""
import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from infscale_dsl.cli import main
from infscale_dsl.errors import LawError
from infscale_dsl.latency.shapes import BenchSettings, Shape, join_runs, load_config, shapes_from_runs

# torch in the same process as JAX's fits has crashed the suite (see pyproject's markers)
pytestmark = pytest.mark.torch

REPO = Path(__file__).resolve().parents[1]
GOOD = """
[settings]
batch_sizes = [1, 4]
prompt_len = 4
output_len = 3
dtype = "float32"
repeats = 2

[defaults]
vocab = 64
head_dim = 16

[[shape]]
d_model = 32
n_layers = 2

[[shape]]
name = "gqa"
d_model = 64
n_layers = 1
n_kv_heads = 2
tie_embeddings = true
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shapes.toml"
    path.write_text(text)
    return path


def messages(error: pytest.ExceptionInfo) -> list[str]:
    return [d.message for d in error.value.diagnostics]


def test_config_gives_shapes_and_settings(tmp_path):
    shapes, settings = load_config(write(tmp_path, GOOD))
    assert shapes == [Shape(32, 2, 2, 2, 64), Shape(64, 1, 4, 2, 64, tie_embeddings=True, name="gqa")]
    assert settings == BenchSettings(batch_sizes=(1, 4), prompt_len=4, output_len=3, dtype="float32", repeats=2)
    assert [s.label for s in shapes] == ["32x2", "gqa"]


def test_the_shipped_cpu_config_loads():
    shapes, settings = load_config(REPO / "examples" / "latency" / "cpu_shapes.toml")
    assert len(shapes) >= 4 and settings.batch_sizes == (1,)
    assert len({s.n_layers for s in shapes}) >= 4 and len({s.d_model for s in shapes}) >= 4


@pytest.mark.parametrize("edit, expected", [
    (('n_layers = 2', 'n_layer = 2'), ["[[shape]] number 1: unknown key 'n_layer'",
                                       "[[shape]] number 1: missing 'n_layers'"]),
    (('n_layers = 2', 'n_layers = "two"'), ["[[shape]] number 1: 'n_layers' should be an integer, not 'two'"]),
    (('n_kv_heads = 2', 'n_kv_heads = 3'), ["[[shape]] number 2 (gqa): n_heads 4 is not divisible by n_kv_heads 3"]),
    (('head_dim = 16', 'head_dim = 24'), ["[[shape]] number 1: head_dim 24 does not divide d_model 32",
                                          "[[shape]] number 2: head_dim 24 does not divide d_model 64"]),
    (('dtype = "float32"', 'dtype = "fp8"'), ["[settings]: dtype must be one of float32, bfloat16, float16, not 'fp8'"]),
    (('repeats = 2', 'repeat = 2'), ["unknown key 'repeat' in [settings]"]),
    (('vocab = 64', ''), ["[[shape]] number 1: missing 'vocab'", "[[shape]] number 2: missing 'vocab'"]),
])
def test_config_errors_name_the_file_and_the_key(tmp_path, edit, expected):
    path = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(LawError) as error:
        load_config(path)
    assert messages(error) == expected
    assert all(d.filename == str(path) for d in error.value.diagnostics)


def test_malformed_and_missing_configs(tmp_path):
    with pytest.raises(LawError, match=r"shapes\.toml: error: not valid TOML"):
        load_config(write(tmp_path, "[[shape]\nd_model = 3"))
    with pytest.raises(LawError, match="lists no shapes"):
        load_config(write(tmp_path, "[settings]\nrepeats = 3\n"))
    with pytest.raises(LawError, match="'shape' must be a list of tables"):
        load_config(write(tmp_path, "[shape]\nd_model = 3\n"))
    with pytest.raises(LawError, match="no such config file"):
        load_config(tmp_path / "absent.toml")


def test_runs_table_gives_its_distinct_shapes():
    runs = pd.DataFrame(dict(d_model=[32, 32, 64], n_layers=[2, 2, 1], n_heads=[2, 2, 4],
                             vocab=[64, 64, 64], D=[1e4, 2e4, 1e4], loss=[3.0, 2.9, 3.1]))
    assert shapes_from_runs(runs) == [Shape(32, 2, 2, 2, 64), Shape(64, 1, 4, 4, 64)]
    with pytest.raises(LawError, match="lacks column.*vocab") as error:
        shapes_from_runs(runs.drop(columns="vocab"), source="runs.parquet")
    assert error.value.diagnostics[0].hint == "give the vocabulary size with --vocab"
    assert shapes_from_runs(runs.drop(columns="vocab"), vocab=100)[0].vocab == 100


def test_runs_table_params_tell_tied_from_untied_embeddings():
    tied, untied = Shape(32, 2, 2, 2, 64, tie_embeddings=True), Shape(64, 1, 4, 4, 64)
    runs = pd.DataFrame(dict(d_model=[32, 32, 64], n_layers=[2, 2, 1], n_heads=[2, 2, 4], vocab=64,
                             params_N=[tied.params, tied.params, untied.params]))
    assert shapes_from_runs(runs) == [tied, untied]


def test_join_runs_pairs_training_runs_with_latency_of_the_same_shape():
    runs = pd.DataFrame(dict(d_model=[32, 32, 64, 128], n_layers=[2, 2, 1, 1], n_heads=[2, 2, 4, 4],
                             vocab=64, loss=[3.0, 2.9, 3.1, 3.3], device="cpu: trainer"))
    latency = pd.DataFrame(dict(d_model=[32, 64], n_layers=[2, 1], n_heads=[2, 4], n_kv_heads=[2, 4],
                                vocab=64, tpot_ms=[0.5, 0.3], device="cpu: timer"))
    joined = join_runs(latency, runs)
    assert joined[["d_model", "loss", "tpot_ms"]].values.tolist() == [[32, 3.0, 0.5], [32, 2.9, 0.5], [64, 3.1, 0.3]]
    assert joined[["device", "device_latency"]].iloc[0].tolist() == ["cpu: trainer", "cpu: timer"]
    with pytest.raises(LawError, match="no latency row has the shape of a training run"):
        join_runs(latency.assign(vocab=256), runs)


def test_latency_command_writes_a_table(tmp_path, capsys):
    output = tmp_path / "latency.csv"
    assert main(["latency", str(write(tmp_path, GOOD)), "-o", str(output), "--batch-sizes", "1",
                 "--backend", "torch" if importlib.util.find_spec("torch") else "jax"]) == 0
    table = pd.read_csv(output)
    assert table["shape"].tolist() == ["32x2", "gqa"]
    printed = capsys.readouterr().out
    assert "tpot_cv" in printed and "wrote 2 rows" in printed


def test_latency_command_rejects_bad_input_with_exit_code_2(tmp_path, capsys):
    config = write(tmp_path, GOOD)
    assert main(["latency", str(config), "-o", str(tmp_path / "x.json")]) == 2
    assert "must end in .parquet or .csv" in capsys.readouterr().err
    assert main(["latency", str(config), "-o", str(tmp_path / "x.csv"), "--repeats", "1"]) == 2
    assert "repeats must be at least 2" in capsys.readouterr().err
    assert main(["latency", str(tmp_path / "none.toml"), "-o", str(tmp_path / "x.csv")]) == 2
