"""`infscale-dsl runs import TRACKER SOURCE -o TABLE`: a runs table read from an experiment
tracker (TensorBoard event files, an MLflow store, W&B run folders or exports), under the names
the user gives: `--param n_params=N --metric val/loss=loss`."""
from __future__ import annotations

import argparse
import sys
from collections import Counter

from .arguments import HelpFormatter, RawDescriptionHelpFormatter, add_quiet

EXAMPLES = """examples:
  infscale-dsl runs import tensorboard runs/ --param N --param D --metric val/loss=loss -o runs.csv
  infscale-dsl runs import mlflow sqlite:///mlflow.db --experiment sweep --param n_params=N \\
      --param tokens=D --metric val_loss=loss -o runs.parquet
  infscale-dsl runs import wandb wandb/ --param model.n_params=N --metric val/loss=loss --history -o curves.csv
  infscale-dsl runs import wandb export.csv --param n_params=N --metric val/loss=loss -o -"""


def register(subparsers) -> None:
    runs = subparsers.add_parser("runs", help="import runs tables from experiment trackers",
                                 description="Runs tables from where runs live.")
    actions = runs.add_subparsers(dest="action", required=True, metavar="ACTION")
    importer = actions.add_parser(
        "import", help="read runs from TensorBoard, MLflow or W&B into a runs table",
        description="Read runs from an experiment tracker into a runs table: one row per run with "
                    "each metric's final value, or one row per logged step with --history. Runs "
                    "without a named param or metric, with a value that is not a number, or that "
                    "did not finish, are left out and listed with the reason. A name that no run "
                    "logs is an error that lists the names they do log.",
        epilog=EXAMPLES, formatter_class=RawDescriptionHelpFormatter)
    trackers = importer.add_subparsers(dest="tracker", required=True, metavar="TRACKER")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-o", "--output", required=True,
                        help="runs table to write: .csv or .parquet, or - for CSV on standard output")
    common.add_argument("--metric", type=mapping, action="append", required=True, metavar="NAME[=COLUMN]",
                        help="a logged metric (a TensorBoard tag, an MLflow or W&B metric key) and the column it fills; repeat for more")
    common.add_argument("--param", type=mapping, action="append", default=[], metavar="NAME[=COLUMN]",
                        help="a numeric hyperparameter and the column it fills; repeat for more (default: none)")
    common.add_argument("--category", type=mapping, action="append", default=[], metavar="NAME[=COLUMN]",
                        help="a hyperparameter kept as text (a `data x : category` column) (default: none)")
    common.add_argument("--history", action="store_true",
                        help="every logged step, one row each with a step column (default: each metric's final value)")
    common.add_argument("--name-pattern", metavar="REGEX",
                        help="read params from the run names: each named group is a param, "
                             "e.g. 'n(?P<N>[0-9]+)_d(?P<D>[0-9]+)' (default: none)")
    add_quiet(common, "no wrote line")
    unfinished = argparse.ArgumentParser(add_help=False)
    unfinished.add_argument("--include-unfinished", action="store_true",
                            help="keep runs that failed, crashed or still run (left out by default)")

    tensorboard = trackers.add_parser(
        "tensorboard", parents=[common], formatter_class=HelpFormatter,
        help="TensorBoard event files (needs the [tensorboard] extra)",
        description="Each folder under LOGDIR is one run (LOGDIR itself, if it holds event files). "
                    "Tags in a run's subfolders read as SUBFOLDER/TAG; params come from the hparams plugin.")
    tensorboard.add_argument("source", metavar="LOGDIR", help="TensorBoard's --logdir")
    mlflow = trackers.add_parser(
        "mlflow", parents=[common, unfinished], formatter_class=HelpFormatter,
        help="an MLflow tracking store (needs the [mlflow] extra)",
        description="Runs of an MLflow store: params, and metrics' latest values or whole histories.")
    mlflow.add_argument("source", metavar="TRACKING_URI",
                        help="sqlite:///mlflow.db, file:///path/mlruns or a server's http(s) URL")
    mlflow.add_argument("--experiment", action="append", default=[], metavar="NAME",
                        help="an experiment to read; repeat for more (default: every active experiment)")
    mlflow.add_argument("--filter", default="", metavar="SEARCH",
                        help="MLflow's run search filter, e.g. \"params.optimizer = 'adam'\" (default: every run)")
    wandb = trackers.add_parser(
        "wandb", parents=[common, unfinished], formatter_class=HelpFormatter,
        help="W&B run folders (needs the [wandb] extra) or an export",
        description="W&B runs: the wandb/ folder, one run's folder or .wandb file (config as params, "
                    "summary as final values), or an export (.csv, .json, .jsonl, .parquet): a runs "
                    "table, or histories with a _step column.")
    wandb.add_argument("source", metavar="PATH", help="wandb/ folder, run folder, .wandb file or export")
    wandb.add_argument("--run-column", default="Name",
                       help="the export's column that names the runs (default: Name, as W&B exports it)")
    for parser in (tensorboard, mlflow, wandb):
        parser.set_defaults(func=run)


def mapping(text: str) -> tuple[str, str]:
    """NAME=COLUMN, or NAME for a column of the same name; the last '=' splits."""
    name, _, column = text.rpartition("=") if "=" in text else (text, "", text)
    if not name or not column:
        raise argparse.ArgumentTypeError(f"expected NAME or NAME=COLUMN, not {text!r}")
    return name, column


def run(args: argparse.Namespace) -> int:
    # imported here so that `infscale-dsl --help` loads no tracker library
    from ..errors import ConfigError, Diagnostic
    from ..files import TABLE_SUFFIXES, check_output_file
    from ..tables import write_table
    from .. import trackers

    if args.output != "-":
        check_output_file(args.output, TABLE_SUFFIXES, "runs table")  # before a long read
    named = Counter(name for name, _ in [*args.param, *args.category, *args.metric])
    repeated = [name for name, count in named.items() if count > 1]
    if repeated:  # a dict would keep the last of them without a word
        raise ConfigError([Diagnostic(f"{name!r} is named {named[name]} times", hint="name each param and metric once")
                           for name in repeated])
    columns = trackers.Columns(metrics=dict(args.metric), params=dict(args.param), categories=dict(args.category))
    options = {"history": args.history, "name_pattern": args.name_pattern}
    if args.tracker == "tensorboard":
        imported = trackers.read_tensorboard(args.source, columns, **options)
    elif args.tracker == "mlflow":
        imported = trackers.read_mlflow(args.source, columns, experiments=tuple(args.experiment),
                                        filter_string=args.filter, include_unfinished=args.include_unfinished,
                                        **options)
    else:
        imported = trackers.read_wandb(args.source, columns, run_column=args.run_column,
                                       include_unfinished=args.include_unfinished, **options)
    write_table(imported.table, args.output)
    if args.output == "-":
        print(imported.report(args.source), file=sys.stderr)  # standard output holds the table
    else:
        print(imported.report(args.source))
        if not args.quiet:
            print(f"wrote {args.output}")
    return 0
