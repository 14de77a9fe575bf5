"""The latency harness: time each shape with a backend, one row per shape and batch size.

Each repeat runs a whole greedy generation: the prefill (prompt -> first token) is timed as
`ttft_ms` and the decode of the other output_len - 1 tokens, divided by their number, as
`tpot_ms`. The device is synchronised before every clock read, warm-up runs are dropped, and
each row gives the median, the 90th percentile and the coefficient of variation (std / mean)
of the repeats, with the shape, the device, the library versions and the memory/compute floors.
"""
from __future__ import annotations

import importlib
import os
import sys
import time

import numpy as np
import pandas as pd
from tqdm import tqdm

from . import BACKENDS
from .roofline import add_roofline, device_spec
from .shapes import BenchSettings, Shape


def load_backend(name: str):
    """The backend module: device_name(), library_versions() and a Generator class."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    return importlib.import_module(f"{__package__}.{BACKENDS[name]}")


def show_progress(quiet: bool) -> bool:
    """A progress bar only for a person watching: not with --quiet, in CI, or into a file."""
    return not quiet and not os.environ.get("CI") and sys.stderr.isatty()


def time_once(generator) -> tuple[float, float]:
    """(prefill seconds, decode seconds) of one whole greedy generation."""
    start = time.perf_counter()
    state = generator.prefill()
    generator.synchronize(state)
    prefilled = time.perf_counter()
    tokens = generator.decode(state)
    generator.synchronize(tokens)
    return prefilled - start, time.perf_counter() - prefilled


def summarize(seconds: list[float]) -> tuple[float, float, float]:
    """(median ms, 90th percentile ms, coefficient of variation) of repeated timings."""
    values = np.asarray(seconds, dtype=np.float64) * 1e3
    return float(np.median(values)), float(np.percentile(values, 90)), float(values.std(ddof=1) / values.mean())


def benchmark(shapes: list[Shape], settings: BenchSettings, backend: str = "jax",
              quiet: bool = False) -> pd.DataFrame:
    """Time every shape at every batch size; one row each (columns: see the module docstring).

    All generators are built and warmed up first, then timed in rounds, one repeat of each per
    round: on a shared machine a burst of other work then slows every shape alike instead of
    one shape's whole series. (So every shape's weights are held at once.)"""
    module = load_backend(backend)
    device = module.device_name()
    versions = module.library_versions()
    cases = [(shape, batch) for shape in shapes for batch in settings.batch_sizes]
    hide = not show_progress(quiet)

    generators = []
    for shape, batch in tqdm(cases, desc=f"build and warm up ({backend})", unit="shape", disable=hide):
        generator = module.Generator(shape, settings, batch)
        for _ in range(settings.warmup):
            time_once(generator)  # compiles (jax), fills caches
        generators.append(generator)

    prefill_seconds = [[] for _ in cases]
    token_seconds = [[] for _ in cases]
    for _ in tqdm(range(settings.repeats), desc=f"time ({backend})", unit="round", disable=hide):
        for case, generator in enumerate(generators):
            prefill, decode = time_once(generator)
            prefill_seconds[case].append(prefill)
            token_seconds[case].append(decode / (settings.output_len - 1))

    rows = [_row(shape, settings, batch, backend, device, versions, prefill_seconds[case], token_seconds[case])
            for case, (shape, batch) in enumerate(cases)]
    return add_roofline(pd.DataFrame(rows), device_spec(device))


def _row(shape, settings, batch, backend, device, versions, prefill_seconds, token_seconds) -> dict:
    ttft, ttft_p90, ttft_cv = summarize(prefill_seconds)
    tpot, tpot_p90, tpot_cv = summarize(token_seconds)
    return dict(
        shape=shape.label, d_model=shape.d_model, n_layers=shape.n_layers, n_heads=shape.n_heads,
        n_kv_heads=shape.n_kv_heads, head_dim=shape.head_dim, ffn_hidden=shape.ffn_hidden,
        vocab=shape.vocab, tie_embeddings=shape.tie_embeddings, params_N=shape.params,
        non_embedding_params=shape.non_embedding_params,
        aspect_ratio=shape.d_model / shape.n_layers,
        backend=backend, device=device, library_versions=versions, dtype=settings.dtype,
        batch=batch, prompt_len=settings.prompt_len, output_len=settings.output_len,
        repeats=settings.repeats, warmup=settings.warmup,
        ttft_ms=ttft, ttft_p90_ms=ttft_p90, ttft_cv=ttft_cv,
        tpot_ms=tpot, tpot_p90_ms=tpot_p90, tpot_cv=tpot_cv,
        tokens_per_s=batch * 1e3 / tpot,
    )
