"""Weights & Biases runs: run folders on disk, or an export.

- Run folders: `wandb/` (its offline-run-* and run-* folders), one such folder, or a run's
  .wandb file. The wandb package reads them (`wandb leet inspect`, wandb 0.31 or later: the
  [wandb] extra), with no network. Params are the run's config; a metric's final value is the
  run's summary (W&B's final value: the last one logged, unless the script set it); with
  `history`, every logged step. Nested keys are joined with dots (`model.n_params`), as W&B
  shows them.
- An export: a .csv, .json, .jsonl or .parquet table with a column naming the run (`run_column`,
  default `Name`, as W&B's runs-table export calls it). Either a runs table, one row per run
  with its config and summary as columns, or histories, rows ordered by a `_step` column (as
  `run.history()` and the history artifact give them). Every column can be read as a param
  (its value must be the same on all of a run's rows) or as a metric (an empty cell: not
  logged at that step). A `State` column marks the runs that did not finish.
The online API is not read: export the runs first, or point at the run folders.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from ..errors import DataError, Diagnostic, require_extra
from ..tables import read_frame
from .table import Columns, Imported, TrackedRun, by_step, names_hint, runs_table

EXPORT_SUFFIXES = (".csv", ".json", ".jsonl", ".parquet")
FINISHED = "finished"  # W&B's state of a run that ended well


def read_wandb(path: str | Path, columns: Columns, *, run_column: str = "Name", history: bool = False,
               name_pattern: str | None = None, include_unfinished: bool = False) -> Imported:
    path = Path(path)
    if path.suffix.lower() in EXPORT_SUFFIXES:
        runs = _exported_runs(path, run_column, history)
    else:
        require_extra("wandb", "wandb", "reading W&B run folders")
        with ThreadPoolExecutor() as pool:  # each run is read by a wandb process of its own
            runs = list(pool.map(lambda file: _folder_run(file, history), _run_files(path)))
    return runs_table(runs, columns, str(path), history=history, name_pattern=name_pattern,
                      include_unfinished=include_unfinished)


def _run_files(path: Path) -> list[Path]:
    if path.suffix == ".wandb" and path.is_file():
        return [path]
    found = [*path.glob("run-*.wandb"), *path.glob("*/run-*.wandb")] if path.is_dir() else []
    if not found:
        raise DataError(Diagnostic("no W&B runs here", filename=str(path),
                                   hint="give the wandb/ folder, one run's folder or .wandb file, "
                                        f"or an export ({', '.join(EXPORT_SUFFIXES)})"))
    return sorted({file.resolve() for file in found})  # wandb/latest-run links to a run folder


def _folder_run(file: Path, history: bool) -> TrackedRun:
    state = json.loads(_inspect(file, "--summary"))
    if history:
        logged = defaultdict(list)  # metric -> [(step, value)]
        for line in _inspect(file).splitlines():
            record = json.loads(line)
            if record["type"] == "history":
                item = _flatten(record["history"]["item"])
                for name, value in item.items():
                    logged[name].append((item["_step"], value))
        metrics = {name: by_step(*zip(*points)) for name, points in logged.items()}
    else:
        metrics = {name: by_step([0], [value]) for name, value in _flatten(state["summary"]).items()}
    return TrackedRun(id=state["run_id"], name=state["name"] or state["run_id"], params=_flatten(state["config"]),
                      metrics=metrics, unfinished=None if state["state"] == FINISHED else state["state"])


def _inspect(file: Path, *options: str) -> str:
    """`wandb leet inspect --json`: the run's records, one JSON object a line, or with
    --summary its state (config, summary, name) as one object."""
    done = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", *options, str(file)],
                          capture_output=True, text=True,
                          env=os.environ | {"WANDB_MODE": "offline", "WANDB_ERROR_REPORTING": "false"})  # no network
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no message"]
        raise DataError(Diagnostic(f"wandb cannot read this run: {message[0]}", filename=str(file),
                                   hint="reading run folders needs wandb 0.31 or later: "
                                        "pip install -U 'infscale-dsl[wandb]'"))
    return done.stdout


def _flatten(values: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _exported_runs(path: Path, run_column: str, history: bool) -> list[TrackedRun]:
    table = _read_export(path)
    if run_column not in table:
        raise DataError(Diagnostic(f"the export has no column {run_column!r} to name the runs", filename=str(path),
                                   hint=names_hint(run_column, set(map(str, table.columns)), "its columns")
                                   + "; choose one with --run-column"))
    if history and "_step" not in table:
        raise DataError(Diagnostic("--history needs a history export, with a _step column", filename=str(path),
                                   hint="this export has one row per run; export the runs' histories"))
    runs = []
    for run, rows in table.groupby(run_column, sort=False, dropna=False):
        if "_step" in rows:
            steps = rows["_step"]
        elif len(rows) == 1:
            steps = pd.Series([0], index=rows.index)  # a runs table: one row, the final values
        else:
            raise DataError(Diagnostic(f"{len(rows)} rows name the run {run!r}, and no _step column orders them",
                                       filename=str(path), hint="choose a column that names each run once with "
                                                                "--run-column, or export the _step column"))
        rows = rows.drop(columns=run_column)
        params = {}
        for name, column in rows.items():
            distinct = tuple(column.dropna().unique())
            if distinct:
                params[name] = distinct[0] if len(distinct) == 1 else distinct
        metrics = {name: by_step(steps[column.notna()], column.dropna()) for name, column in rows.items()}
        state = params.get("State", FINISHED)
        runs.append(TrackedRun(id=str(run), name=str(run), params=params, metrics=metrics,
                               unfinished=None if state == FINISHED else str(state)))
    return runs


def _read_export(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".parquet"):
            return read_frame(path)
        return pd.read_json(path, lines=suffix == ".jsonl")
    except FileNotFoundError:
        raise DataError(Diagnostic("export not found", filename=str(path), hint="check the path")) from None
    except (OSError, ValueError) as error:
        raise DataError(Diagnostic(f"cannot read the export: {error}", filename=str(path),
                                   hint="give the CSV, JSON, JSON Lines or Parquet file W&B "
                                        "or run.history() wrote")) from None
