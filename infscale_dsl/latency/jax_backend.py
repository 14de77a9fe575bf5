"""The jax backends: greedy generation with an explicit KV cache, compiled whole.

`jax` (`Generator`) is the decode path built for speed. A decode step at batch 1 does little
arithmetic per layer, so on a GPU the number of kernels it launches, not memory, sets its time.
The training model's weights are therefore laid out once for decoding (`DecodeWeights`):
- the layers are stacked on a leading axis, and one `lax.scan` runs the whole stack: one
  compiled loop body instead of n_layers copies of it;
- q, k and v are one matrix, and so are the SwiGLU gate and up projections: one matmul each
  where there were three and two;
- the KV cache is carried through the scan and written in place, and its buffers are donated to
  the compiled decode loop, so XLA reuses them instead of copying the cache.
`forward` is the whole model on new tokens: the prefill calls it on the prompt, each decode step
on one token per sequence, inside one jitted `lax.fori_loop` over the output tokens.

`jax-unrolled` (`UnrolledGenerator`) is the same with the layer loop unrolled when traced. Inside
the loop each layer's weights are a dynamic slice of the stacked arrays, which XLA may copy
before the matmul reads them (XLA:CPU does: one more pass over the weights per token); unrolled,
they are static slices, read in place. Which is faster on a GPU is measured, not assumed
(benchmarks/gpu_latency.py times both).

`jax-unfused` (`UnfusedGenerator`) runs the training model's own `prefill` and `decode_step`
(infscale_dsl.nn.model): layer by layer, unrolled into the graph, with separate projections. It is
the reference that the fused path must match (tests/test_latency_fused.py), and what it is timed
against.

All three cast the weights to the compute dtype first: inference reads them in that dtype (training
keeps float32 masters, which a decode need not read), and build and trace with 64-bit types
off, whatever the process set (the fit switches them on globally): cache indices are int32, and
a decode has no use for 64-bit numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import nnx

from ..nn.model import KVCache, ModelConfig, Transformer, apply_rotary, build_model, init_cache
from .roofline import cpu_name
from .shapes import BenchSettings, Shape

RMS_NORM_EPSILON = 1e-6  # nnx.RMSNorm's default, which the training model uses


def device_name() -> str:
    device = jax.devices()[0]
    return cpu_name() if device.platform == "cpu" else device.device_kind


def library_versions() -> str:
    import flax

    return f"jax {jax.__version__}, flax {flax.__version__}"


def model_config(shape: Shape, dtype: str, max_len: int) -> ModelConfig:
    return ModelConfig(d_model=shape.d_model, n_layers=shape.n_layers, n_heads=shape.n_heads,
                       n_kv_heads=shape.n_kv_heads, ffn_multiplier=shape.ffn_multiplier,
                       vocab_size=shape.vocab, seq_len=max_len,
                       tie_embeddings=shape.tie_embeddings, dtype=getattr(jnp, dtype))


# ---------------------------------------------------------------------------------------------
# The fused decode path


@jax.tree_util.register_dataclass
@dataclass
class LayerWeights:
    """Every layer's weights, stacked: the leading axis is the layer (L)."""

    attn_norm: jax.Array  # (L, d)
    w_qkv: jax.Array  # (L, d, (n_heads + 2 n_kv_heads) * head_dim): wq | wk | wv
    w_o: jax.Array  # (L, n_heads * head_dim, d)
    mlp_norm: jax.Array  # (L, d)
    w_gate_up: jax.Array  # (L, d, 2 * hidden): w_gate | w_up
    w_down: jax.Array  # (L, hidden, d)


@jax.tree_util.register_dataclass
@dataclass
class DecodeWeights:
    embed: jax.Array  # (vocab, d); also the output projection when tied
    lm_head: jax.Array | None  # (d, vocab), None when tied to embed
    final_norm: jax.Array  # (d,)
    layers: LayerWeights


def decode_weights(model: Transformer, dtype) -> DecodeWeights:
    """The training model's weights in the fused, stacked layout, cast to `dtype`."""
    def stack(weight_of) -> jax.Array:  # weight_of(block) -> one layer's array; -> (L, ...)
        return jnp.stack([weight_of(block) for block in model.blocks]).astype(dtype)

    def concat(*linears) -> jax.Array:  # kernels (d, n_i) side by side -> (d, sum n_i)
        return jnp.concatenate([linear.kernel[...] for linear in linears], axis=1)

    layers = LayerWeights(
        attn_norm=stack(lambda b: b.attn_norm.scale[...]),
        w_qkv=stack(lambda b: concat(b.attn.wq, b.attn.wk, b.attn.wv)),
        w_o=stack(lambda b: b.attn.wo.kernel[...]),
        mlp_norm=stack(lambda b: b.mlp_norm.scale[...]),
        w_gate_up=stack(lambda b: concat(b.mlp.w_gate, b.mlp.w_up)),
        w_down=stack(lambda b: b.mlp.w_down.kernel[...]),
    )
    return DecodeWeights(
        embed=model.embed.embedding[...].astype(dtype),
        lm_head=None if model.lm_head is None else model.lm_head.kernel[...].astype(dtype),
        final_norm=model.final_norm.scale[...].astype(dtype),
        layers=layers,
    )


