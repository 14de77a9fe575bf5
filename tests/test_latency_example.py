"""The shipped CPU latency table (examples/latency/cpu_shapes_latency.csv, measured once by
`infscale-dsl latency examples/latency/cpu_shapes.toml`, before the fused path, so with what is
now `--backend jax-unfused`): at equal size deeper shapes decode slower, and the latency law in
models/latency.law explains it."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "examples" / "latency" / "cpu_shapes_latency.csv"


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.read_csv(TABLE)


def equal_size_groups(table: pd.DataFrame):
    """Groups of four or more shapes within 25% of each other's non-embedding parameter count."""
    ordered = table.sort_values("non_embedding_params")
    group_id = (ordered["non_embedding_params"].pct_change() > 0.25).cumsum()
    groups = [group.sort_values("n_layers") for _, group in ordered.groupby(group_id)]
    return [group for group in groups if len(group) >= 4]


def test_the_table_matches_its_config(table):
    from infscale_dsl.latency.shapes import load_config

    shapes, settings = load_config(REPO / "examples" / "latency" / "cpu_shapes.toml")
    assert table["shape"].tolist() == [s.label for s in shapes]
    assert table["non_embedding_params"].tolist() == [s.non_embedding_params for s in shapes]
    assert (table["repeats"] == settings.repeats).all() and (table["backend"] == "jax-unfused").all()  # timed before the fused path


def test_at_equal_size_the_deepest_shape_decodes_slowest(table):
    groups = equal_size_groups(table)
    assert len(groups) == 2
    for group in groups:
        assert group["n_layers"].min() == 2 and group["n_layers"].max() == 16
        assert group["tpot_ms"].iloc[-1] > 1.5 * group["tpot_ms"].iloc[0]  # 16 layers vs 2
        rank_correlation = group["tpot_ms"].rank().corr(group["n_layers"].rank())
        assert rank_correlation >= 0.8, group[["shape", "tpot_ms"]]


def test_latency_law_fits_the_table(table):
    """The lead's point fit of models/latency.law on the table: R^2 of tpot_ms at least 0.95."""
    fit = pytest.importorskip("infscale_dsl.inference.fit")
    from infscale_dsl.language import load_spec

    spec = load_spec(REPO / "models" / "latency.law", columns=table.columns)
    result = fit.fit(spec, table, method="map", seed=0, n_starts=256)
    c = result.summary()["median"]
    predicted = c["c0"] + c["c1"] * table["n_layers"] + c["c2"] * table["n_layers"] * table["d_model"] ** 2
    residual = table["tpot_ms"] - predicted
    r_squared = 1 - (residual**2).sum() / ((table["tpot_ms"] - table["tpot_ms"].mean()) ** 2).sum()
    assert r_squared >= 0.95
    assert np.all(np.isfinite([c["c0"], c["c1"], c["c2"]]))
