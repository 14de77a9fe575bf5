"""`infscale-dsl check SPEC TABLE`: parse a spec, check it against the table, and prepare the data."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check", help="check a .law spec against a data table",
        description="Parse SPEC, resolve its names against TABLE's columns and validate the rows "
                    "each law uses. Prints a summary; exits 2 listing every problem found.",
    )
    parser.add_argument("spec", help="the .law file")
    parser.add_argument("table", help="the data table (.csv or .parquet)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data import describe_rows, prepare, read_table
    from ..language import load_spec

    table = read_table(args.table)
    spec = load_spec(Path(args.spec), columns=table.columns)
    prepared = prepare(spec, table, filename=args.table)
    n_laws = len(spec.laws)
    summary = "; ".join(describe_rows(prepared).splitlines())
    if spec.curves is not None:
        summary += f" in {len(prepared.levels[spec.curves.column])} runs (curves by {spec.curves.column})"
    print(f"ok: {args.spec}: {n_laws} law{'s' if n_laws != 1 else ''}, "
          f"{len(spec.parameters)} parameters; {summary}")
    return 0