def rms_norm(x: jax.Array, scale: jax.Array) -> jax.Array:
    """As nnx.RMSNorm: the mean square in float32, the result in x's dtype."""
    mean_square = jnp.mean(jnp.square(x.astype(jnp.float32)), axis=-1, keepdims=True)
    return (x * (jax.lax.rsqrt(mean_square + RMS_NORM_EPSILON) * scale)).astype(x.dtype)


def forward(config: ModelConfig, weights: DecodeWeights, tokens: jax.Array,
            cache: KVCache, unroll: int | bool = 1) -> tuple[jax.Array, KVCache]:
    """tokens (B, T) at positions cache.length.. -> the next-token logits of the last position
    (B, vocab) in float32, and the cache with these T positions added. The prefill passes the
    prompt; a decode step passes one token per sequence (T = 1). `unroll` is lax.scan's: True
    unrolls the layer loop at trace time (static weight slices, no loop)."""
    c = config
    B, T = tokens.shape
    nh, nkv, hd = c.n_heads, c.n_kv_heads, c.head_dim
    positions = cache.length + jnp.arange(T, dtype=jnp.int32)  # (T,)
    key_positions = jnp.arange(cache.k.shape[2], dtype=jnp.int32)  # (max_len,)
    mask = (key_positions[None, :] <= positions[:, None])[None, None]  # (1, 1, T, max_len)
    zero = jnp.zeros((), jnp.int32)

    def layer(carry, inputs):
        x, k_cache, v_cache = carry  # x (B, T, d); caches (L, B, max_len, nkv, hd)
        w, index = inputs  # this layer's weights (LayerWeights without the L axis), its index
        qkv = rms_norm(x, w.attn_norm) @ w.w_qkv  # (B, T, (nh + 2 nkv) hd)
        q, k, v = jnp.split(qkv, [nh * hd, (nh + nkv) * hd], axis=-1)
        q = apply_rotary(q.reshape(B, T, nh, hd), positions, c.rope_base)  # (B, T, nh, hd)
        k = apply_rotary(k.reshape(B, T, nkv, hd), positions, c.rope_base)  # (B, T, nkv, hd)
        v = v.reshape(B, T, nkv, hd)  # (B, T, nkv, hd)
        at = (index, zero, cache.length, zero, zero)  # this layer, positions length..length+T
        k_cache = jax.lax.dynamic_update_slice(k_cache, k[None].astype(k_cache.dtype), at)
        v_cache = jax.lax.dynamic_update_slice(v_cache, v[None].astype(v_cache.dtype), at)
        # grouped-query attention over everything cached so far: (B, T, nh, hd)
        y = jax.nn.dot_product_attention(q, k_cache[index], v_cache[index], mask=mask,
                                         implementation=c.attention_impl)
        x = x + y.reshape(B, T, nh * hd) @ w.w_o
        gate, up = jnp.split(rms_norm(x, w.mlp_norm) @ w.w_gate_up, 2, axis=-1)  # (B, T, hidden) each
        x = x + (jax.nn.silu(gate) * up) @ w.w_down
        return (x, k_cache, v_cache), None

    x = weights.embed[tokens]  # (B, T, d)
    layer_inputs = (weights.layers, jnp.arange(c.n_layers, dtype=jnp.int32))
    (x, k, v), _ = jax.lax.scan(layer, (x, cache.k, cache.v), layer_inputs, unroll=unroll)
    x = rms_norm(x[:, -1], weights.final_norm)  # (B, d)
    lm_head = weights.embed.T if weights.lm_head is None else weights.lm_head  # (d, vocab)
    return (x @ lm_head).astype(jnp.float32), KVCache(k=k, v=v, length=cache.length + T)


