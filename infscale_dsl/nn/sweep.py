"""Sweeps: read a TOML file of runs, train the ones not yet finished, store each as it finishes.

A sweep file names a corpus, shared model and training settings, and either a grid (shapes x
tokens per parameter, shapes grouped in sizes of about equal parameter count that differ in
aspect ratio d_model / n_layers) or an explicit list of runs; see examples/sweeps/cpu_small.toml.
A run is identified by the hash of its full configuration, so rerunning a sweep skips finished
runs, and `shard=(i, n)` takes every n-th run from the i-th, for splitting a sweep over machines.

Runs are tasks of an executor (`infscale_dsl.executors`): in this process, in local processes,
on Ray or on SLURM. Wherever a run trains, it saves its own part of the table and keeps its log
in `<table>.logs/`; the driver rewrites the table as runs finish. Optional `[resources]` (what
each run needs: cpus, gpus, memory_gb) and `[slurm]` tables say where and how runs are placed;
they do not change a run's result or hash.
"""
from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import json
import os
import socket
import subprocess
import time
import tomllib
import traceback
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import jax.numpy as jnp
from tqdm.auto import tqdm

from .. import __version__
from ..errors import ConfigError, Diagnostic, render
from ..executors import Executor, InProcess, Resources
from . import runs
from .corpus import DEFAULT_CORPUS, load_corpus
from .model import ModelConfig, param_count
from .train import TrainConfig, TrainResult, library_versions, train

MODEL_FIELDS = {f.name for f in fields(ModelConfig)}
TRAIN_FIELDS = {f.name for f in fields(TrainConfig)} - {"tokens", "seed"}
TOP_LEVEL = {"seed", "corpus", "eval_fraction", "model", "train", "grid", "runs", "resources", "slurm"}
RESOURCE_FIELDS = {f.name for f in fields(Resources)}
SLURM_FIELDS = {"partition", "time_min", "array_parallelism", "account"}  # the rest of SlurmOptions comes from -o
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
LATER_TRAIN_FIELDS = {"lr_base_width"}  # TrainConfig fields hashed only when set (see Sweep.config_hash)


@dataclass(frozen=True)
class RunSpec:
    model: ModelConfig
    train: TrainConfig

    @property
    def name(self) -> str:
        m = self.model
        return f"d{m.d_model}_L{m.n_layers}_h{m.n_heads}_kv{m.n_kv_heads}_D{self.train.tokens}"


