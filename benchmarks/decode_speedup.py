"""The fused jax decode paths against the training model's own decode step, shape by shape.

    python benchmarks/decode_speedup.py                     # the CPU shapes, about 10 minutes on 2 cores
    python benchmarks/decode_speedup.py --repeats 5 -o speedup.csv

The jax backends `jax` (fused projections, layers in one lax.scan, donated cache), `jax-unrolled`
(the same, the layer loop unrolled) and `jax-unfused` (the training model's decode step, layer by
layer) time every shape of the config in the same rounds (infscale_dsl.latency.bench.benchmark_cases):
each ratio comes from one process under the same load. Prints the median ms per decoded token of
each and the unfused path's time over each fused one's (above 1: the fused path is faster).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from infscale_dsl.latency.bench import benchmark_cases  # noqa: E402
from infscale_dsl.latency.shapes import load_config  # noqa: E402

BACKENDS = ("jax-unfused", "jax", "jax-unrolled")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "examples" / "latency" / "cpu_shapes.toml")
    parser.add_argument("--repeats", type=int, help="override the config's repeats")
    parser.add_argument("-o", "--output", type=Path, help="also write every measured row here (.csv)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    shapes, settings = load_config(args.config)
    if args.repeats:
        settings = dataclasses.replace(settings, repeats=args.repeats)
    rows = benchmark_cases([(backend, shape) for shape in shapes for backend in BACKENDS], settings, args.quiet)
    if args.output:
        rows.to_csv(args.output, index=False)

    table = rows.pivot_table(index=["shape", "d_model", "n_layers"], columns="backend", values="tpot_ms", sort=False)
    for fused in BACKENDS[1:]:
        table[f"unfused / {fused}"] = table["jax-unfused"] / table[fused]
    first = rows.iloc[0]
    print(f"{first.device}; {first.library_versions}; {settings.dtype}, batch {settings.batch_sizes[0]}, "
          f"prompt {settings.prompt_len}, output {settings.output_len}, median of {settings.repeats} "
          f"(ms per decoded token)")
    print(table.to_string(float_format=lambda x: f"{x:.4f}"))
    for fused in BACKENDS[1:]:
        ratios = table[f"unfused / {fused}"]
        print(f"unfused / {fused}: {ratios.min():.2f} to {ratios.max():.2f} (median {ratios.median():.2f})")


if __name__ == "__main__":
    main()
