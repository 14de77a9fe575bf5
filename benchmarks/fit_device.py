"""Where a GPU pays for a fit: the same learning-curves fit with `--device cpu` and `--device gpu`,
each from the shell (a new process), on tables of growing size.

    python benchmarks/fit_device.py                       # 4 sizes, both devices (a GPU machine)
    python benchmarks/fit_device.py --sizes 8x10 --devices cpu --draws 100    # a quick CPU check
    python benchmarks/fit_device.py --devices gpu,cpu --limit-s 120           # a GPU window

A fit that runs past --limit-s is stopped and reported as such: on 2 CPU cores 800 rows took
54 s, and the time grows with the rows, so the largest tables are for the GPU.

`fit` runs on the CPU by default (README, Fitting): a table of tens to thousands of runs is
small, and NUTS waits on the device at every step of its trees. Tables of learning curves
grow as runs x checkpoints, and somewhere the GPU's arithmetic should win. Each size is a
table of R runs x C checkpoints simulated from the Chinchilla law with an offset per run
(`curves by run`); each device fits it twice with the same program cache: first (compiling)
and again (programs read back). Printed per row: wall seconds, the sampler's gradient
evaluations and the gate. A device JAX does not have here prints why and is skipped.

On the lent GPU machine the fitting stack lacks lark and arviz: carry their wheels as the
device README says (lark, arviz==0.23.4, h5netcdf, xarray-einstats).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SPEC = "curves by run\nloss ~ E + A/N^alpha + B/D^beta\n"


def curves_table(runs: int, checkpoints: int, seed: int = 0) -> pd.DataFrame:
    """`runs` runs from 1e7 to 1e9 parameters, each at `checkpoints` points of its 20 N tokens;
    log loss = log law + the run's offset (sd 0.03) + noise (sd 0.005)."""
    rng = np.random.default_rng(seed)
    n = np.repeat(np.geomspace(1e7, 1e9, runs), checkpoints)  # (runs * checkpoints,)
    fraction = np.tile(np.linspace(0.1, 1.0, checkpoints), runs)
    d = 20 * n * fraction
    offset = np.repeat(rng.normal(0.0, 0.03, runs), checkpoints)
    loss = (1.8 + 400 / n ** 0.34 + 2000 / d ** 0.37) * np.exp(offset + rng.normal(0.0, 0.005, n.size))
    return pd.DataFrame({"run": np.repeat(np.arange(runs), checkpoints), "N": n, "D": d, "loss": loss})


def fit_once(folder: Path, table: Path, device: str, cache: Path, draws: int, limit_s: float) -> dict:
    """One `infscale-dsl fit` in a new process: its wall time and what summary.json says."""
    out = folder / f"fit-{device}-{time.monotonic_ns()}"
    argv = [sys.executable, "-m", "infscale_dsl", "fit", str(folder / "curves.law"), str(table), "-o", str(out),
            "-q", "--device", device, "--warmup", str(draws), "--draws", str(draws)]
    env = os.environ | {"INFSCALE_DSL_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=limit_s)
    except subprocess.TimeoutExpired:
        return {"error": f"stopped after {limit_s:g} s (--limit-s)"}
    wall = time.perf_counter() - started
    if done.returncode == 2:  # bad input: here, no such device
        return {"error": done.stderr.strip().splitlines()[0]}
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {"wall": wall, "gradients": summary["sampler"]["gradients"], "device": summary["sampler"]["device"],
            "ok": summary["diagnostics"]["ok"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16x20,64x50,128x100,256x200",
                        help="tables as RUNSxCHECKPOINTS, comma-separated (default: %(default)s)")
    parser.add_argument("--devices", default="cpu,gpu", help="comma-separated (default: %(default)s)")
    parser.add_argument("--draws", type=int, default=500, help="warm-up steps and draws per chain (default 500)")
    parser.add_argument("--limit-s", type=float, default=600, help="most seconds one fit may take (default 600)")
    args = parser.parse_args()
    print(f"{'rows':>7} {'device':>6} {'first s':>8} {'again s':>8} {'gradients':>10}  gate")
    with tempfile.TemporaryDirectory(prefix="fit-device-") as temp:
        folder = Path(temp)
        (folder / "curves.law").write_text(SPEC)
        for size in args.sizes.split(","):
            runs, checkpoints = (int(x) for x in size.lower().split("x"))
            table = folder / f"curves_{size}.parquet"
            curves_table(runs, checkpoints).to_parquet(table)
            for device in args.devices.split(","):
                cache = folder / f"cache-{device}"  # one per device: its programs, compiled for it
                first = fit_once(folder, table, device, cache, args.draws, args.limit_s)
                if "error" in first:
                    print(f"{runs * checkpoints:>7} {device:>6}  skipped: {first['error']}")
                    continue
                again = fit_once(folder, table, device, cache, args.draws, args.limit_s)
                if "error" in again:
                    print(f"{runs * checkpoints:>7} {device:>6} {first['wall']:8.1f}  again: {again['error']}")
                    continue
                gate = "ok" if again["ok"] else "FAILED"
                print(f"{runs * checkpoints:>7} {again['device']:>6} {first['wall']:8.1f} {again['wall']:8.1f} "
                      f"{again['gradients']:>10}  {gate}", flush=True)


if __name__ == "__main__":
    main()
