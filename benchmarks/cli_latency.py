"""How long small jobs take from the shell: each command is run as a user runs it (a new
process), several times, and its median wall time is compared with `python -c pass` measured in
the same run and with the targets of issue 12.

    python benchmarks/cli_latency.py [--repeats 5] [--fit-repeats 3]

The first fit runs with an empty compilation cache (a fresh $INFSCALE_DSL_CACHE), the repeated
fits with the cache it left; "fit, a row fewer" fits the table less its last row with that
cache (a table in the same size bucket reuses the stored programs: compile.bucket_size);
`predict` reads the fit folder the first fit wrote. Beside the wall
time, the CPU time (user + system) the command used: on a shared machine it moves less than
the wall time does.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SPEC = "models/chinchilla.law"
RUNS = "examples/data/cpu_small_runs.parquet"
CLI = [sys.executable, "-m", "infscale_dsl"]

# command label -> target in seconds (issue 12)
TARGETS = {"--help": 0.5, "check": 0.5, "show (no table)": 1.0, "predict 10 rows": 2.0,
           "fit, cache warm": 4.0, "fit, first": 15.0}


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one process; a failed command stops the benchmark."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median_time(argv: list[str], env: dict[str, str], repeats: int) -> tuple[float, float]:
    """The median wall time of `repeats` runs, and the median CPU time."""
    runs = [timed(argv, env) for _ in range(repeats)]
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each quick command (default 5)")
    parser.add_argument("--fit-repeats", type=int, default=3, help="runs of the fit with the cache warm (default 3)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cli-latency-") as temp:
        temp = Path(temp)
        env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {
            "INFSCALE_DSL_CACHE": str(temp / "cache"), "PYTHONPATH": str(ROOT)}
        fit_argv = CLI + ["fit", SPEC, RUNS, "-o", str(temp / "fit"), "-q"]
        candidates = pd.DataFrame({"N": np.geomspace(1e5, 1e7, 10), "D": np.geomspace(1e7, 1e9, 10)})
        candidates.to_csv(temp / "candidates.csv", index=False)

        times = {"python -c pass": median_time([sys.executable, "-c", "pass"], env, args.repeats)}
        times["--help"] = median_time(CLI + ["--help"], env, args.repeats)
        times["check"] = median_time(CLI + ["check", SPEC, RUNS], env, args.repeats)
        times["show (no table)"] = median_time(CLI + ["show", SPEC], env, args.repeats)
        times["fit, first"] = timed(fit_argv, env)  # empty cache: compiles everything
        times["fit, cache warm"] = median_time(fit_argv, env, args.fit_repeats)
        pd.read_parquet(ROOT / RUNS).iloc[:-1].to_parquet(temp / "fewer.parquet")
        fewer_argv = CLI + ["fit", SPEC, str(temp / "fewer.parquet"), "-o", str(temp / "fewer"), "-q"]
        times["fit, a row fewer"] = median_time(fewer_argv, env, args.fit_repeats)
        predict_argv = CLI + ["predict", str(temp / "fit"), str(temp / "candidates.csv"), "-o", str(temp / "p.csv")]
        times["predict 10 rows"] = median_time(predict_argv, env, args.repeats)

    baseline = times["python -c pass"][0]
    print(f"{date.today()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"median of {args.repeats} runs ({args.fit_repeats} for the warm fit, 1 for the first)")
    print(f"{'command':<18} {'wall s':>7} {'x python -c pass':>17} {'CPU s':>7} {'target':>7}  met")
    for label, (wall, cpu) in times.items():
        target = TARGETS.get(label)
        met = "" if target is None else ("yes" if wall < target else "no")
        shown = "" if target is None else f"< {target:g}"
        print(f"{label:<18} {wall:7.2f} {wall / baseline:17.1f} {cpu:7.2f} {shown:>7}  {met}")


if __name__ == "__main__":
    main()
