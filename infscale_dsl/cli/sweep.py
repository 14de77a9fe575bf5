"""`infscale-dsl sweep`: train the runs of a sweep file into a runs table, or merge part tables."""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from ..errors import ConfigError, Diagnostic
from ..executors import BACKENDS, SlurmOptions, make_executor  # standard library only: --help stays quick
from .arguments import RawDescriptionHelpFormatter, add_quiet, nonnegative_float, positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep", help="train the runs of a sweep file into a runs table (resumable)",
        description="Train every run of a sweep file not yet in the table; each finished run is "
                    "saved at once, so an interrupted sweep resumes where it stopped. Runs train "
                    "here one by one, in local processes (--workers), on Ray (--on ray) or as a "
                    "SLURM job array (--on slurm). Or split a sweep over machines with --shard i/n, "
                    "then join the parts with --merge.",
        epilog="example: infscale-dsl sweep examples/sweeps/cpu_small.toml -o runs.parquet\n"
               "         infscale-dsl sweep sweep.toml -o runs.parquet --on ray --address ray://head:10001\n"
               "         infscale-dsl sweep sweep.toml -o runs.parquet --on slurm --partition gpu --gpus-per-run 1\n"
               "         infscale-dsl sweep --merge runs-0.parquet runs-1.parquet -o runs.parquet",
        formatter_class=RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", type=Path, help="sweep file (.toml)")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="runs table to write (.parquet or .csv); finished runs are kept in <output>.parts/, "
                             "each run's log in <output>.logs/, the learning curves (one row per checkpoint) "
                             "in <output stem>_curves.parquet or .csv")
    parser.add_argument("--shard", default="0/1", metavar="i/n",
                        help="run only every n-th run starting at the i-th (0-based), e.g. 1/4")
    parser.add_argument("--merge", nargs="+", type=Path, metavar="TABLE",
                        help="instead of training, merge these runs tables (one per shard) into --output "
                             "(default: train)")
    add_quiet(parser, "no progress bars or per-run lines")
    where = parser.add_argument_group("where runs train")
    where.add_argument("--on", choices=BACKENDS, default="local",
                       help="local (default), ray (needs the [ray] extra), slurm (needs [slurm]: submitit), "
                            "slurm-local (the SLURM path through submitit, run on this machine)")
    where.add_argument("--workers", type=positive_int, default=1,
                       help="runs at once: local processes, CPUs of a local Ray instance, or slurm-local jobs")
    where.add_argument("--address", help="Ray cluster to join, e.g. ray://head:10001 or auto (default: a local instance)")
    where.add_argument("--cpus-per-run", type=nonnegative_float, help="CPUs each run needs (default: [resources] cpus, or 1)")
    where.add_argument("--gpus-per-run", type=nonnegative_float, help="GPUs each run needs (default: [resources] gpus, or 0)")
    where.add_argument("--partition", help="SLURM partition (default: [slurm] partition)")
    where.add_argument("--time-min", type=positive_int, help="SLURM time limit per run in minutes (default: [slurm] time_min, or 60)")
    parser.set_defaults(func=run)


def run(args) -> int:
    # imported here so `infscale-dsl --help` does not start JAX
    from ..files import check_output_file
    from ..nn import runs

    check_output_file(args.output, runs.SUFFIXES, "runs table")  # before JAX starts, and long before training
    from ..nn.sweep import RunsFailed, load_sweep, parse_shard, run_sweep
    from ..progress import show_progress

    log = (lambda message: None) if args.quiet else print
    if args.merge:
        table = runs.merge_tables(args.merge, args.output)
        log(f"merged {len(args.merge)} tables: {len(table)} runs in {args.output}")
        return 0
    if args.config is None:
        raise ConfigError(Diagnostic("no sweep file given", hint="infscale-dsl sweep SWEEP.toml -o runs.parquet"))
    if args.workers < 1:
        raise ConfigError(Diagnostic(f"--workers {args.workers} is not a positive count", hint="e.g. --workers 2"))
    sweep, slurm = placement(args, load_sweep(args.config))
    with make_executor(args.on, args.workers, args.address, slurm) as executor:
        try:
            trained, skipped = run_sweep(sweep, args.output, parse_shard(args.shard),
                                         show_progress=show_progress(args.quiet), log=log, executor=executor)
        except RunsFailed as error:
            print(error, file=sys.stderr)
            return 1
    log(f"{args.output}: {trained} run{'s' * (trained != 1)} trained, {skipped} already finished")
    return 0


def placement(args, sweep):
    """The sweep with its [resources] and [slurm] overridden by the options, and submitit's options
    (its job files in <output>.submitit/, which like -o must be on a filesystem the nodes share)."""
    resources = {k: v for k, v in (("cpus", args.cpus_per_run), ("gpus", args.gpus_per_run)) if v is not None}
    slurm = {k: v for k, v in (("partition", args.partition), ("time_min", args.time_min)) if v is not None}
    sweep = replace(sweep, resources=replace(sweep.resources, **resources), slurm=sweep.slurm | slurm)
    folder = args.output.with_name(args.output.name + ".submitit").absolute()
    return sweep, SlurmOptions(folder, **sweep.slurm)
