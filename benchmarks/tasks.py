"""Extrapolation tasks on public scaling data: fit on some runs, predict larger ones.

    from benchmarks.tasks import load_tasks
    for task in load_tasks():                 # or load_tasks(names=["chinchilla_top_decile"])
        ...task.law, task.train, task.test    # .law file in models/, two tables

The data lie in ../shared/data beside the checkout (see its README); `data_dir()` says so
clearly when they are absent. Each task names one law; tables keep the law's column names.

Trajectory tasks (issue 13) predict the largest runs' final losses three ways: from the smaller
runs' final losses alone, from all their checkpoints read as independent runs, and from their
whole curves under `curves by` (one offset per run, curves.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"


@dataclass(frozen=True)
class Task:
    name: str
    law: str  # file in models/, or a label of `source`
    train: pd.DataFrame
    test: pd.DataFrame
    note: str
    response: str = "loss"
    source: str | None = None  # the spec's text, where it is not a file of models/ as it is

    @property
    def spec(self) -> str | Path:
        """What load_spec reads: the spec's text, or its file."""
        return self.source if self.source is not None else MODELS / self.law


def data_dir(path: str | Path | None = None) -> Path:
    folder = Path(path) if path else ROOT.parent / "shared" / "data"
    if not (folder / "README.md").is_file():
        raise SystemExit(f"reference data not found in {folder}: the tasks read the public tables "
                         f"of ../shared/data beside the checkout (or pass --data FOLDER)")
    return folder


