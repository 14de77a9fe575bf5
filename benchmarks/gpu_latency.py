"""Decode latency on one GPU: 12 shapes, the five ~1.0B shapes of the H200 reference among them.

    python benchmarks/gpu_latency.py --backends jax -o jax.csv        # all shapes; the variants on 1024x79
    python benchmarks/gpu_latency.py --backends torch -o torch.csv    # the five reference shapes
    python benchmarks/gpu_latency.py --tiny ...                       # the same logic on the CPU, tiny shapes
    python benchmarks/gpu_latency.py --table jax.csv torch.csv        # the table of earlier outputs (add --tiny for tiny ones)

Shapes and settings come from examples/latency/gpu_shapes.toml (bf16, batch 1, input 128,
output 256, median of 3). `--backends jax` times the fused jax path (`jax`) on every shape and,
in the same rounds, its variants (`--variants`: the unrolled layer loop, the training model's own
decode step) on the deepest reference shape, 1024x79; `--backends torch` times eager torch on
the five reference shapes. Each row carries the memory floor (infscale_dsl.latency.roofline).

The table prints our median ms per decoded token beside the reference columns (Hugging Face
eager generate, a plain fused JAX step; examples/latency/h200_decode_reference_1b.csv), then
checks the targets: the best jax path below 2 ms per token on 1024x79, jax within 1.5x of the
memory floor on 4096x5, torch at or below the Hugging Face eager figure of each shape.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave GPU memory for torch too

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from infscale_dsl.latency.bench import benchmark_cases  # noqa: E402
from infscale_dsl.latency.shapes import BenchSettings, Shape, load_config  # noqa: E402

SHAPES = REPO / "examples" / "latency" / "gpu_shapes.toml"
REFERENCE = REPO / "examples" / "latency" / "h200_decode_reference_1b.csv"
N_REFERENCE = 5  # the config's first five shapes are the reference table's
DEEP, WIDE = "1024x79", "4096x5"  # the targets' shapes
VARIANTS = ("jax-unrolled", "jax-unfused")
TINY = BenchSettings(batch_sizes=(1,), prompt_len=8, output_len=8, dtype="float32", repeats=2, warmup=1)


def tiny_shape(shape: Shape) -> Shape:
    """The shape at 1/32 of the width and about 1/16 of the depth, 16-dim heads, 256 tokens,
    named as the full shape so that the table and its checks read the same."""
    return Shape(d_model=shape.d_model // 32, n_layers=-(-shape.n_layers // 16), n_heads=shape.d_model // 512,
                 n_kv_heads=shape.d_model // 512, vocab=256, name=shape.label)


def cases(backend: str, shapes: list[Shape], reference: set[str], variants: tuple[str, ...]) -> list[tuple[str, Shape]]:
    """jax: the fused path on every shape, its variants on the deep shape; torch: the shapes
    whose labels are in `reference`."""
    if backend == "torch":
        return [("torch", shape) for shape in shapes if shape.label in reference]
    deep = [shape for shape in shapes if shape.label == DEEP]
    return [("jax", shape) for shape in shapes] + [(variant, shape) for shape in deep for variant in variants]


def compare(rows: pd.DataFrame, reference: pd.DataFrame | None) -> pd.DataFrame:
    """One row per shape: each backend's median ms per token (the first row of a shape and backend
    measured twice), our floor, the reference columns."""
    rows = rows.drop_duplicates(["shape", "backend"])
    table = rows.pivot_table(index=["shape", "d_model", "n_layers"], columns="backend", values="tpot_ms", sort=False)
    table.columns = [f"{backend}_ms" for backend in table.columns]
    table["floor_ms"] = rows.groupby("shape", sort=False)["floor_ms"].first().to_numpy()
    if "jax_ms" in table:
        table["jax_over_floor"] = table["jax_ms"] / table["floor_ms"]
    table = table.reset_index()
    if reference is not None:
        table = table.merge(reference.rename(columns={"hf_generate_eager_ms_per_token": "ref_hf_eager_ms",
                                                      "fused_jax_scan_ms_per_token": "ref_fused_jax_ms"})
                            [["d_model", "n_layers", "ref_hf_eager_ms", "ref_fused_jax_ms"]],
                            on=["d_model", "n_layers"], how="left")
    return table


def check_targets(table: pd.DataFrame) -> list[tuple[str, bool]]:
    """The issue's targets, each as (statement with the figures, met?)."""
    checks = []
    by_shape = table.set_index("shape")
    jax_columns = [c for c in table.columns if c.startswith("jax") and c.endswith("_ms")]
    if DEEP in by_shape.index and jax_columns:
        deep = by_shape.loc[DEEP]
        best = min(jax_columns, key=lambda c: deep[c])
        checks.append((f"jax {DEEP} below 2 ms/token: {deep[best]:.3f} ms ({best[:-3]}; floor "
                       f"{deep.floor_ms:.3f} ms)", deep[best] < 2))
    if WIDE in by_shape.index and "jax_ms" in table:
        wide = by_shape.loc[WIDE]
        checks.append((f"jax {WIDE} within 1.5x of the memory floor: {wide.jax_ms:.3f} ms vs {wide.floor_ms:.3f} ms "
                       f"({wide.jax_over_floor:.2f}x)", wide.jax_over_floor <= 1.5))
    if "torch_ms" in table and "ref_hf_eager_ms" in table:
        for label, row in by_shape.dropna(subset=["torch_ms", "ref_hf_eager_ms"]).iterrows():
            checks.append((f"torch {label} at or below HF eager: {row.torch_ms:.2f} ms vs {row.ref_hf_eager_ms:.2f} ms",
                           row.torch_ms <= row.ref_hf_eager_ms))
    return checks


