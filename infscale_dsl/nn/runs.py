"""The runs table: one row per finished training run, stored so that no crash can lose or corrupt it.

Each finished run is first written as its own one-row parquet file in `<table>.parts/`, then the
whole table is rewritten from the parts (and from its own earlier rows). Both writes go to a
temporary file renamed into place (`tables.write_frame`): after SIGINT or kill -9 the table is
the old or the new one, never half of one, and a run whose part exists is never trained again.
A part or table that cannot be read is set aside as `<name>.corrupt` and its runs trained again.
When runs train elsewhere (local processes, Ray, SLURM), the worker writes the part and the
driver rewrites the table (`add_run`); each run's log is kept in `<table>.logs/`.

Part tables from `--shard i/n` runs on several machines merge with `merge_tables` (on the command
line: `infscale-dsl sweep --merge runs-0.parquet runs-1.parquet -o runs.parquet`).

Beside the runs table, the sweep writes its learning curves in long form (`curve_table`, in
`<table>_curves.parquet`): one row per checkpoint of each run, what `curves by run` fits.
"""
from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import Callable

import pandas as pd

from ..errors import ConfigError, DataError, Diagnostic
from ..tables import read_frame, write_frame

# column -> dtype. params_N and tokens_D repeat N and D under the names the law files use.
COLUMNS = {
    "name": "string",
    "N": "int64",  # total parameters
    "N_non_embedding": "int64",
    "D": "int64",  # tokens trained
    "params_N": "int64",
    "tokens_D": "int64",
    "d_model": "int64",
    "n_layers": "int64",
    "n_heads": "int64",
    "n_kv_heads": "int64",
    "vocab": "int64",
    "seq_len": "int64",
    "loss": "float64",  # final held-out loss, nats per byte
    "loss_curve": "string",  # JSON list of [tokens, held-out loss]
    "wall_time_s": "float64",
    "tokens_per_s": "float64",
    "mfu": "float64",  # NaN on CPUs
    "device": "string",
    "dtype": "string",
    "seed": "int64",
    "config_hash": "string",  # identifies the run's configuration; reruns skip finished hashes
    "code_version": "string",
    # columns added later; a table written before them reads with them empty
    "library_versions": "string",  # e.g. "jax 0.11.2, flax 0.12.10, optax 0.2.6"
    "corpus": "string",  # Corpus.description: name, bytes, SHA-256
    "learning_rate": "float64",
    "lr_base_width": "Int64",  # empty: one learning rate for all weights
}
LATER_COLUMNS = ("library_versions", "corpus", "learning_rate", "lr_base_width")


SUFFIXES = (".parquet", ".csv")  # the table's format follows its extension

# The long form: one row per checkpoint. D and tokens_D are the tokens seen at the checkpoint,
# so laws written for runs tables (chinchilla.law, bian2025.law) read the curve as it is;
# D_run is the run's whole budget, and schedule_fraction = step / steps how far its
# learning-rate schedule (warm-up, then cosine decay to the end) had gone.
CURVE_COLUMNS = {
    "run": "string",  # the run's config_hash: `curves by run`
    "name": "string",
    "step": "int64",
    "steps": "int64",  # the run's optimizer steps in all
    "schedule_fraction": "float64",
    "tokens_seen": "int64",
    "D": "int64",
    "tokens_D": "int64",
    "D_run": "int64",
    "loss": "float64",  # held-out loss at the checkpoint, nats per byte
    # the run's size and shape, as in its runs-table row
    **{column: COLUMNS[column] for column in ("N", "N_non_embedding", "params_N", "d_model", "n_layers",
                                              "n_heads", "n_kv_heads", "vocab", "seq_len", "seed")},
}


def as_table(rows: list[dict]) -> pd.DataFrame:
    """Rows in the table's column order and dtypes, sorted by size then tokens."""
    table = pd.DataFrame(rows, columns=list(COLUMNS)).astype(COLUMNS)
    return table.sort_values(["N", "n_layers", "D"], ignore_index=True)


