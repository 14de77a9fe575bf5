"""How fast decoding could be: the memory and compute floors of one decode step.

One decode step reads every weight once and the KV cache so far, and does about 2 N FLOPs per
sequence in the batch. So its time is at least

    memory floor  = (weight bytes + KV cache bytes read) / memory bandwidth
    compute floor = 2 * N * batch / peak FLOP/s

and `floor_ms` is the larger of the two. The weights counted are all N parameters (both
embedding tables when untied), as in the project's H200 reference figures; the KV cache is
counted at its mean length over the decode (prompt + output / 2).
"""
from __future__ import annotations

import functools
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..devices import accelerator

BYTES_PER_ELEMENT = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    memory_bandwidth: float  # bytes/s
    peak_flops: float  # FLOP/s, dense bf16 for GPUs (an optimistic floor for float32)


def device_spec(device_name: str) -> DeviceSpec | None:
    """The data sheet's figures for a known GPU, measured ones for the CPU, None otherwise."""
    known = accelerator(device_name)
    if known is not None:
        return DeviceSpec(known.name, known.memory_bandwidth, known.peak_flops["bfloat16"])
    if device_name.lower().startswith("cpu"):
        return measure_cpu()
    return None


@functools.cache
def measure_cpu() -> DeviceSpec:
    """The CPU's copy bandwidth and float32 matmul rate, best of a few quick numpy runs (~1 s).

    Best-of rather than median: other processes on a shared machine only ever slow a run down."""
    source = np.ones(64 * 2**20 // 8)  # 64 MiB, well past the caches
    target = np.empty_like(source)
    copy_seconds = _best_time(lambda: np.copyto(target, source), runs=5)
    bandwidth = 2 * source.nbytes / copy_seconds  # each byte read once and written once

    n = 1024
    a = np.ones((n, n), dtype=np.float32)
    matmul_seconds = _best_time(lambda: a @ a, runs=5)
    return DeviceSpec(cpu_name(), bandwidth, 2 * n**3 / matmul_seconds)


def cpu_name() -> str:
    """'cpu: <model name>' from /proc/cpuinfo where there is one, else the platform's word."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return f"cpu: {line.split(':', 1)[1].strip()}"
    return f"cpu: {platform.processor() or platform.machine()}"


def decode_floor_ms(params: int, n_layers: int, n_kv_heads: int, head_dim: int, batch: int,
                    context: float, dtype: str, spec: DeviceSpec) -> tuple[float, float]:
    """(memory floor, compute floor) of one decode step in milliseconds."""
    itemsize = BYTES_PER_ELEMENT[dtype]
    weight_bytes = params * itemsize
    kv_bytes = 2 * n_layers * batch * context * n_kv_heads * head_dim * itemsize  # keys and values
    memory_ms = 1e3 * (weight_bytes + kv_bytes) / spec.memory_bandwidth
    compute_ms = 1e3 * 2 * params * batch / spec.peak_flops
    return memory_ms, compute_ms


def add_roofline(rows: pd.DataFrame, spec: DeviceSpec | None) -> pd.DataFrame:
    """Rows with mem_floor_ms, compute_floor_ms, floor_ms and tpot_over_floor (measured / floor);
    NaN for a device without an entry. Rows need the latency harness's shape columns."""
    rows = rows.copy()
    if spec is None:
        for column in ("mem_floor_ms", "compute_floor_ms", "floor_ms", "tpot_over_floor"):
            rows[column] = np.nan
        rows["memory_bandwidth_GBps"] = np.nan
        return rows
    floors = [
        decode_floor_ms(row.params_N, row.n_layers, row.n_kv_heads, row.d_model // row.n_heads,
                        row.batch, row.prompt_len + row.output_len / 2, row.dtype, spec)
        for row in rows.itertuples()
    ]
    rows["mem_floor_ms"] = [memory for memory, _ in floors]
    rows["compute_floor_ms"] = [compute for _, compute in floors]
    rows["floor_ms"] = rows[["mem_floor_ms", "compute_floor_ms"]].max(axis=1)
    rows["tpot_over_floor"] = rows["tpot_ms"] / rows["floor_ms"]
    rows["memory_bandwidth_GBps"] = spec.memory_bandwidth / 1e9
    return rows


def _best_time(work, runs: int) -> float:
    work()  # first touch: page faults and thread start-up
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best
