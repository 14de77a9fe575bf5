"""Train one model on a byte corpus and measure it: held-out loss curve, tokens/s and MFU.

The model is split once (`nnx.split`) and a pure step function that merges it inside is
`jax.jit`-ed: nnx.jit would walk the object graph on every call. Data parallelism uses
jax.sharding: a 1-D mesh over the local devices, the batch split along it, parameters and
optimizer state replicated; XLA inserts the gradient all-reduce.

With `lr_base_width` set, the learning rate follows the width, muP-style (Yang et al. 2022,
Table 3, for Adam): the hidden matrices (attention and MLP) train at learning_rate *
lr_base_width / d_model, while the embeddings (in, and out when untied) and the norm gains keep
learning_rate. Only the rates scale: initialisation and the output logits stay as they are.

MFU follows PaLM (appendix B): model FLOPs per token = 6 N + 12 L d T, where N counts the
parameters that take part in matrix products (all but the embedding lookup table; the output
projection counts, tied or not), over the peak FLOP/s of the devices used.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from ..devices import accelerator
from ..errors import ConfigError, Diagnostic
from .corpus import Corpus, eval_windows, sample_batch
from .model import ModelConfig, build_model, param_count

@dataclass(frozen=True)
class TrainConfig:
    tokens: int  # training budget D, rounded up to whole steps
    batch_size: int = 16  # sequences per step, split over the devices
    learning_rate: float = 3e-3
    lr_base_width: int | None = None  # muP-style: hidden matrices at learning_rate * lr_base_width / d_model
    warmup_fraction: float = 0.05  # of the steps, linear from 0
    min_lr_ratio: float = 0.1  # cosine decay ends at learning_rate * min_lr_ratio
    weight_decay: float = 0.1  # AdamW, on matrices only
    grad_clip: float = 1.0  # global norm
    eval_points: int = 4  # held-out evaluations, evenly spaced; the last one is the run's loss
    eval_batches: int = 4  # held-out windows per evaluation = eval_batches * batch_size
    seed: int = 0


@dataclass
class TrainResult:
    loss: float  # held-out loss at the end, nats per byte
    loss_curve: list[tuple[int, float]]  # (tokens trained, held-out loss) at each evaluation
    tokens: int  # tokens trained, D
    steps: int
    wall_time_s: float  # everything: compile, training, evaluation
    tokens_per_s: float  # training steps only, after the first (compiling) step
    mfu: float  # NaN where the device's peak is unknown (CPU)
    device: str  # e.g. "2 x cpu", "1 x NVIDIA H100 80GB HBM3"
    train_curve: list[float] = field(default_factory=list)  # training loss per step


def flops_per_token(config: ModelConfig) -> float:
    """Training FLOPs per token, 6 N + 12 L d T (PaLM appendix B)."""
    counts = param_count(config)
    matmul_params = counts["non_embedding"] + config.vocab_size * config.d_model  # + output projection
    return 6 * matmul_params + 12 * config.n_layers * config.d_model * config.seq_len


def peak_flops(devices: list, dtype) -> float:
    """Summed peak FLOP/s of `devices` for `dtype`; NaN for a device not in the table (CPUs)."""
    known = accelerator(devices[0].device_kind)
    if known is None:
        return math.nan
    return known.peak_flops.get(jnp.dtype(dtype).name, math.nan) * len(devices)


def library_versions() -> str:
    import flax

    return f"jax {jax.__version__}, flax {flax.__version__}, optax {optax.__version__}"


def make_optimizer(config: TrainConfig, steps: int, width: int) -> optax.GradientTransformation:
    """AdamW with warm-up and cosine decay, clipped; muP-style rates when config.lr_base_width is set."""
    warmup = max(1, round(config.warmup_fraction * steps))

    def adamw(learning_rate: float) -> optax.GradientTransformation:
        schedule = optax.warmup_cosine_decay_schedule(
            init_value=0.0, peak_value=learning_rate, warmup_steps=warmup,
            decay_steps=max(steps, warmup + 1), end_value=learning_rate * config.min_lr_ratio)
        decay_matrices_only = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)
        return optax.adamw(schedule, b1=0.9, b2=0.95, weight_decay=config.weight_decay, mask=decay_matrices_only)

    clip = optax.clip_by_global_norm(config.grad_clip)
    if config.lr_base_width is None:
        return optax.chain(clip, adamw(config.learning_rate))
    rates = {"hidden": adamw(config.learning_rate * config.lr_base_width / width),
             "base": adamw(config.learning_rate)}
    return optax.chain(clip, optax.multi_transform(rates, hidden_or_base))


def hidden_or_base(params):
    """'hidden' for the matrices inside the blocks (attention, MLP), 'base' for the rest
    (embeddings, the untied output projection, norm gains): the labels of muP-style rates."""
    def label(path, p):
        return "hidden" if path[0].key == "blocks" and p.ndim >= 2 else "base"
    return jax.tree_util.tree_map_with_path(label, params)


def train(model_config: ModelConfig, train_config: TrainConfig, corpus: Corpus,
          devices: list | None = None, show_progress: bool = False, description: str = "train") -> TrainResult:
    """Train a fresh model (seeded by train_config.seed) for train_config.tokens tokens."""
    devices = devices or jax.local_devices()
    B, T = train_config.batch_size, model_config.seq_len
    if B % len(devices):
        raise ConfigError(Diagnostic(f"batch_size {B} does not split evenly over {len(devices)} devices",
                                     hint=f"use a multiple of {len(devices)}"))
    started = time.perf_counter()
    steps = max(2, math.ceil(train_config.tokens / (B * T)))
    mesh = Mesh(np.array(devices), ("data",))
    replicated = NamedSharding(mesh, PartitionSpec())
    batch_sharded = NamedSharding(mesh, PartitionSpec("data"))  # (B, T + 1) split along B

    graphdef, params = nnx.split(build_model(model_config, seed=train_config.seed))
    optimizer = make_optimizer(train_config, steps, model_config.d_model)
    params = jax.device_put(params, replicated)
    opt_state = jax.device_put(optimizer.init(params), replicated)

    def loss_fn(params, batch):  # batch (B, T + 1) int32
        logits = nnx.merge(graphdef, params)(batch[:, :-1])  # (B, T, vocab) float32
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch[:, 1:]).mean()

    @partial(jax.jit, donate_argnums=(0, 1))
    def train_step(params, opt_state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    eval_loss = jax.jit(loss_fn)
    held_out = eval_windows(corpus.held_out, train_config.eval_batches * B, T).reshape(-1, B, T + 1)
    rng = np.random.default_rng(train_config.seed)
    eval_after = set(np.linspace(0, steps, train_config.eval_points + 1).round().astype(int)[1:])

    loss_curve, train_losses, train_seconds = [], [], 0.0
    bar = tqdm(total=steps, desc=description, unit="step", leave=False, disable=not show_progress)
    with bar:
        clock = time.perf_counter()
        for step in range(1, steps + 1):
            batch = jax.device_put(sample_batch(corpus.train, B, T, rng), batch_sharded)
            params, opt_state, loss = train_step(params, opt_state, batch)
            train_losses.append(loss)
            if step == 1:  # the first step compiles: leave it out of tokens/s
                loss.block_until_ready()
                clock = time.perf_counter()
            if step in eval_after:
                loss.block_until_ready()
                train_seconds += time.perf_counter() - clock
                losses = [eval_loss(params, jax.device_put(b, batch_sharded)) for b in held_out]
                loss_curve.append((step * B * T, float(np.mean(jax.device_get(losses)))))
                bar.set_postfix(eval_loss=f"{loss_curve[-1][1]:.3f}")
                clock = time.perf_counter()
            bar.update()

    tokens_per_s = (steps - 1) * B * T / train_seconds if train_seconds > 0 else math.nan
    return TrainResult(
        loss=loss_curve[-1][1], loss_curve=loss_curve, tokens=steps * B * T, steps=steps,
        wall_time_s=time.perf_counter() - started, tokens_per_s=tokens_per_s,
        mfu=flops_per_token(model_config) * tokens_per_s / peak_flops(devices, model_config.dtype),
        device=f"{len(devices)} x {devices[0].device_kind}",
        train_curve=[float(x) for x in jax.device_get(train_losses)],
    )
