"""The transformer: parameter counts, KV-cache inference equal to the full forward pass, config errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from infscale_dsl.errors import LawError
from infscale_dsl.nn.model import ModelConfig, build_model, init_cache, param_count

CONFIGS = {
    "tied, multi-head": ModelConfig(d_model=32, n_layers=2, n_heads=4, seq_len=16),
    "tied, grouped-query": ModelConfig(d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, seq_len=16),
    "untied, multi-query": ModelConfig(d_model=48, n_layers=3, n_heads=4, n_kv_heads=1,
                                       tie_embeddings=False, seq_len=16),
    "untied, small vocab, wide ffn": ModelConfig(d_model=16, n_layers=1, n_heads=2, vocab_size=50,
                                                 ffn_multiplier=4.0, tie_embeddings=False, seq_len=8),
}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_param_count_matches_built_model(config):
    model = build_model(config)
    params = nnx.state(model, nnx.Param)
    built = sum(leaf.size for leaf in jax.tree.leaves(params))
    counts = param_count(config)
    assert counts["total"] == built
    assert counts["non_embedding"] + counts["embedding"] == counts["total"]
    embedding_tables = 1 if config.tie_embeddings else 2
    assert counts["embedding"] == embedding_tables * config.vocab_size * config.d_model
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))


def test_ffn_hidden_rounds_up_to_a_multiple_of_32():
    assert ModelConfig(d_model=64).ffn_hidden == 192  # 8/3 * 64 = 170.7
    assert ModelConfig(d_model=768, n_heads=12).ffn_hidden == 2048


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_prefill_then_decode_equals_full_forward(config):
    model = build_model(config, seed=3)
    tokens = jax.random.randint(jax.random.key(0), (2, 12), 0, config.vocab_size)
    full = model(tokens)  # (B, T, vocab)
    assert full.shape == (2, 12, config.vocab_size) and full.dtype == jnp.float32

    graphdef, state = nnx.split(model)
    prefill = jax.jit(lambda s, t, c: nnx.merge(graphdef, s).prefill(t, c))
    decode_step = jax.jit(lambda s, t, c: nnx.merge(graphdef, s).decode_step(t, c))
    cache = init_cache(config, batch=2, max_len=16, dtype=jnp.float32)
    logits, cache = prefill(state, tokens[:, :5], cache)
    step_logits = [logits]
    for position in range(5, 12):
        logits, cache = decode_step(state, tokens[:, position], cache)
        step_logits.append(logits)
    assert int(cache.length) == 12
    np.testing.assert_allclose(jnp.stack(step_logits, axis=1), full[:, 4:], atol=1e-4)


def test_cache_has_the_documented_layout():
    config = CONFIGS["tied, grouped-query"]
    cache = init_cache(config, batch=3, max_len=10, dtype=jnp.bfloat16)
    assert cache.k.shape == cache.v.shape == (2, 3, 10, 2, 8)
    assert cache.k.dtype == jnp.bfloat16 and cache.length.dtype == jnp.int32
    assert len(jax.tree.leaves(cache)) == 3  # a pytree: passes through jit and lax loops


def test_bfloat16_compute_keeps_float32_parameters_and_logits():
    config = ModelConfig(d_model=32, n_layers=1, n_heads=2, dtype=jnp.bfloat16, seq_len=8)
    model = build_model(config)
    logits = model(jnp.zeros((1, 8), jnp.int32))
    assert logits.dtype == jnp.float32
    assert {leaf.dtype for leaf in jax.tree.leaves(nnx.state(model, nnx.Param))} == {jnp.dtype(jnp.float32)}


@pytest.mark.parametrize("fields, message", [
    (dict(d_model=30, n_heads=4), "not a multiple of n_heads"),
    (dict(d_model=32, n_heads=4, n_kv_heads=3), "not a multiple of n_kv_heads"),
    (dict(d_model=12, n_heads=4), "must be even"),
    (dict(n_layers=0), "must be positive"),
])
def test_bad_shapes_raise_law_error(fields, message):
    with pytest.raises(LawError, match=message):
        ModelConfig(**fields)


def test_decoding_works_with_jax_x64_on():
    """A user may switch jax x64 on (fits scope it to themselves); the model must still decode under it."""
    config = CONFIGS["tied, grouped-query"]
    model = build_model(config, seed=0)
    tokens = jax.random.randint(jax.random.key(0), (1, 6), 0, config.vocab_size)
    with jax.enable_x64(True):
        cache = init_cache(config, batch=1, max_len=8, dtype=jnp.float32)
        logits, cache = model.prefill(tokens, cache)
        logits, cache = model.decode_step(jnp.argmax(logits, axis=-1).astype(jnp.int32), cache)
    assert logits.shape == (1, config.vocab_size) and int(cache.length) == 7
