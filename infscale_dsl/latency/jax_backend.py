"""The jax backend: the training model (infscale_dsl.nn.model) with its explicit KV cache.

Two compiled calls per generation: the prefill (prompt -> first token and cache) and the whole
decode loop, a `lax.fori_loop` inside one jitted function, so no Python runs per token and the
time per token is the device's own. Weights are cast to the compute dtype first: inference
reads them in that dtype (training keeps float32 masters, which a decode need not read).

The model is built and traced with 64-bit types off, whatever the process set (the fit switches
them on globally): its cache indices are int32, and a decode has no use for 64-bit numbers.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ..nn.model import ModelConfig, build_model, init_cache
from .roofline import cpu_name
from .shapes import BenchSettings, Shape


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


class Generator:
    """Greedy generation of one shape with random weights: `prefill()` then `decode(state)`.

    The harness times the two calls separately, calling `synchronize` before each clock read."""

    def __init__(self, shape: Shape, settings: BenchSettings, batch: int):
        with jax.enable_x64(False):
            self._build(shape, settings, batch)

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

            tokens, _ = jax.lax.fori_loop(1, output_len, step, (tokens, cache))
            return tokens

        self._prefill = jax.jit(prefill)
        self._decode = jax.jit(decode)

    def prefill(self):
        """The prompt through the model: (first generated token (B,), KV cache)."""
        with jax.enable_x64(False):
            return self._prefill(self.weights, self.prompt)

    def decode(self, state):
        """output_len - 1 more tokens in one compiled loop: all output tokens (B, output_len)."""
        first_token, cache = state
        with jax.enable_x64(False):
            return self._decode(self.weights, first_token, cache)

    def synchronize(self, result) -> None:
        jax.block_until_ready(result)
