"""One window of the GPU shape sweep: train the runs of examples/sweeps/gpu_shape.toml that no
earlier window finished, cheapest first, as many as fit the time limit.

    python benchmarks/gpu_sweep.py --out OUT --budget-s 300     # one GPU window (gpu_checks.sh runs this)
    python benchmarks/gpu_sweep.py --tiny --out /tmp/sweep       # the same steps on a CPU, tiny models (< 1 min)

Runs train through the project's sweep code (`infscale_dsl.nn.sweep.train_run`: the same
trainer, table rows and config hashes as `infscale-dsl sweep`). After every finished run this
window's table, OUT/gpu_shape_window.parquet, is rewritten atomically, so a window stopped at its
limit keeps every run it finished. (One table, not a part file per run: a lent GPU machine returns
at most 8 files.) Runs' own parts and logs stay in a work folder beside it (--work).

A run is started only if it is predicted to end before the time limit (`Pace`). A run that would
not fit is left for the next window.

Between windows, commit each window's table into the windows folder, then merge them:

    cp OUT/gpu_shape_window.parquet examples/data/gpu_shape_windows/h200_<date>_<n>.parquet
    infscale-dsl sweep --merge examples/data/gpu_shape_windows/*.parquet -o examples/data/gpu_shape_runs.parquet

A later window skips every run whose config_hash is in a table of that folder.
"""
from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

import jax  # noqa: E402
import pandas as pd  # noqa: E402

from infscale_dsl.files import atomic_write  # noqa: E402
from infscale_dsl.nn import runs  # noqa: E402
from infscale_dsl.nn.sweep import RunSpec, cached_corpus, code_version, load_sweep, train_run  # noqa: E402
from infscale_dsl.nn.train import flops_per_token, library_versions, peak_flops  # noqa: E402

SWEEP = REPO / "examples" / "sweeps" / "gpu_shape.toml"
TINY_SWEEP = REPO / "examples" / "sweeps" / "gpu_shape_tiny.toml"
WINDOWS = REPO / "examples" / "data" / "gpu_shape_windows"
WINDOW_TABLE = "gpu_shape_window.parquet"


def training_flops(run: RunSpec) -> float:
    return flops_per_token(run.model) * run.train.tokens


class Pace:
    """A run's predicted wall time: a fixed cost (compiling, evaluating: the most that any run
    finished here paid) plus its training FLOPs at the training rate of the largest finished run,
    and a fifth more for safety (runs go cheapest first, and deeper shapes of a size run slower).
    Before the first run: 30 s, and a quarter of the device's peak (1 GFLOP/s on a CPU)."""

    SAFETY = 1.2

    def __init__(self, devices, dtype):
        peak = peak_flops(devices, dtype)
        self.rate = 1e9 if math.isnan(peak) else peak / 4  # training FLOP/s
        self.fixed_s = 30.0
        self.fixed_seen = []  # wall time less training time of each finished run
        self.largest = 0.0  # training FLOPs of the run the rate comes from

    def predict(self, run: RunSpec) -> float:
        return self.SAFETY * (self.fixed_s + training_flops(run) / self.rate)

    def learn(self, run: RunSpec, row: dict) -> None:
        training_s = row["tokens_D"] / row["tokens_per_s"]  # steps after the first, which compiles
        if not math.isfinite(training_s):  # too few steps to time
            return
        self.fixed_seen.append(row["wall_time_s"] - training_s)
        self.fixed_s = max(self.fixed_seen)
        if training_flops(run) >= self.largest:
            self.largest = training_flops(run)
            self.rate = flops_per_token(run.model) * row["tokens_per_s"]