def print_table(rows: pd.DataFrame, tiny: bool) -> int:
    first = rows.iloc[0].to_dict()
    print(f"{first['device']}; {'; '.join(rows['library_versions'].unique())}; {first['dtype']}, batch {first['batch']}, "
          f"input {first['prompt_len']}, output {first['output_len']}, median of {first['repeats']} (ms per decoded token)")
    reference = pd.read_csv(REFERENCE) if REFERENCE.is_file() and not tiny else None
    table = compare(rows, reference)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if tiny:
        print("tiny shapes: the targets apply to the full shapes on a GPU and are not checked")
        return 0
    checks = check_targets(table)
    for statement, met in checks:
        print(f"{'met ' if met else 'MISSED'} {statement}")
    return 0 if all(met for _, met in checks) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny shapes in float32 on the CPU: checks the logic only")
    parser.add_argument("--backends", nargs="+", choices=["jax", "torch"], default=["jax", "torch"])
    parser.add_argument("--variants", nargs="*", choices=VARIANTS, default=list(VARIANTS),
                        help=f"other jax paths to time on {DEEP} beside the fused one (default: both)")
    parser.add_argument("--only", nargs="+", metavar="SHAPE", help="time only these shapes, e.g. 1024x79")
    parser.add_argument("-o", "--output", type=Path, help="write every measured row here (.csv)")
    parser.add_argument("--table", nargs="+", type=Path, metavar="CSV",
                        help="measure nothing: print the comparison table of these earlier outputs")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    if args.table:
        missing = [str(path) for path in args.table if not path.is_file()]
        if missing:
            print(f"not found (a part stopped before it wrote them?): {', '.join(missing)}")
        found = [pd.read_csv(path) for path in args.table if path.is_file()]
        return print_table(pd.concat(found, ignore_index=True), args.tiny) if found else 1

    shapes, settings = load_config(SHAPES)
    reference = {shape.label for shape in shapes[:N_REFERENCE]}
    if args.tiny:
        shapes, settings = [tiny_shape(shape) for shape in shapes], TINY
    if args.only:
        shapes = [shape for shape in shapes if shape.label in args.only]
    measured = []
    # the reference shapes first, then the others, each group written when done: a run stopped at
    # its time limit keeps what it finished
    groups = [[shape for shape in shapes if shape.label in reference], [shape for shape in shapes if shape.label not in reference]]
    for backend in args.backends:
        for group in groups:
            group_cases = cases(backend, group, reference, tuple(args.variants))
            if not group_cases:
                continue
            started = time.perf_counter()
            measured.append(benchmark_cases(group_cases, settings, quiet=args.quiet))
            print(f"{backend}: {len(group_cases)} cases in {time.perf_counter() - started:.0f} s (building, compiling, timing)")
            if args.output:
                pd.concat(measured).to_csv(args.output, index=False)
    return print_table(pd.concat(measured, ignore_index=True), args.tiny)


if __name__ == "__main__":
    sys.exit(main())
