"""`infscale-dsl sweep`: train the runs of a sweep file into a runs table, or merge part tables."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import Diagnostic, LawError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep", help="train the runs of a sweep file into a runs table (resumable)",
        description="Train every run of a sweep file not yet in the table; each finished run is "
                    "saved at once, so an interrupted sweep resumes where it stopped. "
                    "Split a sweep over machines with --shard i/n, then join the parts with --merge.",
        epilog="example: infscale-dsl sweep examples/sweeps/cpu_small.toml -o runs.parquet\n"
               "         infscale-dsl sweep --merge runs-0.parquet runs-1.parquet -o runs.parquet",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", type=Path, help="sweep file (.toml)")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="runs table to write (.parquet or .csv); finished runs are kept in <output>.parts/")
    parser.add_argument("--shard", default="0/1", metavar="i/n",
                        help="run only every n-th run starting at the i-th (0-based), e.g. 1/4")
    parser.add_argument("--merge", nargs="+", type=Path, metavar="TABLE",
                        help="instead of training, merge these runs tables (one per shard) into --output")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or per-run lines")
    parser.set_defaults(func=run)


def run(args) -> int:
    # imported here so `infscale-dsl --help` does not start JAX
    from ..files import check_output_file
    from ..nn import runs

    check_output_file(args.output, runs.SUFFIXES, "runs table")  # before JAX starts, and long before training
    from ..nn.sweep import load_sweep, parse_shard, progress_enabled, run_sweep

    log = (lambda message: None) if args.quiet else print
    if args.merge:
        table = runs.merge_tables(args.merge, args.output)
        log(f"merged {len(args.merge)} tables: {len(table)} runs in {args.output}")
        return 0
    if args.config is None:
        raise LawError(Diagnostic("no sweep file given", hint="infscale-dsl sweep SWEEP.toml -o runs.parquet"))
    sweep = load_sweep(args.config)
    trained, skipped = run_sweep(sweep, args.output, parse_shard(args.shard),
                                 show_progress=progress_enabled(args.quiet), log=log)
    log(f"{args.output}: {trained} runs trained, {skipped} already finished")
    return 0
