"""`infscale-dsl latency SOURCE -o OUT`: time prefill and per-token decode of model shapes.

SOURCE is a TOML config of shapes and settings (see infscale_dsl/latency/shapes.py) or a runs
table (.parquet or .csv of a training sweep, one shape per distinct d_model, n_layers, n_heads,
n_kv_heads, vocab). Options given on the command line override the config's [settings].
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ..errors import ConfigError, DataError, Diagnostic
from ..files import check_output_file
from ..latency import BACKENDS, high_cv_warning
from ..latency.shapes import DTYPES, BenchSettings, load_config, shapes_from_runs
from .arguments import RawDescriptionHelpFormatter, add_quiet, count, positive_int

TABLE_SUFFIXES = (".parquet", ".csv")
PRINTED_COLUMNS = ["shape", "d_model", "n_layers", "non_embedding_params", "batch",
                   "ttft_ms", "ttft_cv", "tpot_ms", "tpot_p90_ms", "tpot_cv", "floor_ms", "tpot_over_floor"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "latency", help="time prefill (ttft_ms) and per-token decode (tpot_ms) of model shapes",
        description=__doc__, formatter_class=RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a .toml config of shapes, or a runs table (.parquet/.csv)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the latency table to write (.parquet or .csv)")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="jax",
                        help="jax: layers fused into one lax.scan, decode loop compiled whole (default); "
                             "jax-unfused: the training model's own decode step, layer by layer; "
                             "torch: eager PyTorch, a Python loop per token (needs the torch extra)")
    default = BenchSettings()  # what a config without [settings] gets; "the config's" overrides it
    parser.add_argument("--batch-sizes", type=positive_int, nargs="+", metavar="B",
                        help=f"batch sizes to time (default: the config's, else {list(default.batch_sizes)})")
    parser.add_argument("--prompt-len", type=positive_int, help=f"prompt tokens (default: the config's, else {default.prompt_len})")
    parser.add_argument("--output-len", type=positive_int, help="generated tokens, the first from the prefill "
                                                       f"(default: the config's, else {default.output_len})")
    parser.add_argument("--dtype", choices=DTYPES, help=f"weights and activations (default: the config's, else {default.dtype})")
    parser.add_argument("--repeats", type=positive_int, help=f"timed generations per shape (default: the config's, else {default.repeats})")
    parser.add_argument("--warmup", type=count, help="untimed generations first, the first compiles "
                                                   f"(default: the config's, else {default.warmup})")
    parser.add_argument("--vocab", type=positive_int, help="vocabulary size, for a runs table without a vocab column "
                                                  "(default: the table's vocab column)")
    add_quiet(parser, "no progress bar and no printed table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_output_file(args.output, TABLE_SUFFIXES, "latency table")  # before minutes of timing
    shapes, settings = _read_source(args.source, args.vocab)
    overrides = {key: value for key, value in (
        ("batch_sizes", tuple(args.batch_sizes) if args.batch_sizes else None),
        ("prompt_len", args.prompt_len), ("output_len", args.output_len), ("dtype", args.dtype),
        ("repeats", args.repeats), ("warmup", args.warmup)) if value is not None}
    settings = dataclasses.replace(settings, **overrides)
    problems = settings.problems()
    if problems:
        raise ConfigError([Diagnostic(f"option: {problem}") for problem in problems])

    from ..latency.bench import benchmark  # here: it loads pandas, so `--help` stays quick
    from ..tables import write_frame

    table = benchmark(shapes, settings, backend=args.backend, quiet=args.quiet)
    write_frame(table, args.output)
    if not args.quiet:
        print(f"{table['device'].iloc[0]}, {args.backend} ({table['library_versions'].iloc[0]}), "
              f"{settings.dtype}, prompt {settings.prompt_len}, output {settings.output_len}, "
              f"median of {settings.repeats} after {settings.warmup} warm-up")
        print(table[PRINTED_COLUMNS].to_string(index=False, float_format=lambda x: f"{x:.3g}"))
        print(f"wrote {len(table)} rows to {args.output}")
    for quantity in ("ttft", "tpot"):
        warning = high_cv_warning(list(table["shape"]), list(table[f"{quantity}_cv"]), f"{quantity}_ms")
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
    return 0


def _read_source(source: Path, vocab: int | None):
    if not source.exists():
        raise ConfigError(Diagnostic(f"no such file: {source}", filename=str(source)))
    if source.suffix == ".toml":
        return load_config(source)
    if source.suffix in TABLE_SUFFIXES:
        from ..tables import read_frame

        try:
            runs = read_frame(source)
        except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid and pandas' EmptyDataError among them
            raise DataError(Diagnostic(f"cannot read the runs table ({error})", filename=str(source),
                                       hint="the file is damaged: write it again with `infscale-dsl sweep`")) from None
        return shapes_from_runs(runs, source=str(source), vocab=vocab), BenchSettings()
    raise ConfigError(Diagnostic(f"cannot read shapes from {source}", filename=str(source),
                                 hint="give a .toml config of shapes or a runs table (.parquet or .csv)"))
