"""A decoder-only transformer in Flax NNX, top to bottom: config, attention, MLP, block, model.

Pre-norm blocks with RMSNorm, rotary positions, a SwiGLU MLP and causal grouped-query attention
(n_kv_heads key/value heads shared by groups of query heads). Parameters are always float32;
`ModelConfig.dtype` is the compute dtype (bfloat16 on a GPU).

Training calls `model(tokens)`. Inference passes an explicit `KVCache` pytree in and out:
`model.prefill(prompt, cache)` then `model.decode_step(token, cache)` per new token. All three
go through the same `Attention.__call__`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from ..errors import ConfigError, Diagnostic
from . import sizes


@dataclass(frozen=True)
class ModelConfig(sizes.ShapeSizes):
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int | None = None  # None: as many as n_heads (plain multi-head attention)
    ffn_multiplier: float = 8 / 3  # SwiGLU hidden width / d_model, before rounding up to 32
    vocab_size: int = 256  # byte-level tokens
    seq_len: int = 128
    tie_embeddings: bool = True
    dtype: Any = jnp.float32  # compute dtype; parameters stay float32
    attention_impl: str | None = None  # jax.nn.dot_product_attention's: None (XLA) or "cudnn"
    rope_base: float = 10_000.0

    def __post_init__(self):
        if self.n_kv_heads is None:
            object.__setattr__(self, "n_kv_heads", self.n_heads)
        problems = []
        if min(self.d_model, self.n_layers, self.n_heads, self.n_kv_heads, self.seq_len) < 1:
            problems.append("d_model, n_layers, n_heads, n_kv_heads and seq_len must be positive")
        elif self.d_model % self.n_heads:
            problems.append(f"d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")
        elif self.n_heads % self.n_kv_heads:
            problems.append(f"n_heads {self.n_heads} is not a multiple of n_kv_heads {self.n_kv_heads}")
        elif self.head_dim % 2:
            problems.append(f"head_dim {self.head_dim} (d_model / n_heads) must be even for rotary positions")
        if problems:
            raise ConfigError([Diagnostic(p, hint="choose d_model = n_heads * an even head_dim, "
                                          "and n_heads a multiple of n_kv_heads") for p in problems])

    @property
    def aspect_ratio(self) -> float:
        return self.d_model / self.n_layers


def param_count(config: ModelConfig) -> dict[str, int]:
    """Parameter counts from the config alone (sizes.parameter_counts): total, non_embedding, embedding."""
    return sizes.parameter_counts(config.d_model, config.n_layers, config.n_heads, config.n_kv_heads,
                                  config.ffn_multiplier, config.vocab_size, config.tie_embeddings)


@jax.tree_util.register_dataclass
@dataclass
class KVCache:
    """Keys and values of every layer for the first `length` positions of each sequence."""

    k: jax.Array  # (n_layers, B, max_len, n_kv_heads, head_dim)
    v: jax.Array  # (n_layers, B, max_len, n_kv_heads, head_dim)
    length: jax.Array  # int32 scalar: positions filled so far


def init_cache(config: ModelConfig, batch: int, max_len: int, dtype: Any = None) -> KVCache:
    """An empty cache for `batch` sequences of up to `max_len` tokens (dtype: the compute dtype)."""
    shape = (config.n_layers, batch, max_len, config.n_kv_heads, config.head_dim)
    dtype = dtype or config.dtype
    return KVCache(k=jnp.zeros(shape, dtype), v=jnp.zeros(shape, dtype), length=jnp.zeros((), jnp.int32))


def apply_rotary(x: jax.Array, positions: jax.Array, base: float) -> jax.Array:
    """Rotate channel pairs (i, i + hd/2) of x (B, T, heads, hd) by angles position * base^(-2i/hd)."""
    half = x.shape[-1] // 2
    inv_freq = base ** (-jnp.arange(half, dtype=jnp.float32) / half)  # (hd/2,)
    angles = positions.astype(jnp.float32)[:, None] * inv_freq  # (T, hd/2)
    cos, sin = jnp.cos(angles)[None, :, None, :], jnp.sin(angles)[None, :, None, :]  # (1, T, 1, hd/2)
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1).astype(x.dtype)


def _linear(config: ModelConfig, n_in: int, n_out: int, rngs: nnx.Rngs, std: float = 0.02) -> nnx.Linear:
    return nnx.Linear(n_in, n_out, use_bias=False, dtype=config.dtype, param_dtype=jnp.float32,
                      kernel_init=nnx.initializers.normal(std), rngs=rngs)


def _residual_std(config: ModelConfig) -> float:
    return 0.02 / math.sqrt(2 * config.n_layers)  # GPT-2: scale projections into the residual stream


class Attention(nnx.Module):
    def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
        self.config = config
        d, hd = config.d_model, config.head_dim
        self.wq = _linear(config, d, config.n_heads * hd, rngs)
        self.wk = _linear(config, d, config.n_kv_heads * hd, rngs)
        self.wv = _linear(config, d, config.n_kv_heads * hd, rngs)
        self.wo = _linear(config, config.n_heads * hd, d, rngs, std=_residual_std(config))

    def __call__(self, x: jax.Array, positions: jax.Array, cache: KVCache | None = None, layer: int = 0):
        """x (B, T, d) at absolute `positions` (T,). With a cache, this layer's new keys/values are
        written at positions cache.length.. and the queries attend to everything cached so far.
        Returns (y (B, T, d), the updated cache or None)."""
        c = self.config
        B, T, _ = x.shape
        q = apply_rotary(self.wq(x).reshape(B, T, c.n_heads, c.head_dim), positions, c.rope_base)  # (B, T, nh, hd)
        k = apply_rotary(self.wk(x).reshape(B, T, c.n_kv_heads, c.head_dim), positions, c.rope_base)  # (B, T, nkv, hd)
        v = self.wv(x).reshape(B, T, c.n_kv_heads, c.head_dim)  # (B, T, nkv, hd)
        mask = None  # training: causal attention within these T tokens
        if cache is not None:
            # write in place into (n_layers, B, max_len, nkv, hd) at [layer, :, length:length+T];
            # all indices int32 like cache.length (plain ints would be int64 under jax x64)
            zero = jnp.zeros((), jnp.int32)
            at = (zero + layer, zero, cache.length, zero, zero)
            cache = KVCache(k=jax.lax.dynamic_update_slice(cache.k, k[None].astype(cache.k.dtype), at),
                            v=jax.lax.dynamic_update_slice(cache.v, v[None].astype(cache.v.dtype), at),
                            length=cache.length)
            k, v = cache.k[layer].astype(q.dtype), cache.v[layer].astype(q.dtype)  # (B, max_len, nkv, hd)
            key_positions = jnp.arange(k.shape[1], dtype=jnp.int32)
            mask = (key_positions[None, :] <= positions[:, None])[None, None]  # (1, 1, T, max_len)
        # grouped-query attention: each group of n_heads / n_kv_heads query heads shares one k, v
        y = jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=mask is None,
                                         implementation=c.attention_impl)  # (B, T, nh, hd)
        return self.wo(y.reshape(B, T, c.n_heads * c.head_dim)), cache


class MLP(nnx.Module):
    """SwiGLU: w_down(silu(w_gate x) * w_up x)."""

    def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
        d, hidden = config.d_model, config.ffn_hidden
        self.w_gate = _linear(config, d, hidden, rngs)
        self.w_up = _linear(config, d, hidden, rngs)
        self.w_down = _linear(config, hidden, d, rngs, std=_residual_std(config))

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.w_down(jax.nn.silu(self.w_gate(x)) * self.w_up(x))


class Block(nnx.Module):
    def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
        norm = dict(dtype=config.dtype, param_dtype=jnp.float32, rngs=rngs)
        self.attn_norm = nnx.RMSNorm(config.d_model, **norm)
        self.attn = Attention(config, rngs)
        self.mlp_norm = nnx.RMSNorm(config.d_model, **norm)
        self.mlp = MLP(config, rngs)

    def __call__(self, x, positions, cache=None, layer=0):
        attended, cache = self.attn(self.attn_norm(x), positions, cache, layer)
        x = x + attended
        return x + self.mlp(self.mlp_norm(x)), cache


class Transformer(nnx.Module):
    def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
        self.config = config
        self.embed = nnx.Embed(config.vocab_size, config.d_model, dtype=config.dtype,
                               param_dtype=jnp.float32,
                               embedding_init=nnx.initializers.normal(0.02), rngs=rngs)
        self.blocks = nnx.List([Block(config, rngs) for _ in range(config.n_layers)])
        self.final_norm = nnx.RMSNorm(config.d_model, dtype=config.dtype, param_dtype=jnp.float32, rngs=rngs)
        self.lm_head = None if config.tie_embeddings else _linear(config, config.d_model, config.vocab_size, rngs)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """tokens (B, T) int -> logits (B, T, vocab), float32."""
        x, _ = self._run_blocks(tokens, jnp.arange(tokens.shape[1], dtype=jnp.int32), cache=None)
        return self._logits(x)

    def prefill(self, tokens: jax.Array, cache: KVCache) -> tuple[jax.Array, KVCache]:
        """Feed a prompt (B, T) after the cache's `length` positions; logits of its last position (B, vocab)."""
        x, cache = self._run_blocks(tokens, cache.length + jnp.arange(tokens.shape[1], dtype=jnp.int32), cache)
        return self._logits(x[:, -1]), cache

    def decode_step(self, token: jax.Array, cache: KVCache) -> tuple[jax.Array, KVCache]:
        """One new token per sequence (B,) -> its next-token logits (B, vocab)."""
        return self.prefill(token[:, None], cache)

    def _run_blocks(self, tokens, positions, cache: KVCache | None):
        x = self.embed(tokens)  # (B, T, d)
        for layer, block in enumerate(self.blocks):
            x, cache = block(x, positions, cache, layer)
        if cache is not None:
            cache = KVCache(k=cache.k, v=cache.v, length=cache.length + tokens.shape[1])
        return self.final_norm(x), cache

    def _logits(self, x: jax.Array) -> jax.Array:
        logits = self.embed.attend(x) if self.lm_head is None else self.lm_head(x)
        return logits.astype(jnp.float32)


def build_model(config: ModelConfig, seed: int = 0) -> Transformer:
    return Transformer(config, nnx.Rngs(seed))