def curve_table(table: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    """The runs' learning curves in long form (CURVE_COLUMNS), from each row's `loss_curve`.
    `batch_size` (sequences per step; a sweep's [train] setting, shared by all its runs) turns
    tokens into steps; a checkpoint that does not fall on a whole step says it is wrong."""
    rows = []
    for run in table.to_dict("records"):
        tokens_per_step = batch_size * run["seq_len"]
        for tokens, loss in json.loads(run["loss_curve"]):
            if tokens % tokens_per_step or run["D"] % tokens_per_step:
                raise ConfigError(Diagnostic(
                    f"run {run['name']}: {tokens} tokens is not a whole number of steps of {batch_size} x "
                    f"{run['seq_len']} tokens", table_column="loss_curve",
                    hint="give the batch size the sweep trained with ([train] batch_size)"))
            step, steps = tokens // tokens_per_step, run["D"] // tokens_per_step
            rows.append({column: run[column] for column in CURVE_COLUMNS if column in COLUMNS and column != "D"}
                        | dict(run=run["config_hash"], step=step, steps=steps, schedule_fraction=step / steps,
                               tokens_seen=tokens, D=tokens, tokens_D=tokens, D_run=run["D"], loss=loss))
    curves = pd.DataFrame(rows, columns=list(CURVE_COLUMNS)).astype(CURVE_COLUMNS)
    return curves.sort_values(["N", "n_layers", "D_run", "step"], ignore_index=True)


def curves_path(table_path: Path) -> Path:
    """Where a runs table's long form lies: runs.parquet -> runs_curves.parquet."""
    return table_path.with_name(f"{table_path.stem}_curves{table_path.suffix}")


def write_curves(table_path: Path, table: pd.DataFrame, batch_size: int) -> Path:
    return _write_atomically(curve_table(table, batch_size), curves_path(table_path))


def parts_dir(table_path: Path) -> Path:
    return table_path.with_name(table_path.name + ".parts")


def logs_dir(table_path: Path) -> Path:
    return table_path.with_name(table_path.name + ".logs")


def save_run(table_path: Path, row: dict, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Store one finished run (its part first, then the whole table); returns the table."""
    save_part(table_path, row)
    return rebuild_table(table_path, log)


def save_part(table_path: Path, row: dict) -> Path:
    """Store one finished run as its part only: what a worker does; its driver rewrites the table."""
    folder = parts_dir(table_path)
    folder.mkdir(parents=True, exist_ok=True)
    return _write_atomically(as_table([row]), folder / f"{row['config_hash']}.parquet")


def add_run(table_path: Path, table: pd.DataFrame, row: dict) -> pd.DataFrame:
    """A driver's step as a run finishes: the run's part (unless its worker wrote it), then the
    table from `table` in memory plus the row. Rebuilding from every part instead would cost
    O(n) reads per run, O(n^2) over a sweep."""
    if not (parts_dir(table_path) / f"{row['config_hash']}.parquet").is_file():
        save_part(table_path, row)
    rows = table[table["config_hash"] != row["config_hash"]].to_dict("records") + [row]
    table = as_table(rows)
    _write_atomically(table, table_path)
    return table


def finished_runs(table_path: Path, log: Callable[[str], None] = print) -> pd.DataFrame:
    """All runs stored for this table: its parts, plus rows of the table itself that have no part
    (a table copied or committed without its .parts folder). A part or table that cannot be read
    (cut short by a full disk, say) is set aside, so that its runs are trained again."""
    folder = parts_dir(table_path)
    tables = []
    for part in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
        try:
            tables.append(read_table(part))
        except DataError as error:
            log(f"{_set_aside(part)}: {error.diagnostics[0].message}; that run will be trained again")
    if table_path.is_file():
        try:
            tables.append(read_table(table_path))
        except _Unreadable as error:
            log(f"{_set_aside(table_path)}: {error.diagnostics[0].message}; the table is rebuilt "
                f"from {folder.name}/ and runs without a part there are trained again")
    if not tables:
        return as_table([])
    return as_table(pd.concat(tables).drop_duplicates("config_hash").to_dict("records"))


def rebuild_table(table_path: Path, log: Callable[[str], None] = print) -> pd.DataFrame:
    table = finished_runs(table_path, log)
    _write_atomically(table, table_path)
    return table


def remove_temporaries(table_path: Path) -> None:
    """Delete the temporary files that a killed sweep left beside its table and parts."""
    folder = parts_dir(table_path)
    leftovers = list(table_path.parent.glob(f".{glob.escape(table_path.name)}.*.tmp"))
    leftovers += list(folder.glob(".*.parquet.*.tmp")) if folder.is_dir() else []
    for path in leftovers:
        path.unlink(missing_ok=True)


def merge_tables(inputs: list[Path], output: Path) -> pd.DataFrame:
    """Concatenate runs tables (e.g. one per --shard), keeping one row per config_hash."""
    tables = []
    for path in inputs:
        if not path.is_file():
            raise DataError(Diagnostic(f"runs table {path} not found", filename=str(path),
                                       hint="pass the -o tables written by each `sweep --shard i/n`"))
        tables.append(read_table(path))
    merged = pd.concat(tables).drop_duplicates("config_hash")
    table = as_table(merged.to_dict("records"))
    _write_atomically(table, output)
    curves = [read_frame(p) for p in map(curves_path, inputs) if p.is_file()]
    if curves:  # the shards' long forms, merged the same way
        long = pd.concat(curves).drop_duplicates(["run", "step"]).astype(CURVE_COLUMNS)
        _write_atomically(long.sort_values(["N", "n_layers", "D_run", "step"], ignore_index=True), curves_path(output))
    return table


class _Unreadable(DataError):
    """A runs table or part that is damaged, as opposed to a readable table of something else."""


def read_table(path: Path) -> pd.DataFrame:
    try:
        table = read_frame(path)
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid and pandas' EmptyDataError are ValueErrors
        raise _Unreadable(Diagnostic(f"cannot read {path.name} ({error})", filename=str(path),
                                     hint="the file is damaged: rerun the sweep that wrote it, which "
                                          "sets it aside and retrains its runs")) from None
    missing = [c for c in COLUMNS if c not in table.columns and c not in LATER_COLUMNS]
    if missing:
        raise DataError(Diagnostic(f"{path} is not a runs table: missing columns {', '.join(missing)}",
                                   filename=str(path), hint="pass a table written by `infscale-dsl sweep`"))
    return table


def _set_aside(path: Path) -> str:
    """Rename a damaged file out of the way (kept, not deleted, for a look); says where it went."""
    aside = path.with_name(path.name + ".corrupt")
    os.replace(path, aside)
    return f"set aside {path} as {aside.name}"


def _write_atomically(table: pd.DataFrame, path: Path) -> Path:
    if path.suffix not in SUFFIXES:
        raise ConfigError(Diagnostic(f"cannot write a runs table as '{path.suffix}'", filename=str(path),
                                     hint="name it .parquet or .csv"))
    return write_frame(table, path)
