"""TensorBoard event files, read with tbparse (the [tensorboard] extra).

The folder given is TensorBoard's --logdir. Each folder directly under it is one run, named by
the folder, unless the logdir holds event files itself: then it is one run, named after it.
Event files deeper in a run's folder belong to that run, their tags prefixed with the subfolder
(Keras writes train/ and validation/: `validation/epoch_loss`). Scalars written as tensors
(TF2's tf.summary.scalar) count as scalars. Hyperparameters come from the hparams plugin
(SummaryWriter.add_hparams, hp.hparams) anywhere in the run's folder.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import DataError, Diagnostic, require_extra
from .table import Columns, Imported, TrackedRun, by_step, runs_table


def read_tensorboard(logdir: str | Path, columns: Columns, *, history: bool = False,
                     name_pattern: str | None = None) -> Imported:
    tbparse = require_extra("tbparse", "tensorboard", "reading TensorBoard event files")
    logdir = Path(logdir)
    if not logdir.is_dir():
        raise DataError(Diagnostic("no such folder", filename=str(logdir),
                                   hint="give TensorBoard's --logdir: the folder that holds one folder per run"))
    reader = tbparse.SummaryReader(str(logdir), extra_columns={"dir_name", "wall_time"},
                                   event_types={"scalars", "tensors", "hparams"})
    values = [frame for frame in (reader.scalars, reader.tensors) if not frame.empty]
    if not values:
        raise DataError(Diagnostic("no scalars in the TensorBoard event files under this folder", filename=str(logdir),
                                   hint="give TensorBoard's --logdir: the folder that holds one folder per run"))
    logdir_is_a_run = any(logdir.glob("events.out.tfevents.*"))

    def run_and_prefix(dir_name: str) -> tuple[str, str]:
        """The run an event file's folder belongs to, and the subfolder that prefixes its tags."""
        parts = Path(dir_name).parts
        run, below = (logdir.resolve().name, parts) if logdir_is_a_run else (parts[0], parts[1:])
        return run, "/".join(below)

    points = pd.concat(values, ignore_index=True).sort_values(["step", "wall_time"], kind="stable")
    placed = points["dir_name"].map(run_and_prefix)
    points["run"] = placed.str[0]
    points["metric"] = [f"{prefix}/{tag}" if prefix else tag for (_, prefix), tag in zip(placed, points["tag"])]
    runs: dict[str, TrackedRun] = {}

    def tracked(run: str) -> TrackedRun:
        return runs.setdefault(run, TrackedRun(id=run, name=run, params={}, metrics={}))

    for (run, metric), logged in points.groupby(["run", "metric"]):
        tracked(run).metrics[metric] = by_step(logged["step"], logged["value"])
    hparams = reader.hparams
    if not hparams.empty:
        hparams["run"] = hparams["dir_name"].map(lambda dir_name: run_and_prefix(dir_name)[0])
        for (run, name), logged in hparams.groupby(["run", "tag"]):
            distinct = tuple(dict.fromkeys(logged["value"]))
            tracked(run).params[name] = distinct[0] if len(distinct) == 1 else distinct
    return runs_table(sorted(runs.values(), key=lambda run: run.id), columns, str(logdir),
                      history=history, name_pattern=name_pattern)
