"""Public reference data: loaders that read a local copy or fetch the original once.

    table = chinchilla()                      # ~/.cache/infscale-dsl, fetched on first use
    table = chinchilla(data_dir="../shared/data")

`chinchilla` returns Epoch AI's reconstruction of Hoffmann et al.'s runs (Besiroglu et al. 2024)
with columns N, D (= C / 6N), C, loss and epoch_excluded_outlier (1 for the five highest-loss
runs, which they drop). A `data_dir` holding `chinchilla_epoch.csv` in that layout is read as
it is; otherwise the original CSV is fetched from the authors' repository into the cache and
converted. Bian et al. 2025 publish their runs only inside their fitting scripts, so
`bian2025_models` reads a local table (the layout of ../shared/data/bian2025_models.csv).
"""
from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pandas as pd

from .errors import DataError, Diagnostic
from .files import atomic_write

CHINCHILLA_URL = ("https://raw.githubusercontent.com/epoch-research/analyzing-chinchilla/"
                  "main/data/svg_extracted_data.csv")


def cache_dir() -> Path:
    """Where fetched data sets are kept: $INFSCALE_DSL_CACHE or ~/.cache/infscale-dsl."""
    return Path(os.environ.get("INFSCALE_DSL_CACHE", Path.home() / ".cache" / "infscale-dsl"))


def chinchilla(data_dir: str | Path | None = None) -> pd.DataFrame:
    if data_dir is not None and (Path(data_dir) / "chinchilla_epoch.csv").is_file():
        return pd.read_csv(Path(data_dir) / "chinchilla_epoch.csv")
    original = cache_dir() / "epoch_svg_extracted_data.csv"
    if not original.is_file():
        _fetch(CHINCHILLA_URL, original)
    return chinchilla_from_epoch(pd.read_csv(original))


def chinchilla_from_epoch(epoch: pd.DataFrame) -> pd.DataFrame:
    """Epoch's columns (Model Size, Training FLOP, loss) in this project's layout."""
    table = pd.DataFrame({"N": epoch["Model Size"].astype(float), "C": epoch["Training FLOP"].astype(float),
                          "loss": epoch["loss"].astype(float)})
    table.insert(1, "D", table["C"] / (6 * table["N"]))
    outliers = table["loss"].nlargest(5).index
    table["epoch_excluded_outlier"] = table.index.isin(outliers).astype(int)
    return table


def bian2025_models(data_dir: str | Path) -> pd.DataFrame:
    path = Path(data_dir) / "bian2025_models.csv"
    if not path.is_file():
        raise DataError(Diagnostic("bian2025_models.csv not found", filename=str(path),
                                   hint="pass the folder that holds it (the project's reference data "
                                        "lies in ../shared/data)"))
    return pd.read_csv(path)


def _fetch(url: str, path: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            payload = response.read()
    except OSError as error:
        raise DataError(Diagnostic(f"cannot fetch {url}: {error}", filename=str(path),
                                   hint="download it by hand to that path, or pass data_dir= a "
                                        "folder holding chinchilla_epoch.csv")) from None
    atomic_write(path, lambda temp: Path(temp).write_bytes(payload))
