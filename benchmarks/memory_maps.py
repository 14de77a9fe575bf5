"""Memory maps held by one process that fits many model structures, one after another.

    python benchmarks/memory_maps.py [--fits 12] [--draws 300]

Each fit is Chinchilla's law on a synthetic table of another size bucket (compile.bucket_size),
so each compiles programs of its own, as a backtest over laws or the law corpus does. Printed
after each fit: the process's memory maps (/proc/self/maps; the kernel kills the process with
"LLVM ERROR: Unable to allocate section memory" at vm.max_map_count, 65,530 by default) and the
fit's wall time. Kept for the life of the process, the compiled programs grew the maps by about
3,000 per fit; inference/programs.py's RecentPrograms keeps only recent structures' programs, so
the count should level off after the first few fits. Linux only.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")  # chains in parallel

from infscale_dsl import fit  # noqa: E402
from infscale_dsl.model.compile import bucket_size  # noqa: E402
from infscale_dsl.prediction.simulate import PUBLISHED, published_table  # noqa: E402


def memory_maps() -> int:
    with open("/proc/self/maps") as maps:
        return sum(1 for _ in maps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=12)
    parser.add_argument("--draws", type=int, default=300, help="draws per chain (default 300)")
    args = parser.parse_args()

    spec = PUBLISHED["chinchilla"].spec()
    rows, sizes = 9, []
    while len(sizes) < args.fits:  # one table per size bucket: 9, 11, 13, 15, 17, 21, ...
        sizes.append(rows)
        rows = bucket_size(rows) + 1
    print(f"{'fit':>3} {'rows':>5} {'bucket':>6} {'memory maps':>12} {'wall':>8}")
    print(f"{0:>3} {'':>5} {'':>6} {memory_maps():>12,}")
    for i, rows in enumerate(sizes, start=1):
        table = published_table("chinchilla", rows, seed=i)
        start = time.perf_counter()
        fit(spec, table, draws=args.draws, warmup=args.draws, seed=i, progress=False)
        print(f"{i:>3} {rows:>5} {bucket_size(rows):>6} {memory_maps():>12,} {time.perf_counter() - start:>7.1f}s",
              flush=True)


if __name__ == "__main__":
    main()
