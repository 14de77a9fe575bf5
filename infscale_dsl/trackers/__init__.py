"""Runs tables read from experiment trackers: TensorBoard event files, an MLflow store, W&B run
folders or exports. Each reader (`read_tensorboard`, `read_mlflow`, `read_wandb`) turns the
tracker's runs into `TrackedRun`s; `table.runs_table` maps the user's names onto columns and
reports the runs it leaves out. The trackers' libraries are optional extras, imported when used.
"""
from .mlflow import read_mlflow
from .table import Columns, Imported, Skipped, TrackedRun
from .tensorboard import read_tensorboard
from .wandb import read_wandb

__all__ = ["Columns", "Imported", "Skipped", "TrackedRun", "read_mlflow", "read_tensorboard", "read_wandb"]
