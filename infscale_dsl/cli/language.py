"""`infscale-dsl check SPEC TABLE`: parse a spec, check it against the table, and prepare the data."""
from __future__ import annotations

import argparse
from pathlib import Path

from .arguments import HelpFormatter, add_quiet


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check", help="check a .law spec against a data table", formatter_class=HelpFormatter,
        description="Parse SPEC, resolve its names against TABLE's columns and validate the rows "
                    "each law uses. Prints a summary; exits 2 listing every problem found.",
    )
    parser.add_argument("spec", help="the .law file")
    parser.add_argument("table", help="the data table (.csv or .parquet; - reads standard input, CSV or Parquet)")
    add_quiet(parser, "print nothing when the spec and table are fine (the exit code says so)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..model.data import describe_rows, prepare
    from ..language import load_spec
    from ..tables import read_table

    table = read_table(args.table)
    spec = load_spec(Path(args.spec), columns=table.columns)
    prepared = prepare(spec, table, filename=args.table)
    if args.quiet:
        return 0
    n_laws = len(spec.laws)
    summary = "; ".join(describe_rows(prepared).splitlines())
    if spec.curves is not None:
        summary += f" in {len(prepared.levels[spec.curves.column])} runs ({spec.curves_text()})"
    print(f"ok: {args.spec}: {n_laws} law{'s' if n_laws != 1 else ''}, "
          f"{len(spec.parameters)} parameters; {summary}")
    # every name that is not a column is a parameter: the list shows a misspelt column at once
    print(f"  parameters: {', '.join(spec.parameters)}")
    return 0