def _split(table: pd.DataFrame, test: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    return table[~test].reset_index(drop=True), table[test].reset_index(drop=True)


def chinchilla_tasks(folder: Path) -> list[Task]:
    table = pd.read_csv(folder / "chinchilla_epoch.csv").query("epoch_excluded_outlier == 0")
    train, test = _split(table, table["C"] >= table["C"].quantile(0.9))
    tasks = [Task("chinchilla_top_decile", "chinchilla.law", train, test,
                  "Hoffmann's law on Epoch's 240 runs; the top tenth of compute held out")]
    # few runs: five at ~20 tokens per parameter at spread small sizes, one over-trained
    small = table[table["C"] < table["C"].quantile(0.5)].assign(ratio=lambda t: t["D"] / t["N"])
    sizes = np.quantile(np.log(small["N"]), [0.05, 0.3, 0.55, 0.8, 0.95])
    picked = [int((np.abs(np.log(small["N"]) - s) + np.abs(np.log(small["ratio"] / 20))).idxmin()) for s in sizes]
    picked.append(int(small["ratio"].idxmax()))
    test, train = _split(table, table.index.isin(picked))
    tasks.append(Task("chinchilla_few6", "gadre2024.law", train, test,
                      "Gadre's form (tied exponent) on 6 Chinchilla runs: 5 near 20 tokens/param "
                      "in the lower half of compute, 1 over-trained; predict the other 234"))
    return tasks


def seed_tasks(folder: Path) -> list[Task]:
    table = pd.read_csv(folder / "bian2025_models.csv")
    order = table.groupby("size_group")["params_N"].median().sort_values().index.tolist()
    rank = table["size_group"].map({g: i for i, g in enumerate(order)})
    tasks = []
    for i, group in enumerate(order[1:], start=1):
        train = table[rank < i].reset_index(drop=True)
        test = table[rank == i].reset_index(drop=True)
        tasks.append(Task(f"seed_{group}", "bian2025.law", train, test,
                          f"Bian et al.'s law fitted on the size groups below {group}, predicting {group}"))
    train, test = table[table["in_fit_set_main"] == 1], table[table["size_group"] == "1B"]
    tasks.append(Task("seed_1B_main27", "bian2025.law", train.reset_index(drop=True), test.reset_index(drop=True),
                      "the paper's own split: its 27 main runs, predicting the four 1B runs"))
    # few runs, Gadre-style: four small runs at 20 tokens per parameter plus one over-trained
    pick = [table.query("size_group == @g and tokens_per_param_regime == '20N'").index[0]
            for g in ("80M", "116M", "164M", "237M")]
    pick.append(table.query("size_group == '80M' and tokens_per_param_regime == '160N'").index[0])
    renamed = table.rename(columns={"params_N": "N", "tokens_D": "D"})
    train, test = _split(renamed, ~renamed.index.isin(pick))
    tasks.append(Task("seed_few5_gadre", "gadre2024.law", train, test,
                      "Gadre's form on 5 seed runs (80M-237M at 20 tokens/param, one 80M at 160); "
                      "predict the other 71"))
    pick = [table.query("size_group == @g and tokens_per_param_regime == '20N'").index[0]
            for g in ("80M", "116M", "164M", "237M", "313M")]
    pick.append(table.query("size_group == '313M' and tokens_per_param_regime == '160N'").index[0])
    train, test = _split(table, ~table.index.isin(pick))
    tasks.append(Task("seed_few6_bian", "bian2025.law", train, test,
                      "the seed's law on 6 runs (one per main size group at 20 tokens/param, one "
                      "313M at 160); predict the other 70"))
    return tasks


PORIAN_CONFIGS = {  # the two configurations the data README names
    "porian_corrected": ("tuned", "short", "const", "standard", "val"),
    "porian_kaplan_like": ("base", "long", "kaplan", "kaplan", "train"),
}


def porian_tasks(folder: Path) -> list[Task]:
    table = pd.read_csv(folder / "porian2024_isoflop_rw.csv")
    tasks = []
    for name, config in PORIAN_CONFIGS.items():
        rows = table[(table[["hparams", "warmup", "decay", "param_count", "loss_split"]]
                      == pd.Series(config, index=["hparams", "warmup", "decay", "param_count", "loss_split"])).all(axis=1)]
        train, test = _split(rows, rows["flops_budget"] > 1e18)
        tasks.append(Task(name, "chinchilla.law", train, test,
                          f"Hoffmann's law on Porian's isoFLOP runs ({'/'.join(config)}): budgets up "
                          f"to 1e18 fitted, larger ones predicted (rows share runs: not independent)"))
    return tasks


def opt_tasks(folder: Path) -> list[Task]:
    table = pd.read_csv(folder / "opt_trajectories.csv").rename(columns={"tokens_seen": "D"})
    small = table["N"] < 1e10
    train = table[small & (table["D"] > 1e10)].reset_index(drop=True)
    test = table[~small & (table["is_final"] == 1)].reset_index(drop=True)
    return [Task("opt_trajectories", "chinchilla.law", train, test,
                 "Hoffmann's law on the checkpoints after 1e10 tokens of OPT-125m/1.3b/6.7b; "
                 "predict the final loss of 13b, 30b and 175b")]


def sweep_tasks() -> list[Task]:
    table = pd.read_parquet(ROOT / "examples" / "data" / "cpu_small_runs.parquet")
    largest = table["N_non_embedding"] > 0.75 * table["N_non_embedding"].max()
    train, test = _split(table, largest)
    return [Task("cpu_sweep_largest", "bian2025.law", train, test,
                 "the project's 12-run CPU sweep: fit the two smaller sizes, predict the ~55k one")]


def _with_curves(law: str, column: str, body: str | None = None) -> str:
    """A spec of models/ (or `body`) with `curves by column` in front: the one extra line."""
    return f"curves by {column}\n" + (body if body is not None else (MODELS / law).read_text())


OPT_LARGEST = 2e10  # OPT-30b and OPT-175b are predicted; 125m, 1.3b, 6.7b and 13b are fitted
FINAL_LOSS_LAW = "loss ~ E + A/N^alpha\n"  # every OPT run saw ~2.8e11 tokens: D cannot be fitted


def opt_trajectory_tasks(folder: Path) -> list[Task]:
    table = pd.read_csv(folder / "opt_trajectories.csv").rename(columns={"tokens_seen": "D"})
    small = table["N"] < OPT_LARGEST
    checkpoints = table[small & (table["D"] > 1e10)].reset_index(drop=True)  # Choshen et al.'s cut
    finals = table[small & (table["is_final"] == 1)].reset_index(drop=True)
    test = table[~small & (table["is_final"] == 1)].reset_index(drop=True)
    three = table[(table["N"] < 1e10) & (table["D"] > 1e10)].reset_index(drop=True)
    test_three = table[(table["N"] >= 1e10) & (table["is_final"] == 1)].reset_index(drop=True)
    what = "OPT-125m to 13b, predicting the final loss of 30b and 175b"
    return [
        Task("opt_finals", "E + A/N^alpha", finals, test,
             f"final losses only: {what} (4 rows; one token budget, so no data term)",
             source=FINAL_LOSS_LAW),
        Task("opt_checkpoints", "chinchilla.law", checkpoints, test,
             f"checkpoints after 1e10 tokens read as independent runs: {what}"),
        Task("opt_curves", "curves + chinchilla.law", checkpoints, test,
             f"whole curves after 1e10 tokens, `curves by model_name`: {what}",
             source=_with_curves("chinchilla.law", "model_name")),
        Task("opt_curves_3", "curves + chinchilla.law", three, test_three,
             "whole curves of OPT-125m, 1.3b and 6.7b after 1e10 tokens, predicting 13b, 30b and "
             "175b: opt_trajectories' split, with `curves by model_name`",
             source=_with_curves("chinchilla.law", "model_name")),
    ]


SCHEDULE_LAW = "loss ~ E + A/N^alpha + B/D^beta + C * (1 - schedule_fraction)\n"


def sweep_trajectory_tasks() -> list[Task]:
    runs = pd.read_parquet(ROOT / "examples" / "data" / "cpu_small_runs.parquet")
    curves = pd.read_parquet(ROOT / "examples" / "data" / "cpu_small_runs_curves.parquet")
    largest = runs["N_non_embedding"].max() * 0.75
    finals_train, test = _split(runs, runs["N_non_embedding"] > largest)
    test = test.assign(run=test["config_hash"], schedule_fraction=1.0)
    checkpoints = curves[curves["N_non_embedding"] <= largest].reset_index(drop=True)
    what = "the CPU sweep's two smaller sizes (8 runs), predicting the 4 runs of the ~55k size"
    return [
        Task("sweep_finals", "chinchilla.law", finals_train, test, f"final losses only: {what}"),
        Task("sweep_checkpoints", "chinchilla.law", checkpoints, test,
             f"all 4 checkpoints per run read as independent runs: {what}"),
        Task("sweep_curves", "curves + chinchilla.law", checkpoints, test,
             f"whole curves, `curves by run`: {what}", source=_with_curves("chinchilla.law", "run")),
        Task("sweep_curves_schedule", "curves + schedule term", checkpoints, test,
             f"whole curves with a term for the cosine schedule's position, 0 at its end: {what}",
             source=_with_curves("", "run", SCHEDULE_LAW)),
    ]


def load_tasks(names: list[str] | None = None, folder: str | Path | None = None) -> list[Task]:
    """Every task (or those named), in a fixed order."""
    folder = data_dir(folder)
    tasks = (chinchilla_tasks(folder) + seed_tasks(folder) + porian_tasks(folder)
             + opt_tasks(folder) + sweep_tasks() + opt_trajectory_tasks(folder) + sweep_trajectory_tasks())
    if names:
        unknown = set(names) - {t.name for t in tasks}
        if unknown:
            raise SystemExit(f"unknown task(s): {', '.join(sorted(unknown))}; "
                             f"tasks: {', '.join(t.name for t in tasks)}")
        tasks = [t for t in tasks if t.name in names]
    return tasks
