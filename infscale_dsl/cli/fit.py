"""`infscale-dsl fit`, `predict` and `show`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .arguments import (STDIO, HelpFormatter, add_quiet, count, open_probability, positive_float,
                        positive_int, table_name)


def register(subparsers) -> None:
    fit = subparsers.add_parser("fit", help="fit a .law spec to a table of runs", formatter_class=HelpFormatter,
                                description="Fit a .law spec to a table (CSV or Parquet) and "
                                            "write the posterior and its summary to a folder.")
    fit.add_argument("spec", help=".law file")
    fit.add_argument("table", help="runs table, .csv or .parquet (- reads standard input, CSV or Parquet)")
    fit.add_argument("-o", "--output", default="fit", help="fit folder to write")
    fit.add_argument("--where", help="fit only the rows matching this pandas query, "
                                     "e.g. \"epoch_excluded_outlier == 0\" (default: every row)")
    add_fit_options(fit)
    fit.add_argument("--strict", action="store_true",
                     help="exit 1 if the fit fails its diagnostics (R-hat, ESS, divergences, misfit)")
    fit.set_defaults(func=run_fit)

    predict = subparsers.add_parser("predict", help="predict a table of candidates from a fit",
                                    formatter_class=HelpFormatter,
                                    description="Write TABLE with {response}_median, _q05, _q95 "
                                                "(noise included) and _law_median per response. "
                                                "Several fit folders (NUTS fits of different laws to "
                                                "one table) give their predictions stacked: each "
                                                "law's draws in proportion to its PSIS-LOO stacking "
                                                "weight, printed to standard error.")
    predict.add_argument("fit", nargs="+", help="fit folder written by `infscale-dsl fit` (several: stacked)")
    predict.add_argument("table", help="candidates, .csv or .parquet (- reads standard input, CSV or Parquet)")
    predict.add_argument("-o", "--output", required=True,
                         help="output .csv or .parquet (- writes CSV to standard output)")
    predict.add_argument("--seed", type=count, default=0, help="seed of the noise draws")
    add_quiet(predict, "no status line")
    predict.set_defaults(func=run_predict)

    show = subparsers.add_parser("show", help="print the compiled model and the priors used",
                                 formatter_class=HelpFormatter)
    show.add_argument("spec", help=".law file")
    show.add_argument("table", nargs="?", help="runs table: resolves columns and the scales that default "
                                               "priors read (- reads standard input, CSV or Parquet)")
    add_quiet(show, "no note about what a missing table leaves symbolic")
    show.set_defaults(func=run_show)


def add_fit_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that fits (fit, compare, backtest)."""
    parser.add_argument("--method", choices=("nuts", "map"), default="nuts",
                        help="nuts: full posterior; map: robust multi-start point fit")
    parser.add_argument("--chains", type=positive_int, default=4, help="NUTS chains, run in parallel on the CPU cores")
    parser.add_argument("--warmup", type=positive_int, default=500, help="NUTS warm-up steps per chain")
    parser.add_argument("--draws", type=positive_int, default=500,
                        help="draws per chain; more blocks of as many follow while the gate's ESS "
                             "or R-hat is not met, up to --max-draws")
    parser.add_argument("--max-draws", type=positive_int, default=None,
                        help="most draws per chain (default 8 x --draws; --draws to draw exactly that many)")
    parser.add_argument("--seed", type=count, default=0, help="seed of the point fit's starts and of NUTS")
    parser.add_argument("--target-accept", type=open_probability, default=0.99,
                        help="NUTS target acceptance; higher takes smaller steps")
    parser.add_argument("--mass", choices=("auto", "laplace", "adapt"), default="auto",
                        help="NUTS mass matrix: laplace keeps the inverse Hessian at the mode, adapt "
                             "re-estimates it during warm-up; auto keeps laplace unless the "
                             "Laplace metric mixes too slowly in the first quarter of warm-up")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                        help="where JAX fits: cpu leaves any GPU alone (a fit is small and NUTS "
                             "waits on the device at every step); gpu needs one, chains vectorised on it")
    parser.add_argument("--loss", choices=("huber", "studentt"), default="huber",
                        help="robust loss of the point fit")
    parser.add_argument("--delta", type=positive_float, default=1e-3, help="Huber delta on log residuals")
    add_quiet(parser, "no progress bar")


