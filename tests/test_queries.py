"""The questions about a spec (CheckedSpec's queries) and the helpers that several modules share:
each answered in one place, so these tests pin the one answer every user gets."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from infscale_dsl.language import load_spec
from infscale_dsl.latency.shapes import Shape
from infscale_dsl.nn import sizes
from infscale_dsl.nn.model import ModelConfig, param_count
from infscale_dsl.progress import show_progress
from infscale_dsl.report.law_function import LawFunction, variable_values
from infscale_dsl.tables import read_frame, read_table, write_frame

SPEC = "R = d_model / n_layers\nloss ~ (E + A/N^a + B/D^a) * (1 + eps * R^a)"
COLUMNS = ["N", "D", "d_model", "n_layers", "loss"]
TABLE = pd.DataFrame({"N": [1e7, 1e8], "D": [1e9, 1e10], "d_model": [256.0, 512.0],
                      "n_layers": [4.0, 16.0], "loss": [3.1, 2.7]})


def spec():
    return load_spec(SPEC, columns=COLUMNS)


def test_a_law_reads_the_data_behind_its_derived_variables():
    checked = spec()
    law = checked.laws[0]
    assert checked.law_data(law) == ["N", "D", "d_model", "n_layers", "R"]  # R after what it reads
    assert checked.law_inputs(law) == ("N", "D", "R")  # what the law's expression names itself
    assert set(checked.reads(law.expr)) == {"E", "A", "N", "a", "B", "D", "eps", "R", "d_model", "n_layers"}


def test_a_law_uses_its_parameters_then_its_noise_scale():
    checked = spec()
    assert checked.law_parameters(checked.laws[0]) == ["E", "A", "a", "B", "eps", "sigma_loss"]


def test_a_law_uses_the_parameters_of_its_priors():
    checked = load_spec("data family : category\nE[family] ~ LogNormal(mu, tau)\nloss ~ E + A/N^a",
                        columns=["N", "loss", "family"])
    law = checked.laws[0]
    assert checked.law_parameters(law) == ["E", "mu", "tau", "A", "a", "sigma_loss"]
    assert checked.law_data(law) == ["N", "family"]  # the group of E too


def test_derived_variables_by_name_and_what_reads_only_data():
    checked = spec()
    assert list(checked.derived_by_name) == ["R"]
    assert checked.reads_data_only(checked.derived_by_name["R"].expr)
    assert not checked.reads_data_only(checked.laws[0].expr)  # it reads parameters


def test_derived_variables_evaluate_on_a_small_table():
    checked = spec()
    values = {name: TABLE[name].to_numpy() for name in ("d_model", "n_layers")}
    np.testing.assert_allclose(checked.derived_values(values, np)["R"], [64.0, 32.0])
    assert checked.derived_values({"d_model": values["d_model"]}, np) == {}  # n_layers missing: left out
    np.testing.assert_allclose(variable_values(checked, TABLE)["R"], [64.0, 32.0])


def test_the_law_function_evaluates_through_the_derived_variables():
    checked = spec()
    draws = {"E": [1.0], "A": [1e3], "B": [1e3], "a": [0.3], "eps": [0.01]}
    law = LawFunction(checked, draws, "loss")
    assert law.data_names == ["d_model", "n_layers", "N", "D"]
    n, d, r = TABLE["N"].to_numpy(), TABLE["D"].to_numpy(), np.array([64.0, 32.0])
    expected = (1 + 1e3 / n ** 0.3 + 1e3 / d ** 0.3) * (1 + 0.01 * r ** 0.3)
    np.testing.assert_allclose(law({name: TABLE[name].to_numpy() for name in law.data_names})[0], expected)


# --- helpers shared by the nn, latency, data and CLI modules -------------------------------------

def test_a_shape_counts_the_parameters_its_model_has():
    """The runs table's N (nn) and a latency row's params_N (latency) join only if they agree."""
    shape = Shape(d_model=96, n_layers=3, n_heads=6, n_kv_heads=2, vocab=256, tie_embeddings=False)
    config = ModelConfig(d_model=96, n_layers=3, n_heads=6, n_kv_heads=2, vocab_size=256, tie_embeddings=False)
    counts = param_count(config)
    assert (shape.params, shape.non_embedding_params) == (counts["total"], counts["non_embedding"])
    assert (shape.head_dim, shape.ffn_hidden) == (config.head_dim, config.ffn_hidden) == (16, 256)
    assert counts == sizes.parameter_counts(96, 3, 6, 2, 8 / 3, 256, False)


def test_latency_shapes_load_without_jax_pandas_or_the_fitting_stack():
    code = ("import sys; sys.modules.update(jax=None, flax=None, pandas=None, lark=None, arviz=None); "
            "import infscale_dsl.latency.shapes, infscale_dsl.nn.sizes, infscale_dsl.progress")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_progress_bars_show_only_for_a_person_watching(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert show_progress() and not show_progress(quiet=True)
    monkeypatch.setenv("CI", "1")
    assert not show_progress()
    monkeypatch.delenv("CI")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert not show_progress()


@pytest.mark.parametrize("name", ["t.csv", "t.parquet", "t.pq"])
def test_a_table_is_written_and_read_in_the_format_of_its_extension(tmp_path, name):
    write_frame(TABLE, tmp_path / name)
    pd.testing.assert_frame_equal(read_frame(tmp_path / name), TABLE)
    pd.testing.assert_frame_equal(read_table(tmp_path / name), TABLE)
    assert (tmp_path / name).read_bytes().startswith(b"PAR1") == (name != "t.csv")
