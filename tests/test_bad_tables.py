"""Bad tables: `prepare` names the column, the rows and the problem, and reports them all."""
import numpy as np
import pandas as pd
import pytest

from infscale_dsl.model.data import describe_rows, prepare
from infscale_dsl.errors import DataError
from infscale_dsl.language import load_spec
from infscale_dsl.tables import read_table

SPEC = """
data family : category
data layers = n_layers : count
R = d_model / layers
E[family] ~ LogNormal(0, 1)
loss ~ E + A/N^alpha + B/D^alpha * R^g + c * log(layers)
"""
N_ROWS = 12


def good_table(**columns) -> pd.DataFrame:
    table = pd.DataFrame({
        "N": np.geomspace(1e6, 1e9, N_ROWS), "D": np.geomspace(1e8, 1e11, N_ROWS),
        "d_model": np.tile([512.0, 1024.0, 2048.0], N_ROWS // 3), "n_layers": np.tile([4.0, 8.0], N_ROWS // 2),
        "family": np.tile(["dense", "moe"], N_ROWS // 2), "loss": np.linspace(4.0, 2.5, N_ROWS),
    })
    for name, values in columns.items():
        table[name] = values
    return table


def with_values(column, rows_to_values, base=None):
    table = (base if base is not None else good_table()).copy()
    values = list(table[column])
    for row, value in rows_to_values.items():
        values[row] = value
    table[column] = values
    return table


# (table, expected [(table_column, rows, message substring), ...])
BAD_TABLES = [
    (good_table().drop(columns="D"), [("D", (), "column 'D' is not in the table")]),
    (good_table().rename(columns={"n_layers": "n_layer"}), [("n_layers", (), "column 'n_layers' is not in the table")]),
    (with_values("N", {2: "1.2B", 5: "n/a"}), [("N", (2, 5), "non-numeric values")]),
    (with_values("N", {3: np.nan}), [("N", (3,), "predictor column 'N' has missing or infinite values")]),
    (with_values("d_model", {0: np.inf}), [("d_model", (0,), "missing or infinite")]),
    (with_values("N", {1: -5.0}), [("N", (1,), "column 'N' must be > 0 (the law needs it positive)")]),
    (with_values("loss", {4: 0.0}), [("loss", (4,), "column 'loss' must be > 0")]),
    (with_values("n_layers", {0: 2.5, 1: -2.0}), [("n_layers", (0, 1), "whole numbers >= 0 (declared count)")]),
    (with_values("n_layers", {6: 0.0}),  # a count may be 0, but log() and R need it > 0
     [("R", (6,), "derived variable 'R' is not finite"),
      ("n_layers", (6,), "layers must be > 0 (the argument of log()")]),
    (good_table(family=["dense"] * N_ROWS), [("family", tuple(range(5)), "one level")]),
    (with_values("family", {7: None}), [("family", (7,), "column 'family' has missing values")]),
    (with_values("loss", {i: np.nan for i in range(6, N_ROWS)}),
     [("loss", tuple(range(5)), "the law for loss has 8 parameters but only 6 rows")]),
    (with_values("loss", {2: "4.1 nats"}), [("loss", (2,), "column 'loss' has non-numeric values")]),
    (good_table(N=[True, False] * (N_ROWS // 2)), [("N", tuple(range(5)), "column 'N' has non-numeric values")]),
    # no usable rows is a data error, not an all-NaN fit
    (good_table().iloc[:0], [(None, (), "the table has no rows: no values of 'loss' to fit")]),
    (with_values("loss", {i: np.nan for i in range(N_ROWS)}),
     [("loss", (), "response column 'loss' is missing on every row: the law for loss has no rows to fit")]),
    # every problem is reported at once
    (with_values("N", {0: np.nan}, with_values("D", {1: "x"})),
     [("N", (0,), "missing or infinite"), ("D", (1,), "non-numeric")]),
]


@pytest.mark.parametrize("table, expected", BAD_TABLES, ids=[e[0][2][:30] for _, e in BAD_TABLES])
def test_bad_table(table, expected):
    spec = load_spec(SPEC, columns=good_table().columns)
    with pytest.raises(DataError) as error:
        prepare(spec, table, filename="runs.csv")
    found = [(d.table_column, d.rows, d.message) for d in error.value.diagnostics]
    assert len(found) == len(expected), found
    for (column, rows, message), (want_column, want_rows, want_text) in zip(found, expected):
        assert column == want_column and rows == want_rows and want_text in message, found
    assert all(d.hint and d.filename == "runs.csv" for d in error.value.diagnostics)


def test_too_few_rows_names_the_parameters_they_must_fit():
    spec = load_spec(SPEC, columns=good_table().columns)
    with pytest.raises(DataError) as error:
        prepare(spec, with_values("loss", {i: np.nan for i in range(6, N_ROWS)}))
    # 8 = E per family (2) + A, alpha, B, g, c + sigma_loss; drift_loss is not among them: no row informs it
    assert error.value.diagnostics[0].hint == ("add rows, or tie or drop parameters "
                                               "(its rows fit E, A, alpha, B, g, c, sigma_loss)")


def test_good_table_values_levels_and_rows():
    table = with_values("loss", {0: np.nan, 5: np.nan})
    prepared = prepare(load_spec(SPEC, columns=table.columns), table)
    assert prepared.n_rows == N_ROWS
    assert prepared.levels == {"family": ("dense", "moe")}
    assert prepared.values["family"].dtype == np.int64 and list(prepared.values["family"][:3]) == [0, 1, 0]
    assert prepared.values["R"] == pytest.approx(table["d_model"] / table["n_layers"])
    assert all(v.dtype == np.float64 for k, v in prepared.values.items() if k != "family")
    assert list(prepared.rows["loss"]) == [1, 2, 3, 4, 6, 7, 8, 9, 10, 11]
    assert describe_rows(prepared) == "loss: 10 rows (2 left out: loss missing)"


def test_prediction_tables_need_no_response_but_known_levels():
    spec = load_spec(SPEC)
    table = good_table(family=np.tile(["dense", "sparse"], N_ROWS // 2)).drop(columns="loss")
    prepared = prepare(spec, table.iloc[::2], with_responses=False, levels={"family": ("dense", "moe")})
    assert prepared.rows["loss"].size == N_ROWS // 2 and np.isnan(prepared.values["loss"]).all()
    with pytest.raises(DataError) as error:
        prepare(spec, table, with_responses=False, levels={"family": ("dense", "moe")})
    (diagnostic,) = error.value.diagnostics
    assert diagnostic.table_column == "family" and diagnostic.rows == (1, 3, 5, 7, 9)
    assert "levels the fit did not see" in diagnostic.message


def test_read_table_formats(tmp_path):
    good_table().to_csv(tmp_path / "t.csv", index=False)
    good_table().to_parquet(tmp_path / "t.parquet")
    assert read_table(tmp_path / "t.csv").shape == read_table(tmp_path / "t.parquet").shape == (N_ROWS, 6)
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(DataError, match="give a .csv or .parquet file"):
        read_table(tmp_path / "t.xlsx")
    with pytest.raises(DataError, match="table not found"):
        read_table(tmp_path / "missing.csv")


def test_read_table_refuses_a_column_name_used_twice(tmp_path):
    (tmp_path / "t.csv").write_text("N,D,loss,N,loss\n1,2,3,4,5\n")
    with pytest.raises(DataError) as error:
        read_table(tmp_path / "t.csv")  # pandas alone would read the second N as 'N.1', silently
    assert [(d.table_column, d.message) for d in error.value.diagnostics] == [
        ("N", "column 'N' appears 2 times in the header"), ("loss", "column 'loss' appears 2 times in the header")]


def test_log1p_needs_values_above_minus_one():
    table = pd.DataFrame({"x": [0.5, -1.0, -3.0, 2.0, 1.0], "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    spec = load_spec("y ~ a + b * log1p(x)", columns=table.columns)
    assert spec.data["x"].domain == "real"
    with pytest.raises(DataError) as error:
        prepare(spec, table)
    (diagnostic,) = error.value.diagnostics
    assert (diagnostic.table_column, diagnostic.rows) == ("x", (1, 2))
    assert "must be > -1 (the argument of log1p()" in diagnostic.message
