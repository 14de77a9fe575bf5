"""Fuzz the .law front end at scale: cases per second and crashes (any exception but SpecError).

    python benchmarks/spec_fuzz.py [--cases 100000] [--seed 0]

Cases come from tests/spec_strategies.py, the generator the fuzz tests use, driven by a seeded
Random: well-formed statements with any names, functions, arities, distributions and numbers,
deep nesting and long laws; every fourth case is 'sound' (it mostly passes check). Printed:
cases per second to generate, to parse, and to parse and check (half of them against a table's
columns); the crash count with the first crashing cases; and ratios that show where parse
time goes: our parse (ast nodes built inline while Lark reduces) against Lark building its own
parse tree with positions (what parse did before, then walking that tree), and the cost of
building the Lark parser in parses (what a parser rebuilt per call would pay). Rates are per CPU
second of this process (time.process_time), so other load on the machine skews them less.
Exit code 1 if anything crashed.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from lark import Lark  # noqa: E402
from spec_strategies import COLUMNS, Picker, spec_source  # noqa: E402

from infscale_dsl.errors import SpecError  # noqa: E402
from infscale_dsl.language import check, parse  # noqa: E402
from infscale_dsl.language.parse import _BracketNewlines, grammar_path, law_parser  # noqa: E402


def rate(function, cases: list[str]) -> tuple[float, Counter, list[str]]:
    """(cases per second, crash types, first crashing sources) of `function` over `cases`."""
    crashes: Counter = Counter()
    examples: list[str] = []
    start = time.process_time()
    for i, source in enumerate(cases):
        try:
            function(i, source)
        except SpecError:
            pass
        except Exception as error:  # a crash: what the fuzzer looks for
            crashes[type(error).__name__] += 1
            if len(examples) < 3:
                examples.append(f"{type(error).__name__}: {error}\n{source[:400]}")
    return len(cases) / (time.process_time() - start), crashes, examples


def lark_tree(grammar: Lark):
    def run(i: int, source: str) -> None:
        grammar.parse(source if source.endswith("\n") else source + "\n")
    return run


def parse_only(i: int, source: str) -> None:
    parse(source)


def parse_and_check(i: int, source: str) -> None:
    check(parse(source), COLUMNS if i % 2 else None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.process_time()
    cases = [spec_source(Picker(seed=args.seed * 10**9 + i, sound=i % 4 == 0)) for i in range(args.cases)]
    generate = args.cases / (time.process_time() - start)
    print(f"{args.cases} cases, {sum(map(len, cases)) / args.cases:.0f} characters each on average; "
          f"generated at {generate:.0f} cases/s")

    law_parser()  # built once per process; its cost is measured apart below
    start = time.process_time()
    tree_parser = Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr", propagate_positions=True,
                       postlex=_BracketNewlines())
    build = time.process_time() - start
    crashes: Counter = Counter()
    examples: list[str] = []
    rates = {}
    for label, function in [("Lark tree", lark_tree(tree_parser)), ("parse", parse_only),
                            ("parse + check", parse_and_check)]:
        rates[label], found, shown = rate(function, cases)
        if label != "Lark tree":  # Lark's own syntax errors are parse's to translate
            crashes += found
            examples += shown
        print(f"{label:>14}: {rates[label]:8.0f} cases/s")

    shipped = [path.read_text() for path in sorted((ROOT / "models").glob("*.law"))]
    shipped_rate, _, _ = rate(parse_only, shipped * 200)
    print(f"{'shipped specs':>14}: {shipped_rate:8.0f} parses/s (models/*.law)")
    print(f"ratios: parse / Lark tree = {rates['Lark tree'] / rates['parse']:.2f} (time), "
          f"parse + check / parse = {rates['parse'] / rates['parse + check']:.2f} (time), "
          f"building the Lark parser = {build * rates['parse']:.0f} parses")
    print(f"crashes: {sum(crashes.values())} in {args.cases} cases {dict(crashes) or ''}")
    for example in examples:
        print("---\n" + example)
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
