"""`infscale-dsl report`, `recommend`, `compare` and `backtest`: posterior answers to budget
questions (see infscale_dsl/report/)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .arguments import (STDIO, HelpFormatter, add_quiet, count, fraction, fraction_list, positive_float,
                        positive_int, probability, table_name)
from .fit import add_fit_options, fit_options

SHAPE_COLUMNS = ("d_model", "n_layers", "n_heads", "n_kv_heads", "vocab")


def register(subparsers) -> None:
    report = subparsers.add_parser(
        "report", help="risk report for candidate configurations", formatter_class=HelpFormatter,
        description="Per candidate: predictive intervals, P(each target met), expected shortfall, "
                    "extrapolation; the loss-latency frontier and a recommendation; optional "
                    "allocation, lifetime compute and costs. Output by extension: .html, .md, .json.")
    report.add_argument("fit", help="fit folder written by `infscale-dsl fit`")
    report.add_argument("--candidates", help="table of candidate configurations (.csv/.parquet); "
                                             "default: the --latency table; - reads standard input, CSV or Parquet")
    report.add_argument("-o", "--output", default="report.html",
                        help="report file: .html, .md or .json; - writes the JSON to standard output")
    report.add_argument("--flops", type=positive_float, help="also give the compute-optimal allocation at this "
                                                             "budget (default: no allocation)")
    add_decision_options(report)
    report.set_defaults(func=run_report)

    recommend = subparsers.add_parser(
        "recommend", help="what to train under a FLOPs budget", formatter_class=HelpFormatter,
        description="Compute-optimal N and D at --flops with intervals; with shapes (--latency "
                    "table or --candidates), each shape trained on the whole budget, the frontier "
                    "and the recommended shape; with --inference-tokens, the lifetime optimum.")
    recommend.add_argument("fit", help="fit folder written by `infscale-dsl fit`")
    recommend.add_argument("--flops", type=positive_float, required=True, help="training budget C in FLOPs")
    recommend.add_argument("--candidates", help="candidate shapes (.csv/.parquet; - reads standard input, CSV or Parquet) "
                                                "with the N column (default: the --latency table)")
    recommend.add_argument("-o", "--output", help="also write the full report (.html, .md, .json; - writes the "
                                                  "JSON to standard output) (default: none)")
    add_decision_options(recommend)
    recommend.set_defaults(func=run_recommend)

    compare = subparsers.add_parser("compare", help="compare laws by PSIS-LOO", formatter_class=HelpFormatter,
                                    description="Fit each spec to the same table and rank them by PSIS-LOO.")
    compare.add_argument("specs", nargs="+", help=".law files (two or more)")
    compare.add_argument("table", help="runs table, .csv or .parquet (- reads standard input, CSV or Parquet)")
    compare.add_argument("--response", help="response to compare on (default: the first shared one)")
    compare.add_argument("-o", "--output", help="write the comparison table (.csv; - writes it to standard "
                                                "output) (default: none)")
    compare.add_argument("--strict", action="store_true", help="exit 1 if any fit fails its diagnostics")
    add_fit_options(compare)
    compare.set_defaults(func=run_compare)

    backtest = subparsers.add_parser(
        "backtest", help="fit without held-out rows and score their predictions",
        description="Coverage of the 90% intervals and relative error on held-out rows, with the "
                    "coverage the fit itself expects (its held-out runs share its error) and the "
                    "p-value of the coverage seen. Each hold-out is one fit; several fit side by side "
                    "(--workers, --on ray) and are also scored together (pooled).",
        epilog="example: infscale-dsl backtest models/bian2025.law runs.csv --holdout \"N >= 1e9\"\n"
               "         infscale-dsl backtest models/bian2025.law runs.csv --holdout-groups size_group "
               "--holdout-top 0.1,0.2 --workers 2 --min-coverage 0.8",
        formatter_class=HelpFormatter)
    backtest.add_argument("spec", help=".law file")
    backtest.add_argument("table", help="runs table, .csv or .parquet (- reads standard input, CSV or Parquet)")
    backtest.add_argument("--holdout", action="append", default=[],
                          help='rows to hold out, e.g. "N >= 1e9" (repeatable: one backtest each) (default: none)')
    backtest.add_argument("--holdout-groups", metavar="COLUMN",
                          help="hold out each group of COLUMN but the smallest in turn, fitted on the "
                               "groups smaller than it (groups ordered by their median --rank-by) (default: none)")
    backtest.add_argument("--holdout-top", type=fraction_list, metavar="F,F,...",
                          help="hold out the top fraction of rows by --rank-by, e.g. 0.1,0.2: one backtest each (default: none)")
    backtest.add_argument("--rank-by", metavar="COLUMN",
                          help="the column that orders runs by size (default: the column the spec reads as N)")
    backtest.add_argument("--where", help='keep only these rows first, e.g. "in_fit_set_main == 1 or '
                                          'size_group == \'1B\'" (default: every row)')
    backtest.add_argument("--min-coverage", type=probability,
                          help="exit 1 if the 90%% intervals' coverage, pooled over the hold-outs, is below "
                               "this (default: no minimum)")
    backtest.add_argument("-o", "--output", help="write the held-out predictions (.csv/.parquet, a holdout "
                                                 "column first; - writes CSV to standard output) (default: none)")
    backtest.add_argument("--on", choices=("local", "ray"), default="local",
                          help="where the fits run: local or ray")
    backtest.add_argument("--workers", type=positive_int, default=1,
                          help="fits at once: local processes (1: in this process) or a local Ray instance's CPUs")
    backtest.add_argument("--address", help="Ray cluster to join, e.g. ray://head:10001 (default: a local instance)")
    add_fit_options(backtest)
    backtest.set_defaults(func=run_backtest)


def add_decision_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", action="append", default=[],
                        help='a condition on a fitted response, e.g. "loss <= 2.95" (repeatable; default: none)')
    parser.add_argument("--budget", action="append", default=[],
                        help='a condition on another quantity, e.g. "latency <= 20" (repeatable; default: none)')
    parser.add_argument("--latency", help="a latency fit folder or a measured latency table (.csv/.parquet; - reads "
                                          "CSV from standard input) (default: none)")
    parser.add_argument("--latency-column", help="the latency quantity (default: a budget's name, else "
                                                 "latency / tpot_ms / latency_ms)")
    parser.add_argument("--latency-unit", help="unit of the latency quantity, e.g. ms (default: the latency "
                                               "table's unit column, else the column name's suffix: tpot_ms is ms)")
    parser.add_argument("--loss-unit", help="unit of the loss, e.g. nats/token, shown on its axes "
                                            "(default: none, as in the runs table)")
    parser.add_argument("--rule", choices=("min-latency", "min-cost", "max-probability"), default="min-latency",
                        help="how the recommendation picks among the candidates that meet the threshold")
    parser.add_argument("--threshold", type=probability, default=0.9, help="P(all met) a candidate needs")
    parser.add_argument("--max-params", type=positive_float, help="largest N the allocation may choose (default: no cap)")
    parser.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                        help="value of another data variable during allocation (default: the middle of its data, "
                             "a whole number for architecture inputs)")
    parser.add_argument("--n-name", default="N", help="the spec's parameter-count variable")
    parser.add_argument("--d-name", default="D", help="the spec's training-tokens variable")
    parser.add_argument("--inference-tokens", type=positive_float,
                        help="tokens served over the model's life (Sardana et al.) (default: no lifetime section)")
    parser.add_argument("--gpu-hour-price", type=positive_float,
                        help="price of a GPU-hour: turns FLOPs and latency into money (default: no costs)")
    parser.add_argument("--currency", default="USD", help="the currency of --gpu-hour-price, shown with every cost")
    parser.add_argument("--mfu", type=fraction, default=0.4, help="training MFU")
    parser.add_argument("--mfu-from", help="sweep table whose median `mfu` replaces --mfu (default: none)")
    parser.add_argument("--peak-flops", type=positive_float, default=989e12, help="peak FLOP/s per GPU (H100 bf16)")
    parser.add_argument("--requests-per-year", type=positive_float,
                        help="serving requests per year (default: no serving cost)")
    parser.add_argument("--tokens-per-request", type=positive_float, default=256.0, help="output tokens per request")
    parser.add_argument("--years", type=positive_float, default=1.0, help="years of serving in the total cost")
    parser.add_argument("--data", help="the fitted runs table, for the data-against-law plot (default: no such plot)")
    parser.add_argument("--group-column", default="size_group", help="size groups in that plot")
    parser.add_argument("--title", default="Scaling-law risk report", help="the report's title")
    parser.add_argument("--note", action="append", default=[],
                        help="an assumption to state in the report (repeatable; default: none)")
    parser.add_argument("--seed", type=count, default=0, help="seed of the noise draws")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 if the fit (or the latency fit) fails its diagnostics")
    add_quiet(parser, "no written: line")


def decision_inputs(args: argparse.Namespace):
    """Options, the latency fit (if any) and the shapes table (if any) from the arguments."""
    from ..errors import ConfigError, DataError, Diagnostic, listed
    from ..posterior.result import FitResult
    from ..report.build import ReportOptions, candidate_names
    from ..report.conditions import parse_conditions
    from ..report.cost import CostAssumptions
    from ..tables import read_table

    from_stdin = [option for option in ("candidates", "latency", "data", "mfu_from") if getattr(args, option) == STDIO]
    if len(from_stdin) > 1:
        raise ConfigError(Diagnostic(f"{' and '.join('--' + o.replace('_', '-') for o in from_stdin)} both read "
                                     "standard input, which holds one table", hint="give all but one as files"))
    fixed = {}
    for item in args.fix:
        name, _, value = item.partition("=")
        try:
            fixed[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(Diagnostic(f"cannot read --fix {item!r}",
                                         hint="write NAME=VALUE, e.g. --fix d_model=2048")) from None
    cost = None
    if args.gpu_hour_price is not None:
        mfu = args.mfu
        if args.mfu_from:
            sweep = read_table(args.mfu_from)
            if "mfu" not in sweep.columns:
                raise DataError(Diagnostic(f"{args.mfu_from} has no mfu column", filename=args.mfu_from,
                                           hint="give a sweep table written by `infscale-dsl sweep`, or --mfu"))
            mfu = float(sweep["mfu"].median())
            if not mfu > 0:  # a CPU sweep measures no MFU: its column is empty
                raise DataError(Diagnostic(f"{args.mfu_from}'s mfu column holds no measured value",
                                           filename=args.mfu_from, hint="give a GPU sweep's table, or --mfu"))
        cost = CostAssumptions(args.gpu_hour_price, currency=args.currency, mfu=mfu, peak_flops=args.peak_flops,
                               requests_per_year=args.requests_per_year,
                               tokens_per_request=args.tokens_per_request, years=args.years)
    latency_fit = latency_table = None
    if args.latency:
        if args.latency != STDIO and (Path(args.latency) / "fit.json").is_file():
            latency_fit = FitResult.load(args.latency)
        else:
            latency_table = read_table(args.latency)
    candidates = read_table(args.candidates) if args.candidates else None
    if candidates is not None and latency_table is not None:
        on = [c for c in SHAPE_COLUMNS if c in candidates.columns and c in latency_table.columns]
        if not on:
            raise DataError(Diagnostic("cannot join the latency table to the candidates: no shape column in common",
                                       hint=f"give both tables some of {', '.join(SHAPE_COLUMNS)}"))
        extra = [c for c in latency_table.columns if c not in candidates.columns or c in on]
        joined = candidates.merge(latency_table[extra], on=on, how="left")
        if len(joined) > len(candidates):  # a shape timed at several batch sizes would be several candidates
            raise DataError(Diagnostic(f"the latency table has several rows for a shape (by {', '.join(on)})",
                                       filename=args.latency, hint="keep one row per shape, e.g. one batch size"))
        timed = [c for c in extra if c not in on]
        untimed = joined[timed].isna().all(axis=1).to_numpy() if timed else []
        if any(untimed):
            names = candidate_names(joined[untimed])
            raise DataError(Diagnostic(f"{len(names)} candidate(s) have no row in the latency table: {listed(names, 5)}",
                                       filename=args.latency,
                                       hint="time them (infscale-dsl latency CANDIDATES -o TABLE), or give a "
                                            "latency fit's folder to --latency"))
        candidates = joined
    elif candidates is None:
        candidates = latency_table
    options = ReportOptions(
        targets=parse_conditions(args.target), budgets=parse_conditions(args.budget),
        latency=args.latency_column, latency_unit=args.latency_unit, loss_unit=args.loss_unit,
        rule=args.rule, threshold=args.threshold,
        flops=args.flops, max_params=args.max_params, fixed=fixed,
        n_name=args.n_name, d_name=args.d_name, inference_tokens=args.inference_tokens, cost=cost,
        training_table=read_table(args.data) if args.data else None, group_column=args.group_column,
        title=args.title, notes=args.note, seed=args.seed)
    return options, latency_fit, candidates


def run_report(args: argparse.Namespace) -> int:
    from ..files import check_output_file
    from ..report.render import FORMATS

    check_output_file(args.output, FORMATS, "report", stdout_ok=True)
    from ..posterior.result import FitResult
    from ..report.build import build_report

    result = FitResult.load(args.fit)
    options, latency_fit, candidates = decision_inputs(args)
    report = build_report(result, candidates, options, latency_fit)
    return answer(args, report, [result, latency_fit])


def run_recommend(args: argparse.Namespace) -> int:
    from ..files import check_output_file
    from ..report.render import FORMATS

    if args.output:
        check_output_file(args.output, FORMATS, "report", stdout_ok=True)
    from ..posterior.result import FitResult
    from ..report.build import build_report, with_budget_tokens

    result = FitResult.load(args.fit)
    options, latency_fit, shapes = decision_inputs(args)
    candidates = with_budget_tokens(result, shapes, args.flops, args.n_name, args.d_name) if shapes is not None else None
    report = build_report(result, candidates, options, latency_fit)
    return answer(args, report, [result, latency_fit])


def answer(args: argparse.Namespace, report, fits: list) -> int:
    """Print the terminal summary, write the report if asked, and the exit code: 1 under
    --strict when a fit the report rests on failed its diagnostics. With `-o -` the report
    (JSON) goes to standard output and the summary to standard error."""
    from ..report.render import write_report

    messages = sys.stderr if args.output == STDIO else sys.stdout
    print(summary_text(report), file=messages)
    if args.output:
        path = write_report(report, args.output)
        if not args.quiet and path != STDIO:
            print(f"written: {path}", file=messages)
    failed = [fit.spec.filename for fit in fits if fit is not None and not fit.diagnostics["ok"]]
    return 1 if args.strict and failed else 0


def summary_text(report) -> str:
    """The terminal answer: allocation, lifetime optimum and the recommendation in a few lines."""
    from ..report.render import interval
    from ..report.document import to_dict

    doc = to_dict(report)
    lines = [f"{doc['spec']}: {doc['method']} fit" + ("" if doc["reliable"] else
             " -- NOT RELIABLE: " + "; ".join(doc["problems"]))]
    lines.extend(f"warning: {warning}" for warning in doc["warnings"])
    if doc["allocation"]:
        a = doc["allocation"]
        lines.append(f"compute-optimal at C = {a['flops']:.3g}: N* {interval(a['n_opt'])}, D* {interval(a['d_opt'])}, "
                     f"loss {interval(a['loss'])}, tokens/param {interval(a['tokens_per_parameter'])}")
    if doc["lifetime"] and "n_opt" in doc["lifetime"]:
        life = doc["lifetime"]
        lines.append(f"lifetime optimum for loss {life['target_loss']:g} and {life['inference_tokens']:.3g} "
                     f"inference tokens: N {interval(life['n_opt'])}, D_train {interval(life['d_train'])}")
    for c in doc["candidates"] if doc["conditions"] else []:  # with no target or budget there is no P to give
        p = "NOT RELIABLE" if c["p_all_met"] is None else f"{c['p_all_met']:.3f}"
        lines.append(f"  {c['name']}: P(all met) {p}")
    if doc["recommendation"]:
        r = doc["recommendation"]
        lines.append(f"rule: {r['rule_text']}")
        lines.append(f"recommended: {r['chosen'] or 'none'} ({r['reason']})")
    return "\n".join(lines)


def run_compare(args: argparse.Namespace) -> int:
    from ..errors import ConfigError, Diagnostic

    if len(args.specs) < 2:
        raise ConfigError(Diagnostic("compare needs two or more specs", hint="infscale-dsl compare a.law b.law runs.csv"))
    from ..files import atomic_write, check_output_file

    if args.output:
        check_output_file(args.output, (".csv",), "comparison table", stdout_ok=True)
    options = fit_options(args)
    from ..inference.fit import fit
    from ..language import load_spec
    from ..posterior.compare import compare_fits, describe
    from ..tables import read_table

    if args.method != "nuts":
        raise ConfigError(Diagnostic("compare ranks fits by PSIS-LOO, which needs a posterior",
                                     hint="drop --method map: compare fits each spec with NUTS"))
    messages = sys.stderr if args.output == STDIO else sys.stdout
    table = read_table(args.table)
    specs = {name: load_spec(Path(path), columns=table.columns)  # every spec checked before any fit
             for name, path in zip(spec_names(args.specs), args.specs)}
    fits = {name: fit(spec, table, filename=table_name(args.table), **options) for name, spec in specs.items()}
    comparison = compare_fits(fits, args.response)
    print(describe(comparison), file=messages)
    failed = [name for name, result in fits.items() if not result.diagnostics["ok"]]
    for name in failed:
        print(f"warning: {name}: the fit failed its diagnostics: " + "; ".join(fits[name].diagnostics["problems"]),
              file=messages)
    if args.output == STDIO:
        comparison.table.to_csv(sys.stdout)
    elif args.output:
        atomic_write(args.output, comparison.table.to_csv)
        if not args.quiet:
            print(f"written: {args.output}")
    return 1 if args.strict and failed else 0


def spec_names(paths: list[str]) -> list[str]:
    """Each spec's name in the comparison: its file's stem, or its path where stems repeat."""
    stems = [Path(path).stem for path in paths]
    return [stem if stems.count(stem) == 1 else path for stem, path in zip(stems, paths)]


def run_backtest(args: argparse.Namespace) -> int:
    from ..errors import ConfigError, Diagnostic
    from ..files import TABLE_SUFFIXES, check_output_file

    if not (args.holdout or args.holdout_groups or args.holdout_top):
        raise ConfigError(Diagnostic("backtest needs rows to hold out",
                                     hint='give --holdout "N >= 1e9", --holdout-groups COLUMN or --holdout-top 0.1'))
    if args.output:
        check_output_file(args.output, TABLE_SUFFIXES, "predictions table", stdout_ok=True)
    options = fit_options(args)
    from ..model.data import select_rows
    from ..executors import make_executor
    from ..language import load_spec
    from ..report.backtest import all_predictions, backtests, describe, describe_all, fittable, pooled
    from ..tables import read_table, write_table

    messages = sys.stderr if args.output == STDIO else sys.stdout
    table = read_table(args.table)
    if args.where:
        table = select_rows(table, args.where, table_name(args.table))
    spec = load_spec(Path(args.spec), columns=table.columns)
    holdouts, skipped = fittable(spec, table, holdouts_from(args, spec, table), table_name(args.table))
    for line in skipped:
        print(f"warning: skipped, too few rows to fit: {line}", file=sys.stderr)
    with make_executor(args.on, args.workers, args.address) as executor:
        if not executor.in_process:  # bars of fits in other processes would write over each other
            options["progress"] = False
        results = backtests(spec, table, holdouts, executor=executor, **options)
    print(describe(results[0]) if len(results) == 1 else describe_all(results), file=messages)
    if args.output:
        write_table(all_predictions(results), args.output)
        if not args.quiet and args.output != STDIO:
            print(f"written: {args.output}")
    if args.min_coverage is None:
        return 0
    short = [s for s in pooled(results) if s.coverage_90 < args.min_coverage]
    pooled_over = "" if len(results) == 1 else f", pooled over {len(results)} hold-outs,"
    for score in short:
        print(f"coverage of {score.response}'s 90% intervals{pooled_over} is {score.coverage_90:.2f}, below "
              f"--min-coverage {args.min_coverage:g}", file=sys.stderr)
    below = [(b.holdout, s) for b in results for s in b.scores if s.coverage_90 < args.min_coverage]
    if len(results) > 1 and below:  # which hold-outs pull the pooled figure down
        print(f"hold-outs below --min-coverage {args.min_coverage:g} on their own:", file=sys.stderr)
        for rule, score in below:
            print(f"  {rule!r}: {score.response} coverage {score.coverage_90:.2f} of {score.n_held_out} held out",
                  file=sys.stderr)
    return 1 if short else 0


def holdouts_from(args: argparse.Namespace, spec, table) -> list:
    """The hold-outs that --holdout, --holdout-groups and --holdout-top ask for, in that order."""
    from ..errors import ConfigError, Diagnostic
    from ..language.names import column_hint
    from ..report.backtest import Holdout, group_holdouts, top_holdouts

    holdouts = [Holdout(rule) for rule in args.holdout]
    if args.holdout_groups or args.holdout_top:
        rank_by = args.rank_by or (spec.data["N"].column if "N" in spec.data else None)
        if rank_by is None:
            raise ConfigError(Diagnostic("cannot tell which column orders the runs by size: the spec has no N",
                                         hint="name it with --rank-by, e.g. --rank-by params"))
        if rank_by not in table.columns:
            raise ConfigError(Diagnostic(f"--rank-by {rank_by!r} is not a column of the table",
                                         filename=table_name(args.table), hint=column_hint(rank_by, table.columns)))
        if args.holdout_groups:
            holdouts += group_holdouts(table, args.holdout_groups, rank_by)
        if args.holdout_top:
            holdouts += top_holdouts(args.holdout_top, rank_by)
    return holdouts
