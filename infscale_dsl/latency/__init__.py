"""Timing model shapes: prefill and per-token decode latency (bench.py), on a backend.

Standard library only: the CLI reads BACKENDS for its help, and reports read the CV check,
without loading pandas or a backend.
"""
from __future__ import annotations

# name -> (module in this package, generator class in it)
BACKENDS = {
    "jax": ("jax_backend", "Generator"),  # fused layers in one lax.scan, decode loop compiled whole
    "jax-unrolled": ("jax_backend", "UnrolledGenerator"),  # the same, the layer loop unrolled
    "jax-unfused": ("jax_backend", "UnfusedGenerator"),  # the training model's own decode step
    "torch": ("torch_backend", "Generator"),  # eager PyTorch, a Python loop per token
}

# The largest coefficient of variation (std / mean of the repeats) of a latency row that a report
# trusts. On a dedicated H100 the compiled decode loop's repeats agree within 1.5 % (tpot_cv at
# most 0.015 in benchmarks/results/h100_2026-11-28/latency_jax.csv). Above 10 % the timing was
# disturbed (a shared machine, a changing clock, Python work per token) and the median can move
# on a rerun by more than the gaps a ranking of shapes rests on (2 % between 128x2 and 96x4 in
# examples/latency/cpu_shapes_latency.csv).
MAX_TRUSTED_CV = 0.10


def cv_column(latency_column: str) -> str:
    """The column holding a latency column's CV in a table of `infscale-dsl latency`:
    tpot_ms -> tpot_cv, ttft_ms -> ttft_cv."""
    return latency_column.removesuffix("_ms") + "_cv"


def high_cv_warning(names: list[str], cvs: list[float], quantity: str) -> str | None:
    """One warning naming the rows whose CV of `quantity` exceeds MAX_TRUSTED_CV, or None."""
    noisy = [f"{name} ({cv:.0%})" for name, cv in zip(names, cvs) if cv > MAX_TRUSTED_CV]
    if not noisy:
        return None
    return (f"{quantity} of {', '.join(noisy)} varied by more than {MAX_TRUSTED_CV:.0%} (CV, std/mean) "
            f"between repeats: too noisy to rank shapes by, since the median can move that much on a rerun; "
            f"time again on an idle machine, with more repeats")