@dataclass(frozen=True)
class Sweep:
    runs: list[RunSpec]
    corpus: str
    eval_fraction: float
    resources: Resources = Resources()  # what each run needs on Ray or SLURM
    slurm: dict = field(default_factory=dict)  # [slurm]: SlurmOptions fields

    def config_hash(self, run: RunSpec) -> str:
        """Hash of everything that determines a run's result (not the code version or device).
        Settings added since the first tables were written are left out while at their defaults,
        so that those tables' hashes still hold."""
        model = asdict(run.model) | {"dtype": jnp.dtype(run.model.dtype).name}
        train = {k: v for k, v in asdict(run.train).items() if not (k in LATER_TRAIN_FIELDS and v is None)}
        identity = dict(model=model, train=train, corpus=self.corpus, eval_fraction=self.eval_fraction)
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def load_sweep(path: Path) -> Sweep:
    """Parse and check a sweep file; every problem is reported as a ConfigError naming the file."""
    try:
        spec = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(Diagnostic(f"sweep file {path} not found", hint="pass the path of a .toml sweep file")) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(Diagnostic(f"not valid TOML: {error}", filename=str(path))) from None
    _check_keys(spec, TOP_LEVEL, "the top level", path)
    model_defaults = _model_fields(spec.get("model", {}), "[model]", path)
    train_defaults = spec.get("train", {})
    _check_keys(train_defaults, TRAIN_FIELDS, "[train]", path)
    seed = spec.get("seed", 0)
    _check_keys(spec.get("resources", {}), RESOURCE_FIELDS, "[resources]", path)
    _check_keys(spec.get("slurm", {}), SLURM_FIELDS, "[slurm]", path)

    entries = list(spec.get("runs", []))  # explicit runs: model fields + tokens or tokens_per_param
    if "grid" in spec:
        grid = spec["grid"]
        _check_keys(grid, {"sizes", "tokens_per_param"}, "[grid]", path)
        shapes = [shape for size in grid.get("sizes", []) for shape in size.get("shapes", [])]
        entries += [shape | {"tokens_per_param": k} for shape in shapes for k in grid.get("tokens_per_param", [])]
    if not entries:
        raise ConfigError(Diagnostic("the sweep has no runs", filename=str(path),
                                     hint="add a [grid] with sizes and tokens_per_param, or [[runs]] entries"))

    sweep_runs = []
    for number, entry in enumerate(entries, start=1):
        where = f"run {number}"
        budget = {k: entry.pop(k) for k in ("tokens", "tokens_per_param") if k in entry}
        if len(budget) != 1:
            raise ConfigError(Diagnostic(f"{where} needs exactly one of tokens, tokens_per_param", filename=str(path)))
        try:
            model = ModelConfig(**(model_defaults | _model_fields(entry, where, path)))
        except ConfigError as error:  # a bad shape: say which run and file
            raise ConfigError([replace(d, message=f"{where}: {d.message}", filename=str(path))
                               for d in error.diagnostics]) from None
        tokens = budget.get("tokens") or round(budget["tokens_per_param"] * param_count(model)["total"])
        sweep_runs.append(RunSpec(model, TrainConfig(tokens=int(tokens), seed=seed, **train_defaults)))
    return Sweep(runs=sweep_runs, corpus=str(spec.get("corpus", DEFAULT_CORPUS)),
                 eval_fraction=spec.get("eval_fraction", 0.05), resources=Resources(**spec.get("resources", {})),
                 slurm=dict(spec.get("slurm", {})))


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n."""
    try:
        index, count = (int(part) for part in text.split("/"))
        if not 0 <= index < count:
            raise ValueError
    except ValueError:
        raise ConfigError(Diagnostic(f"bad --shard {text!r}", hint="write i/n with 0 <= i < n, e.g. 0/4")) from None
    return index, count


class RunsFailed(Exception):
    """Some runs of a sweep failed; every other run trained and was saved."""

    def __init__(self, failures: list[Diagnostic]):
        self.failures = failures
        super().__init__(render(failures))


def run_sweep(sweep: Sweep, output: Path, shard: tuple[int, int] = (0, 1), show_progress: bool = False,
              log=print, executor: Executor | None = None) -> tuple[int, int]:
    """Train this shard's unfinished runs on `executor` (default: one after another in this
    process), storing each as it finishes, then write the finished runs' learning curves in long
    form beside the table (runs.curve_table). Returns (trained, skipped); raises RunsFailed
    after the other runs if any run failed."""
    index, count = shard
    mine = sweep.runs[index::count]
    runs.remove_temporaries(output)
    table = runs.rebuild_table(output, log)  # also repairs a table a crash left stale
    done = set(table["config_hash"])
    todo = [run for run in mine if sweep.config_hash(run) not in done]
    log(f"{len(mine)} runs in this shard: {len(mine) - len(todo)} already finished, {len(todo)} to train")
    # every run of a sweep shares its [train] settings, so one batch size turns tokens into steps
    batch_size = sweep.runs[0].train.batch_size
    if not todo:
        runs.write_curves(output, table, batch_size)
        return 0, len(mine)
    executor = executor or InProcess()
    output, code = Path(output).absolute(), code_version()  # absolute: workers may start elsewhere
    runs.logs_dir(output).mkdir(parents=True, exist_ok=True)
    shared = replace(sweep, runs=[])  # what a task needs of the sweep: not every other run (O(n^2) bytes)
    tasks = [(shared, run, output, code, executor.in_process and show_progress, f"run {number}/{len(todo)} {run.name}")
             for number, run in enumerate(todo, start=1)]
    failures = []
    overall = tqdm(total=sum(r.train.tokens for r in todo), desc="sweep", unit="tok", unit_scale=True,
                   disable=not show_progress)
    with overall:
        for outcome in executor.map(train_run, tasks, sweep.resources):
            run = todo[outcome.index]
            log_file = runs.logs_dir(output) / f"{sweep.config_hash(run)}.log"
            if outcome.error is not None:
                with open(log_file, "a") as file:  # the worker may have died before writing anything
                    print(f"{_now()} the driver was told: {outcome.error}", file=file)
                failures.append(Diagnostic(f"run {run.name} failed: {outcome.error_line()}",
                                           hint=f"its log: {log_file}" + (f" and {outcome.log}" if outcome.log else "")))
                log(f"{run.name}: FAILED, see {log_file}")
                continue
            row = outcome.value
            table = runs.add_run(output, table, row)  # writes the part too if the worker's disk is not ours
            overall.update(run.train.tokens)
            log(f"{run.name}: loss {row['loss']:.4f} in {row['wall_time_s']:.0f} s ({row['tokens_per_s']:,.0f} tokens/s)")
    table = runs.rebuild_table(output, log)  # with any part written meanwhile by another driver's jobs
    runs.write_curves(output, table, batch_size)
    if failures:
        failures.append(Diagnostic(f"{len(failures)} of {len(todo)} runs failed; the others are saved in {output}",
                                   hint="fix the cause, then rerun the same command: only unfinished runs train"))
        raise RunsFailed(failures)
    return len(todo), len(mine) - len(todo)


def train_run(sweep: Sweep, run: RunSpec, output: Path, code: str, show_progress: bool = False,
              description: str = "train") -> dict:
    """One task of a sweep, wherever it runs: train `run`, save it as a part of `output`, return its
    row. Its log (`<output>.logs/<config_hash>.log`) keeps the task's output, or its traceback."""
    config_hash = sweep.config_hash(run)
    runs.logs_dir(output).mkdir(parents=True, exist_ok=True)
    with open(runs.logs_dir(output) / f"{config_hash}.log", "a") as log:
        print(f"{_now()} {run.name} ({config_hash}) on {socket.gethostname()}, pid {os.getpid()}", file=log, flush=True)
        # output goes to the log, unless this run's progress bar is on the driver's terminal
        redirect = contextlib.nullcontext() if show_progress else _redirect_output(log)
        try:
            with redirect:
                corpus = cached_corpus(sweep.corpus, sweep.eval_fraction)
                result = train(run.model, run.train, corpus, show_progress=show_progress, description=description)
        except Exception:
            traceback.print_exc(file=log)
            raise
        row = table_row(run, result, config_hash, code, corpus.description)
        runs.save_part(output, row)
        print(f"{_now()} finished: loss {result.loss:.4f} in {result.wall_time_s:.1f} s", file=log)
    return row


