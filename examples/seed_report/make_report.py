"""The seed example: which 1B shape to train, from the law of Bian et al. 2025 fitted on the
paper's 27 runs, and the batch-1 latencies the paper measured.

    python examples/seed_report/make_report.py [--data ../shared/data] [--out examples/seed_report]

Reads bian2025_models.csv (fits models/bian2025.law on the rows with in_fit_set_main == 1) and
bian2025_latency_1b.csv (the three Morph shapes 2048x24, 2560x16, 3072x12: the rows with a
loss), and writes report.html, report.md (with its PNGs) and report.json.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")  # chains in parallel

import pandas as pd  # noqa: E402

from infscale_dsl.inference.fit import fit  # noqa: E402
from infscale_dsl.language import load_spec  # noqa: E402
from infscale_dsl.report.build import ReportOptions, build_report  # noqa: E402
from infscale_dsl.report.conditions import Condition  # noqa: E402
from infscale_dsl.report.cost import CostAssumptions  # noqa: E402
from infscale_dsl.report.render import write_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
TOKENS_PER_CALL = 256  # the paper times generate() of 256 output tokens (input 128), batch 1


def seed_tables(data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the 27 fitted runs, the three 1B candidate shapes with latency in ms per token)."""
    runs = pd.read_csv(data / "bian2025_models.csv")
    latency = pd.read_csv(data / "bian2025_latency_1b.csv")
    shapes = latency[latency["loss"].notna()].drop(columns="loss")  # the paper's own three runs
    # the whole generate() call over its 256 output tokens: an upper bound on time per token
    shapes = shapes.assign(latency=shapes["latency_s"] * 1000.0 / TOKENS_PER_CALL)
    sizes = runs[runs["size_group"] == "1B"][["d_model", "n_layers", "params_N", "tokens_D"]]
    candidates = shapes.merge(sizes, on=["d_model", "n_layers"], validate="one_to_one")
    return runs[runs["in_fit_set_main"] == 1], candidates.rename(columns={"model": "name"})


def seed_options(fitted: pd.DataFrame, target: str = "loss <= 2.95") -> ReportOptions:
    return ReportOptions(
        targets=[Condition.parse(target)], budgets=[Condition.parse("latency <= 20")],
        flops=1e21, max_params=2e9, fixed={"d_model": 2048, "n_layers": 24},
        inference_tokens=1e12,
        cost=CostAssumptions(gpu_hour_price=2.5, requests_per_year=1e8, tokens_per_request=256),
        training_table=fitted, group_column="size_group",
        title="Which 1B shape to train: Bian et al. 2025 law, seed data",
        notes=["latency: ms per output token at batch 1 on one A100 40GB, the paper's whole generate() "
               "call (input 128, output 256 tokens) divided by 256, so an upper bound on decode time.",
               "Candidates: the paper's three 1B shapes, each trained on its own 29.0B tokens."],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with the public tables")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--draws", type=int, default=2500)
    args = parser.parse_args()

    fitted, candidates = seed_tables(args.data)
    spec = load_spec(ROOT / "models" / "bian2025.law", columns=fitted.columns)
    result = fit(spec, fitted, chains=args.chains, warmup=args.warmup, draws=args.draws, seed=0)
    report = build_report(result, candidates, seed_options(fitted))
    for suffix in (".html", ".md", ".json"):
        print("written:", write_report(report, args.out / f"report{suffix}"))
    print("recommended:", report.recommendation.chosen, "-", report.recommendation.reason)


if __name__ == "__main__":
    main()
