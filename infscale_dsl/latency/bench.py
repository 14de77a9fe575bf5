"""The latency harness: time each shape with a backend (or several, in the same rounds), one row per
shape, backend and batch size.

Each repeat runs a whole greedy generation: the prefill (prompt -> first token) is timed as
`ttft_ms` and the decode of the other output_len - 1 tokens, divided by their number, as
`tpot_ms`. The device is synchronised before every clock read, warm-up runs are dropped, and
each row gives the median, the 90th percentile and the coefficient of variation (std / mean)
of the repeats, with the shape, the device, the library versions and the memory/compute floors.
"""
from __future__ import annotations

import importlib
import time

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..progress import show_progress
from . import BACKENDS
from .roofline import add_roofline, device_spec
from .shapes import BenchSettings, Shape


def load_backend(name: str):
    """(the backend's module: device_name() and library_versions(), its Generator class)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    module_name, class_name = BACKENDS[name]
    module = importlib.import_module(f"{__package__}.{module_name}")
    return module, getattr(module, class_name)


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
    """Time every shape at every batch size with one backend; one row each (columns: see the
    module docstring)."""
    return benchmark_cases([(backend, shape) for shape in shapes], settings, quiet)


def benchmark_cases(cases: list[tuple[str, Shape]], settings: BenchSettings, quiet: bool = False) -> pd.DataFrame:
    """Time each (backend, shape) at every batch size; one row each, in the order given.

    All generators are built and warmed up first, then timed in rounds, one repeat of each per
    round: on a shared machine a burst of other work then slows every case alike instead of one
    case's whole series, so ratios between backends or shapes come from the same conditions.
    (So every case's weights are held at once.)"""
    cases = [(backend, shape, batch) for backend, shape in cases for batch in settings.batch_sizes]
    hide = not show_progress(quiet)
    backends = {name: load_backend(name) for name in dict.fromkeys(backend for backend, _, _ in cases)}

    generators = []
    for backend, shape, batch in tqdm(cases, desc="build and warm up", unit="case", disable=hide):
        generator = backends[backend][1](shape, settings, batch)
        for _ in range(settings.warmup):
            time_once(generator)  # compiles (jax), fills caches
        generators.append(generator)

    prefill_seconds = [[] for _ in cases]
    token_seconds = [[] for _ in cases]
    for _ in tqdm(range(settings.repeats), desc="time", unit="round", disable=hide):
        for case, generator in enumerate(generators):
            prefill, decode = time_once(generator)
            prefill_seconds[case].append(prefill)
            token_seconds[case].append(decode / (settings.output_len - 1))

    identity = {name: (module.device_name(), module.library_versions()) for name, (module, _) in backends.items()}
    rows = pd.DataFrame([_row(shape, settings, batch, backend, *identity[backend], prefill_seconds[case], token_seconds[case])
                         for case, (backend, shape, batch) in enumerate(cases)])
    # each device's floors from its own figures (the jax and torch backends name a device alike)
    return pd.concat([add_roofline(group, device_spec(device))
                      for device, group in rows.groupby("device", sort=False)]).sort_index()


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