class Generator:
    """Greedy generation of one shape with random weights on the fused path: `prefill()` then
    `decode(state)`. The harness times the two calls apart, calling `synchronize` before each
    clock read."""

    unroll = 1  # lax.scan's: one compiled layer body, run n_layers times

    def __init__(self, shape: Shape, settings: BenchSettings, batch: int):
        with jax.enable_x64(False):
            self._build(shape, settings, batch)

    def _build(self, shape: Shape, settings: BenchSettings, batch: int) -> None:
        dtype = getattr(jnp, settings.dtype)
        output_len = settings.output_len
        max_len = settings.prompt_len + output_len
        config = model_config(shape, settings.dtype, max_len)
        model = build_model(config, seed=settings.seed)  # the same weights as UnfusedGenerator's
        self.param_count = sum(w.size for w in jax.tree.leaves(nnx.state(model, nnx.Param)))
        self.weights = decode_weights(model, dtype)
        del model
        self.prompt = jax.random.randint(jax.random.key(settings.seed), (batch, settings.prompt_len),
                                         0, shape.vocab, dtype=jnp.int32)

        def prefill(weights, prompt):
            logits, cache = forward(config, weights, prompt, init_cache(config, batch, max_len, dtype), self.unroll)
            return jnp.argmax(logits, axis=-1).astype(jnp.int32), cache  # (B,), cache

        def decode(weights, first_token, cache):
            tokens = jnp.zeros((batch, output_len), jnp.int32).at[:, 0].set(first_token)  # (B, out)

            def step(i, carry):
                tokens, cache = carry
                logits, cache = forward(config, weights, tokens[:, i - 1, None], cache, self.unroll)  # (B, vocab)
                return tokens.at[:, i].set(jnp.argmax(logits, axis=-1).astype(jnp.int32)), cache

            return jax.lax.fori_loop(1, output_len, step, (tokens, cache))  # the cache comes out too,
            # so that XLA can run the loop in the donated input cache's buffers instead of a copy

        self._prefill = jax.jit(prefill)
        self._decode = jax.jit(decode, donate_argnums=(2,))

    def prefill(self):
        """The prompt through the model: (first generated token (B,), KV cache)."""
        with jax.enable_x64(False):
            return self._prefill(self.weights, self.prompt)

    def decode(self, state):
        """output_len - 1 more tokens in one compiled loop: all output tokens (B, output_len).
        `state` is used up: the fused path donates its cache."""
        first_token, cache = state
        with jax.enable_x64(False):
            tokens, _ = self._decode(self.weights, first_token, cache)
        return tokens

    def synchronize(self, result) -> None:
        jax.block_until_ready(result)


class UnrolledGenerator(Generator):
    """The fused path with its layer loop unrolled when traced: each layer reads its weights as a
    static slice of the stacked arrays, where the loop's dynamic slice may copy them first."""

    unroll = True


# ---------------------------------------------------------------------------------------------
# The training model's own decode path, layer by layer: the reference


class UnfusedGenerator(Generator):
    """Greedy generation through the training model's `prefill` and `decode_step`: a Python loop
    over layers unrolled into the compiled graph, separate q/k/v and gate/up projections, no
    donated buffers. Same weights, prompt and interface as `Generator`."""

    def _build(self, shape: Shape, settings: BenchSettings, batch: int) -> None:
        dtype = getattr(jnp, settings.dtype)
        output_len = settings.output_len
        max_len = settings.prompt_len + output_len
        config = model_config(shape, settings.dtype, max_len)
        graphdef, weights = nnx.split(build_model(config, seed=settings.seed))
        self.weights = jax.tree.map(lambda w: w.astype(dtype), weights)
        self.param_count = sum(w.size for w in jax.tree.leaves(self.weights))
        self.prompt = jax.random.randint(jax.random.key(settings.seed), (batch, settings.prompt_len),
                                         0, shape.vocab, dtype=jnp.int32)

        def prefill(weights, prompt):
            model = nnx.merge(graphdef, weights)
            logits, cache = model.prefill(prompt, init_cache(config, batch, max_len, dtype))
            return jnp.argmax(logits, axis=-1).astype(jnp.int32), cache  # (B,), cache

        def decode(weights, first_token, cache):
            model = nnx.merge(graphdef, weights)
            tokens = jnp.zeros((batch, output_len), jnp.int32).at[:, 0].set(first_token)  # (B, out)

            def step(i, carry):
                tokens, cache = carry
                logits, cache = model.decode_step(tokens[:, i - 1], cache)  # (B, vocab)
                return tokens.at[:, i].set(jnp.argmax(logits, axis=-1).astype(jnp.int32)), cache

            return jax.lax.fori_loop(1, output_len, step, (tokens, cache))

        self._prefill = jax.jit(prefill)
        self._decode = jax.jit(decode)
