"""Loaders of public reference data: local copies, the cache, and Epoch's original layout."""
import numpy as np
import pandas as pd

from infscale_dsl import datasets


def test_chinchilla_reads_the_reference_folder(shared_data):
    table = datasets.chinchilla(shared_data)
    assert len(table) == 245 and table["epoch_excluded_outlier"].sum() == 5


def test_epoch_original_converts_to_the_same_table(shared_data, tmp_path, monkeypatch):
    reference = pd.read_csv(shared_data / "chinchilla_epoch.csv")
    # the original's layout, placed in the cache as a first fetch would leave it
    original = pd.DataFrame({"Model Size": reference.N, "Training FLOP": reference.C, "loss": reference.loss})
    monkeypatch.setenv("INFSCALE_DSL_CACHE", str(tmp_path))
    original.to_csv(tmp_path / "epoch_svg_extracted_data.csv", index=False)

    table = datasets.chinchilla()  # no data_dir: the cached original, converted
    np.testing.assert_allclose(table.D, reference.D, rtol=1e-9)
    assert (table.epoch_excluded_outlier == reference.epoch_excluded_outlier).all()
