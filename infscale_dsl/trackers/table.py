"""From runs as a tracker stores them to a runs table, under the names the user gave.

Every reader turns its tracker's runs into `TrackedRun`s (hyperparameters and metric histories
under the tracker's own names); `runs_table` maps the user's names onto columns, one row per run
(the final value of each metric) or one row per logged step (`history=True`), and reports each
run it leaves out with the reasons. A name that no run logs is an error that lists the names
the runs do log: nothing is matched loosely.
"""
from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from ..errors import ConfigError, DataError, Diagnostic, listed

RESERVED = ("run", "run_name", "step")  # the columns every imported table has (step: with history)
SHOWN_NAMES = 20  # names listed in an "unknown name" error; the rest are counted


@dataclass
class TrackedRun:
    """One run as its tracker stores it, before any name is mapped."""

    id: str  # unique within the source: a folder, an MLflow or W&B run id
    name: str  # the display name (the folder, for TensorBoard)
    params: dict[str, object]  # hyperparameters as logged; a tuple where the run logged several values
    metrics: dict[str, pd.Series]  # metric -> values indexed by step, in step order; the last is the final value
    unfinished: str | None = None  # the tracker's state ("FAILED", "crashed", ...) of a run that did not finish


@dataclass(frozen=True)
class Columns:
    """The user's names: a tracker's name -> the table column it fills."""

    metrics: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)  # numbers
    categories: dict[str, str] = field(default_factory=dict)  # kept as text: `data x : category` in a spec

    def __post_init__(self):
        problems = []
        if not self.metrics:
            problems.append(Diagnostic("no metric to import", hint="name one, e.g. --metric val/loss=loss"))
        targets = Counter([*self.params.values(), *self.categories.values(), *self.metrics.values()])
        problems += [Diagnostic(f"{count} names map to the column {column!r}",
                                hint="give each --param, --category and --metric its own column")
                     for column, count in targets.items() if count > 1]
        problems += [Diagnostic(f"the column {column!r} is the importer's own",
                                hint=f"map onto another name: {', '.join(RESERVED)} are always written")
                     for column in targets if column in RESERVED]
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True)
class Skipped:
    run: str  # the run's id
    name: str  # its display name
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        named = self.run if self.name == self.run else f"{self.name} ({self.run})"
        return f"{named}: {'; '.join(self.reasons)}"


@dataclass
class Imported:
    table: pd.DataFrame  # run, run_name, [step,] then the user's columns in the order given
    skipped: list[Skipped]  # the runs left out, each with its reasons

    def report(self, source: str) -> str:
        rows = f" ({len(self.table)} rows)" if "step" in self.table else ""
        n_runs = self.table["run"].nunique()
        lines = [f"imported {n_runs} run{'s' * (n_runs != 1)}{rows} from {source}"]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)}:")
            lines += [f"  {skip}" for skip in self.skipped]
        return "\n".join(lines)


def by_step(steps, values) -> pd.Series:
    """A metric's values indexed by step, in step order; a step logged twice keeps the later value
    (`steps` and `values` in the order they were written)."""
    series = pd.Series(list(values), index=pd.Index(list(steps), dtype="int64"), dtype=object)
    return series[~series.index.duplicated(keep="last")].sort_index(kind="stable")


def runs_table(runs: list[TrackedRun], columns: Columns, source: str, *, history: bool = False,
               name_pattern: str | None = None, include_unfinished: bool = False) -> Imported:
    """The runs table of `runs` under `columns`. `name_pattern` is a regular expression whose
    named groups read more params from each run's name (`n(?P<N>[0-9]+)` reads N from "n1000");
    unfinished runs are left out unless `include_unfinished`."""
    if not runs:
        raise DataError(Diagnostic("no runs found", filename=source))
    if name_pattern is not None:
        _add_params_from_names(runs, name_pattern)
    _check_names(runs, columns, source)
    repeated = Counter(run.id for run in runs)
    rows, skipped = [], []
    for run in runs:
        reasons = _reasons(run, columns, include_unfinished, history)
        if repeated[run.id] > 1:
            reasons.append(f"{repeated[run.id]} runs in the source share this id")
        if reasons:
            skipped.append(Skipped(run.id, run.name, tuple(reasons)))
        else:
            rows.append(_history_rows(run, columns) if history else _final_row(run, columns))
    if not rows:
        raise DataError([Diagnostic(f"skipped {skip}", filename=source) for skip in skipped]
                        + [Diagnostic(f"none of the {len(runs)} runs could be imported", filename=source,
                                      hint="check the names given against what the runs log")])
    table = pd.concat(rows, ignore_index=True) if history else pd.DataFrame(rows)
    table = table.sort_values(["run_name", "run", "step"] if history else ["run_name", "run"],
                              kind="stable", ignore_index=True)
    for column in columns.params.values():
        table[column] = _whole_numbers_as_int(table[column])
    return Imported(table, skipped)