@functools.lru_cache(maxsize=2)
def cached_corpus(source: str, eval_fraction: float):
    """load_corpus, once per worker process, not once per run."""
    return load_corpus(source, eval_fraction)


@contextlib.contextmanager
def _redirect_output(file):
    with contextlib.redirect_stdout(file), contextlib.redirect_stderr(file):
        yield


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def table_row(run: RunSpec, result: TrainResult, config_hash: str, code: str, corpus: str) -> dict:
    m, counts = run.model, param_count(run.model)
    return dict(
        name=run.name, N=counts["total"], N_non_embedding=counts["non_embedding"], D=result.tokens,
        params_N=counts["total"], tokens_D=result.tokens, d_model=m.d_model, n_layers=m.n_layers,
        n_heads=m.n_heads, n_kv_heads=m.n_kv_heads, vocab=m.vocab_size, seq_len=m.seq_len,
        loss=result.loss, loss_curve=json.dumps(result.loss_curve), wall_time_s=result.wall_time_s,
        tokens_per_s=result.tokens_per_s, mfu=result.mfu, device=result.device,
        dtype=jnp.dtype(m.dtype).name, seed=run.train.seed, config_hash=config_hash, code_version=code,
        library_versions=library_versions(), corpus=corpus, learning_rate=run.train.learning_rate,
        lr_base_width=run.train.lr_base_width,
    )


def code_version() -> str:
    """The package version, plus `git describe` when running from a git checkout."""
    try:
        described = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                                   cwd=Path(__file__).parent, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    return f"{__version__}+{described}" if described else __version__


def _model_fields(table: dict, where: str, path: Path) -> dict:
    _check_keys(table, MODEL_FIELDS, where, path)
    table = dict(table)
    if "dtype" in table:
        if table["dtype"] not in DTYPES:
            raise ConfigError(Diagnostic(f"{where}: unknown dtype {table['dtype']!r}", filename=str(path),
                                         hint=f"use one of {', '.join(DTYPES)}"))
        table["dtype"] = DTYPES[table["dtype"]]
    return table


def _check_keys(table: dict, allowed: set[str], where: str, path: Path) -> None:
    problems = []
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(sorted(allowed))}"
            problems.append(Diagnostic(f"unknown key {key!r} in {where}", filename=str(path), hint=hint))
    if problems:
        raise ConfigError(problems)