def finished_before(windows: Path) -> pd.DataFrame:
    """The runs of every table in the windows folder, in the runs table's columns."""
    tables = [runs.read_table(path) for path in sorted(windows.glob("*.parquet"))] if windows.is_dir() else []
    return runs.as_table(pd.concat(tables).to_dict("records") if tables else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help=f"train {TINY_SWEEP.name} instead: tiny models, seconds on a CPU")
    parser.add_argument("--sweep", type=Path, help=f"sweep file (default {SWEEP.relative_to(REPO)})")
    parser.add_argument("--windows", type=Path, default=WINDOWS,
                        help="folder of earlier windows' tables: their runs are skipped")
    parser.add_argument("--out", type=Path, required=True, help=f"folder for this window's table ({WINDOW_TABLE})")
    parser.add_argument("--work", type=Path, help="folder for the runs' parts and logs (default: a new temporary one)")
    parser.add_argument("--budget-s", type=float, default=math.inf, help="start no run predicted to end after this")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    deadline = started + args.budget_s

    sweep_path = args.sweep or (TINY_SWEEP if args.tiny else SWEEP)
    sweep = load_sweep(sweep_path)
    devices = jax.local_devices()
    print(f"{sweep_path.name}: {len(sweep.runs)} runs; {len(devices)} x {devices[0].device_kind}; {library_versions()}")
    earlier = finished_before(args.windows)
    done = set(earlier["config_hash"])
    todo = sorted((run for run in sweep.runs if sweep.config_hash(run) not in done), key=training_flops)
    print(f"{len(sweep.runs) - len(todo)} finished in earlier windows ({args.windows}), {len(todo)} to train")
    if not todo:
        return 0

    corpus = cached_corpus(sweep.corpus, sweep.eval_fraction)  # train_run reuses this one
    print(f"corpus {corpus.description}; the largest run reads {todo[-1].train.tokens / corpus.train.size:.2f} "
          f"times its {corpus.train.size:,} training bytes")
    if (earlier["corpus"].dropna() != corpus.description).any():
        print(f"WARNING: earlier windows trained on other text ({', '.join(earlier['corpus'].dropna().unique())}): "
              "this machine's Python packages differ, so its runs are not comparable with theirs")

    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_sweep_"))
    work_table = work / WINDOW_TABLE
    table = runs.as_table([])  # this window's runs
    pace = Pace(devices, sweep.runs[0].model.dtype)
    code, trained, failed = code_version(), 0, 0
    for number, run in enumerate(todo, start=1):
        predicted, left = pace.predict(run), deadline - time.perf_counter()
        if predicted > left:
            print(f"stop: {run.name} needs about {predicted:.0f} s ({training_flops(run):.2e} FLOPs at "
                  f"{pace.rate / 1e12:.3g} TFLOP/s + {pace.fixed_s:.0f} s), {max(left, 0):.0f} s are left; "
                  f"it and {len(todo) - number} more wait for the next window")
            break
        print(f"run {number}/{len(todo)} {run.name} (predicted {predicted:.0f} s) ...", flush=True)
        try:
            row = train_run(sweep, run, work_table, code)
        except Exception as error:  # the run's log has the traceback; the other runs go on
            failed += 1
            log = runs.logs_dir(work_table) / f"{sweep.config_hash(run)}.log"
            print(f"  FAILED: {type(error).__name__}: {error}\n  its log, {log}:\n{log.read_text()[-3000:]}")
            continue
        table = runs.add_run(work_table, table, row)
        atomic_write(args.out / WINDOW_TABLE, lambda temporary: shutil.copyfile(work_table, temporary))
        trained += 1
        pace.learn(run, row)
        mfu = "n/a" if math.isnan(row["mfu"]) else f"{row['mfu']:.1%}"
        print(f"  loss {row['loss']:.4f} in {row['wall_time_s']:.0f} s, {row['tokens_per_s']:,.0f} tokens/s, "
              f"MFU {mfu}; saved to {args.out / WINDOW_TABLE}", flush=True)
    print(f"window: {trained} runs trained, {failed} failed, {len(todo) - trained - failed} left, "
          f"{time.perf_counter() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