def _add_params_from_names(runs: list[TrackedRun], name_pattern: str) -> None:
    """Add the named groups of `name_pattern`, matched in each run's name, to its params."""
    try:
        pattern = re.compile(name_pattern)
    except re.error as error:
        raise ConfigError(Diagnostic(f"--name-pattern is not a regular expression: {error}")) from None
    if not pattern.groupindex:
        raise ConfigError(Diagnostic("--name-pattern has no named group to read a param from",
                                     hint=r"name each group, e.g. 'n(?P<N>[0-9.e+]+)' reads N"))
    logged = {name for run in runs for name in run.params}
    clashes = sorted(set(pattern.groupindex) & logged)
    if clashes:
        raise ConfigError(Diagnostic(f"--name-pattern group {clashes[0]!r} is also a param the runs log",
                                     hint="rename the group: a param comes from the tracker or from the name"))
    for run in runs:
        match = pattern.search(run.name)
        if match:
            run.params.update({group: value for group, value in match.groupdict().items() if value is not None})


def _check_names(runs: list[TrackedRun], columns: Columns, source: str) -> None:
    """DataError for every name that no run logs, listing those they do."""
    logged = {"param": {name for run in runs for name in run.params},
              "metric": {name for run in runs for name in run.metrics}}
    asked = [("param", name) for name in [*columns.params, *columns.categories]]
    asked += [("metric", name) for name in columns.metrics]
    problems = [_unknown(kind, name, logged[kind], source) for kind, name in asked if name not in logged[kind]]
    if problems:
        raise DataError(problems)


def _unknown(kind: str, name: str, logged: set[str], source: str) -> Diagnostic:
    if not logged:
        hint = "read params from the run names with --name-pattern" if kind == "param" else None
        return Diagnostic(f"no run logs a {kind} named {name!r}: the runs log no {kind}s at all",
                          filename=source, hint=hint)
    return Diagnostic(f"no run logs a {kind} named {name!r}", filename=source,
                      hint=names_hint(name, logged, f"the {kind}s logged"))


def names_hint(name: str, known: set[str] | list[str], what: str) -> str:
    """'did you mean ...? {what} are: ...', for a name that is not among `known`."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    guess = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    return f"{guess}{what} are: {listed(names, SHOWN_NAMES)}"


def _reasons(run: TrackedRun, columns: Columns, include_unfinished: bool, history: bool) -> list[str]:
    """Why `run` cannot be a row of the table; empty when it can."""
    reasons = []
    if run.unfinished and not include_unfinished:
        reasons.append(f"did not finish ({run.unfinished}; --include-unfinished keeps it)")
    for name in [*columns.params, *columns.categories]:
        value = run.params.get(name)
        if value is None:
            reasons.append(f"no param {name!r}")
        elif isinstance(value, tuple):
            reasons.append(f"param {name!r} has several values: {', '.join(map(str, value))}")
        elif name in columns.params and not _is_finite(_number(value)):
            reasons.append(f"param {name!r} is {value!r}, not a number")
    for name in columns.metrics:
        values = run.metrics.get(name)
        if values is None or values.empty:
            reasons.append(f"no metric {name!r}")
            continue
        checked = values if history else values.iloc[-1:]
        bad = [(step, value) for step, value in checked.items() if not _is_finite(_number(value))]
        if bad:
            step, value = bad[0]
            where = f" at step {step}" if history else ""
            reasons.append(f"metric {name!r} is {value!r}{where}, not a finite number")
    return reasons


def _final_row(run: TrackedRun, columns: Columns) -> dict:
    row = {"run": run.id, "run_name": run.name}
    row |= {column: _number(run.params[name]) for name, column in columns.params.items()}
    row |= {column: str(run.params[name]) for name, column in columns.categories.items()}
    return row | {column: _number(run.metrics[name].iloc[-1]) for name, column in columns.metrics.items()}


def _history_rows(run: TrackedRun, columns: Columns) -> pd.DataFrame:
    """One row per step any mapped metric was logged at; a metric not logged at a step is empty."""
    metrics = pd.concat({column: run.metrics[name].map(_number).astype(float)
                         for name, column in columns.metrics.items()}, axis=1)
    rows = metrics.rename_axis("step").reset_index()
    rows.insert(0, "run_name", run.name)
    rows.insert(0, "run", run.id)
    for name, column in columns.params.items():
        rows[column] = _number(run.params[name])
    for name, column in columns.categories.items():
        rows[column] = str(run.params[name])
    return rows[["run", "run_name", "step", *columns.params.values(), *columns.categories.values(),
                 *columns.metrics.values()]]


def _number(value: object) -> float | None:
    """A logged value as a float: numbers, and text such as "1e6" (MLflow logs params as text).
    None for anything else, booleans included (map those with --category)."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _is_finite(number: float | None) -> bool:
    return number is not None and math.isfinite(number)


def _whole_numbers_as_int(column: pd.Series) -> pd.Series:
    """Params such as N read back as 1000000, not 1000000.0 (metrics stay floats)."""
    if column.dtype.kind == "f" and column.notna().all() and (column % 1 == 0).all() and column.abs().max() < 2**53:
        return column.astype("int64")
    return column