def fit_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of `infscale_dsl.inference.fit.fit` from those options. Call it before JAX
    starts: it keeps JAX on the device asked for and asks for one CPU device per chain, so that
    chains run in parallel."""
    from ..api import fit_device, parallel_chains
    from ..errors import ConfigError, Diagnostic

    if args.max_draws is not None and args.max_draws < args.draws:
        raise ConfigError(Diagnostic(f"--max-draws {args.max_draws} is below --draws {args.draws}",
                                     hint="give --max-draws at least --draws"))
    fit_device(args.device)  # worker processes of backtest and compare inherit it
    parallel_chains(args.chains)
    from ..progress import show_progress

    return dict(method=args.method, chains=args.chains, warmup=args.warmup, draws=args.draws,
                max_draws=args.max_draws, seed=args.seed, target_accept=args.target_accept, mass=args.mass, loss=args.loss,
                delta=args.delta, progress=show_progress(args.quiet))


def run_fit(args: argparse.Namespace) -> int:
    from ..posterior.folder import check_output

    check_output(args.output)  # before minutes of fitting, not after
    options = fit_options(args)
    from ..model.data import select_rows
    from ..inference.fit import fit
    from ..language import load_spec
    from ..tables import read_table

    table = read_table(args.table)
    if args.where:
        table = select_rows(table, args.where, table_name(args.table))
    spec = load_spec(Path(args.spec), columns=table.columns)
    result = fit(spec, table, filename=table_name(args.table), **options)
    folder = result.save(args.output)
    print(format_summary(result))
    if not args.quiet:
        print(f"\nwritten: {folder}/ (posterior.nc, summary.json, spec.law, fit.json)")
    return 1 if args.strict and not result.diagnostics["ok"] else 0


def format_summary(result) -> str:
    """The terminal summary: rows used, the parameter table, and a plain verdict."""
    import pandas as pd

    lines = [f"{result.spec.filename}: {result.method} fit"]
    for response, n in result.n_obs.items():
        left = result.left_out.get(response, 0)
        lines.append(f"  {response}: {n} rows" + (f" ({left} left out: {response} missing)" if left else ""))
    lines.append("priors:")
    lines.extend(f"  {name:<12} {text}" for name, text in result.priors.items())
    with pd.option_context("display.float_format", "{:.4g}".format, "display.width", 120):
        lines.append(result.summary().to_string())
    diagnostics = result.diagnostics
    sampler = result.sampler
    if result.method == "nuts" and sampler:
        lines.append(f"NUTS: {sampler['chains']} chains x {sampler['draws']} draws after "
                     f"{sampler['warmup']} warm-up, target acceptance {sampler['target_accept']}, "
                     f"mass matrix {sampler['mass']}")
        if sampler.get("mass_note"):
            lines.append(f"  {sampler['mass_note']}")
    if result.method == "map":
        lines.append(f"robust objective at the optimum: {result.objective:.10g}")
        lines.append("point fit: no posterior, so no R-hat or ESS (use --method nuts for intervals)")
    elif diagnostics["ok"]:
        lines.append(f"diagnostics ok: max R-hat {diagnostics['max_r_hat']:.3f}, "
                     f"min bulk ESS {diagnostics['min_ess_bulk']:.0f}, no divergences")
    else:
        lines.append("DIAGNOSTICS FAILED: do not trust this posterior yet")
        lines.extend(f"  - {problem}" for problem in diagnostics["problems"])
    lines.extend(f"note: {note}" for note in result.checks.get("notes", []))
    return "\n".join(lines)


def run_predict(args: argparse.Namespace) -> int:
    from ..files import TABLE_SUFFIXES, check_output_file

    check_output_file(args.output, TABLE_SUFFIXES, "predictions table", stdout_ok=True)
    from ..posterior.result import FitResult
    from ..prediction.predict import predict, predict_stacked
    from ..tables import read_table, write_table

    results = {folder: FitResult.load(folder) for folder in args.fit}
    table, filename = read_table(args.table), table_name(args.table)
    if len(results) == 1:
        result = next(iter(results.values()))
        frame = predict(result, table, seed=args.seed, filename=filename)
    else:
        frame, weights = predict_stacked(results, table, seed=args.seed, filename=filename)
        for response, by_fit in weights.items():
            print(f"{response}: stacking weights " + ", ".join(f"{name} {w:.2f}" for name, w in by_fit.items()),
                  file=sys.stderr)
    write_table(frame, args.output)
    if not args.quiet and args.output != STDIO:
        print(f"written: {args.output} ({len(frame)} rows)")
    if len(results) == 1 and result.method == "map":
        print("note: a point fit (--method map) has no posterior: the 90 % intervals are the fitted "
              "noise around the point law only, not the law's own uncertainty", file=sys.stderr)
    return 0


def run_show(args: argparse.Namespace) -> int:
    from ..model.compile import compile_spec
    from ..language import load_spec

    if args.table:  # pandas only here: without a table, `show` reads the spec alone
        from ..model.data import prepare
        from ..tables import read_table

        table = read_table(args.table)
        spec = load_spec(Path(args.spec), columns=table.columns)
        compiled = compile_spec(spec, prepare(spec, table, filename=table_name(args.table)))
    else:
        spec = load_spec(Path(args.spec))
        compiled = compile_spec(spec, None)
    print(compiled.describe())
    if not args.table and not args.quiet:
        print("\nno table given: scales of default priors are shown symbolically (y_ref: the "
              "response's median); names not declared with `data` were taken as parameters")
    return 0
