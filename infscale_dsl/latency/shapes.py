"""Model shapes to time, and the settings to time them with.

Shapes come from a TOML config (`load_config`) or from a training runs table
(`shapes_from_runs`); `join_runs` puts latency rows beside the training runs of the same shape,
so one table feeds a spec with both a loss law and a latency law.

A config looks like this (every key of [defaults] may be given per shape too):

    [settings]
    batch_sizes = [1]
    prompt_len = 16
    output_len = 32
    dtype = "float32"
    repeats = 7
    warmup = 2

    [defaults]
    vocab = 256
    head_dim = 32          # n_heads = d_model / head_dim unless n_heads is given
    ffn_multiplier = 2.6667

    [[shape]]
    d_model = 128
    n_layers = 16
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, DataError, Diagnostic
from ..nn import sizes

if TYPE_CHECKING:  # tables are handed in: the CLI's help reads this module without loading pandas
    import pandas as pd

# the columns that say which shape a row is; latency rows and training runs join on these
SHAPE_KEYS = ("d_model", "n_layers", "n_heads", "n_kv_heads", "vocab")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class Shape(sizes.ShapeSizes):
    """A decoder-only transformer's shape: pre-norm, rotary, SwiGLU, grouped-query attention."""

    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab: int
    ffn_multiplier: float = 8 / 3
    tie_embeddings: bool = False
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.d_model}x{self.n_layers}"

    @property
    def non_embedding_params(self) -> int:
        return self._counts["non_embedding"]

    @property
    def params(self) -> int:
        """All parameters, embeddings included (the N of the training runs' tables)."""
        return self._counts["total"]

    @property
    def _counts(self) -> dict[str, int]:
        return sizes.parameter_counts(self.d_model, self.n_layers, self.n_heads, self.n_kv_heads,
                                      self.ffn_multiplier, self.vocab, self.tie_embeddings)

    def problems(self) -> list[str]:
        """What is wrong with this shape, in words; empty when it can be built."""
        found = []
        for key in ("d_model", "n_layers", "n_heads", "n_kv_heads", "vocab"):
            if getattr(self, key) < 1:
                found.append(f"{key} must be a positive integer, not {getattr(self, key)}")
        if found:
            return found
        if self.d_model % self.n_heads:
            found.append(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        elif self.head_dim % 2:
            found.append(f"head_dim {self.head_dim} must be even for rotary positions")
        if self.n_heads % self.n_kv_heads:
            found.append(f"n_heads {self.n_heads} is not divisible by n_kv_heads {self.n_kv_heads}")
        if self.ffn_multiplier <= 0:
            found.append(f"ffn_multiplier {self.ffn_multiplier} gives no SwiGLU hidden units")
        return found


@dataclass(frozen=True)
class BenchSettings:
    """How to time each shape. The defaults are the paper's: batch 1, input 128, output 256."""

    batch_sizes: tuple[int, ...] = (1,)
    prompt_len: int = 128
    output_len: int = 256
    dtype: str = "bfloat16"
    repeats: int = 5
    warmup: int = 1
    seed: int = 0

    def problems(self) -> list[str]:
        found = []
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            found.append(f"batch_sizes must be positive integers, not {list(self.batch_sizes)}")
        if self.prompt_len < 1:
            found.append(f"prompt_len must be at least 1, not {self.prompt_len}")
        if self.output_len < 2:
            found.append(f"output_len must be at least 2 (one prefill token, one decoded), not {self.output_len}")
        if self.dtype not in DTYPES:
            found.append(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.repeats < 2:
            found.append(f"repeats must be at least 2 to give a spread, not {self.repeats}")
        if self.warmup < 1:
            found.append(f"warmup must be at least 1 (the first run compiles and fills caches), not {self.warmup}")
        return found


_SHAPE_FIELDS = {f.name for f in fields(Shape)} | {"head_dim"}
_SETTING_FIELDS = {f.name for f in fields(BenchSettings)}


def load_config(path: str | Path) -> tuple[list[Shape], BenchSettings]:
    """Read shapes and settings from a TOML file; every problem is reported at once."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(Diagnostic(f"no such config file: {path}", filename=str(path))) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(Diagnostic(f"not valid TOML: {error}", filename=str(path))) from None

    problems: list[Diagnostic] = []

    def report(message: str, hint: str | None = None) -> None:
        problems.append(Diagnostic(message, filename=str(path), hint=hint))

    for key in sorted(set(document) - {"settings", "defaults", "shape"}):
        report(f"unknown table [{key}]", hint="the tables are [settings], [defaults] and [[shape]]")
    for key, kind in (("settings", dict), ("defaults", dict), ("shape", list)):
        if not isinstance(document.get(key, kind()), kind):
            report(f"'{key}' must be a {'table' if kind is dict else 'list of tables'}",
                   hint="write [settings], [defaults] and one [[shape]] per shape")
            raise ConfigError(problems)
    settings_table = document.get("settings", {})
    for key in sorted(set(settings_table) - _SETTING_FIELDS):
        report(f"unknown key '{key}' in [settings]", hint=f"known keys: {', '.join(sorted(_SETTING_FIELDS))}")
    settings = _build(BenchSettings, {k: v for k, v in settings_table.items() if k in _SETTING_FIELDS},
                      "[settings]", report)
    if settings is not None:
        for message in settings.problems():
            report(f"[settings]: {message}")

    defaults = document.get("defaults", {})
    entries = document.get("shape", [])
    if not entries:
        report("the config lists no shapes", hint="add one [[shape]] table per shape, with d_model and n_layers")
    shapes = []
    for number, entry in enumerate(entries, start=1):
        where = f"[[shape]] number {number}"
        merged = {**defaults, **entry}
        for key in sorted(set(merged) - _SHAPE_FIELDS):
            report(f"{where}: unknown key '{key}'", hint=f"known keys: {', '.join(sorted(_SHAPE_FIELDS))}")
        shape = _shape_from_mapping({k: v for k, v in merged.items() if k in _SHAPE_FIELDS}, where, report)
        if shape is not None:
            shapes.append(shape)
    if problems:
        raise ConfigError(problems)
    return shapes, settings


def shapes_from_runs(runs: pd.DataFrame, source: str = "runs table", vocab: int | None = None) -> list[Shape]:
    """The distinct shapes of a training runs table (columns d_model, n_layers, n_heads, and
    optionally n_kv_heads (default n_heads), vocab, ffn_multiplier, tie_embeddings).

    Without a tie_embeddings column, a shape is taken as tied when the table's params_N is the
    tied count (the training sweep's default) and as untied otherwise."""
    needed = ["d_model", "n_layers", "n_heads"] + ([] if vocab is not None else ["vocab"])
    missing = [c for c in needed if c not in runs.columns]
    if missing:
        hint = "give the vocabulary size with --vocab" if missing == ["vocab"] else None
        raise DataError(Diagnostic(f"the runs table lacks column(s) {', '.join(missing)}",
                                   filename=source, hint=hint))
    table = runs.copy()
    if "n_kv_heads" not in table.columns:
        table["n_kv_heads"] = table["n_heads"]
    if "vocab" not in table.columns:
        table["vocab"] = vocab
    columns = list(SHAPE_KEYS) + [c for c in ("ffn_multiplier", "tie_embeddings") if c in table.columns]
    infer_tie = "tie_embeddings" not in table.columns and "params_N" in table.columns
    if infer_tie:
        columns.append("params_N")
    problems: list[Diagnostic] = []

    def report(message: str, hint: str | None = None) -> None:
        problems.append(Diagnostic(message, filename=source, hint=hint))

    shapes = []
    for row_number, row in table[columns].drop_duplicates().iterrows():
        values = row.to_dict()
        params = values.pop("params_N", None)
        shape = _shape_from_mapping(values, f"row {row_number}", report)
        if shape is not None and infer_tie:
            tied = dataclasses.replace(shape, tie_embeddings=True)
            shape = tied if tied.params == params else shape
        if shape is not None and shape not in shapes:
            shapes.append(shape)
    if problems:
        raise DataError(problems)
    return shapes


def join_runs(latency: pd.DataFrame, runs: pd.DataFrame, how: str = "inner") -> pd.DataFrame:
    """Training runs and latency rows of the same shape side by side, one row per pair.

    Joins on the SHAPE_KEYS both tables have (a runs table without n_kv_heads is taken as full
    multi-head attention). Columns present in both tables keep the runs table's name and get a
    `_latency` suffix on the latency side."""
    runs = runs.copy()
    if "n_kv_heads" not in runs.columns and "n_heads" in runs.columns:
        runs["n_kv_heads"] = runs["n_heads"]
    keys = [k for k in SHAPE_KEYS if k in latency.columns and k in runs.columns]
    for required in ("d_model", "n_layers"):
        if required not in keys:
            table = "latency table" if required not in latency.columns else "runs table"
            raise DataError(Diagnostic(f"cannot join by shape: the {table} has no column '{required}'"))
    joined = runs.merge(latency, on=keys, how=how, suffixes=("", "_latency"))
    if joined.empty:
        raise DataError(Diagnostic(
            f"no latency row has the shape of a training run (joined on {', '.join(keys)})",
            hint="time the runs' own shapes: `infscale-dsl latency runs.parquet -o latency.parquet`"))
    return joined


def _shape_from_mapping(values: dict, where: str, report) -> Shape | None:
    """A Shape from loose keys: n_heads from head_dim when not given, n_kv_heads = n_heads."""
    values = dict(values)
    for key in ("d_model", "n_layers"):
        if key not in values:
            report(f"{where}: missing '{key}'")
            return None
    head_dim = values.pop("head_dim", None)
    if "n_heads" not in values:
        if head_dim is None:
            report(f"{where}: give n_heads or head_dim")
            return None
        if not isinstance(head_dim, int) or head_dim < 1 or values["d_model"] % head_dim:
            report(f"{where}: head_dim {head_dim} does not divide d_model {values['d_model']}")
            return None
        values["n_heads"] = values["d_model"] // head_dim
    values.setdefault("n_kv_heads", values["n_heads"])
    if "vocab" not in values:
        report(f"{where}: missing 'vocab'", hint="set it once in [defaults]")
        return None
    shape = _build(Shape, values, where, report)
    if shape is not None:
        for message in shape.problems():
            report(f"{where} ({shape.label}): {message}")
    return shape


def _build(kind, values: dict, where: str, report):
    """kind(**values) with each value checked against the field's type (ints stay exact)."""
    converted = {}
    for spec in fields(kind):
        if spec.name not in values:
            continue
        value = values[spec.name]
        expected = spec.type
        if expected == "int" and _is_whole(value):
            converted[spec.name] = int(value)
        elif expected == "float" and isinstance(value, numbers.Real) and not isinstance(value, bool):
            converted[spec.name] = float(value)
        elif expected == "bool" and _is_bool(value):
            converted[spec.name] = bool(value)
        elif expected == "str" and isinstance(value, str):
            converted[spec.name] = value
        elif expected.startswith("tuple") and isinstance(value, list) and all(map(_is_whole, value)):
            converted[spec.name] = tuple(int(v) for v in value)
        else:
            report(f"{where}: '{spec.name}' should be {_describe(expected)}, not {value!r}")
            return None
    return kind(**converted)


def _is_bool(value) -> bool:
    """A Python or NumPy boolean (a runs table's column gives numpy.bool_)."""
    import numpy as np  # here: `infscale-dsl --help` reads this module, and numpy is half its time

    return isinstance(value, (bool, np.bool_))


def _is_whole(value) -> bool:
    if _is_bool(value):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer()


def _describe(type_name: str) -> str:
    return {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}.get(
        type_name, "a list of integers")
