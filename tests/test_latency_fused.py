"""The fused jax decode path (one lax.scan over stacked layers, fused projections, donated cache)
gives the same logits as the training model's own decode step and as the torch backend's model
loaded with the same weights, at the prefill and at every decode step. Tiny shapes, float32, CPU."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from infscale_dsl.latency import jax_backend
from infscale_dsl.latency.bench import benchmark_cases
from infscale_dsl.latency.shapes import BenchSettings, Shape
from infscale_dsl.nn.model import build_model, init_cache

# torch in the same process as JAX's fits has crashed the suite (see pyproject's markers)
pytestmark = pytest.mark.torch

SHAPES = {
    "untied, grouped-query": Shape(d_model=32, n_layers=3, n_heads=4, n_kv_heads=2, vocab=64),
    "tied, multi-head": Shape(d_model=32, n_layers=2, n_heads=4, n_kv_heads=4, vocab=50, tie_embeddings=True),
    "untied, multi-query, wide ffn": Shape(d_model=48, n_layers=1, n_heads=4, n_kv_heads=1, vocab=40,
                                           ffn_multiplier=4.0),
}
PROMPT_LEN, STEPS, BATCH = 5, 4, 2
MAX_LEN = PROMPT_LEN + STEPS


def logits_of_each_step(step, weights, config, tokens: np.ndarray) -> list[np.ndarray]:
    """Logits (B, vocab) after the prompt tokens[:, :PROMPT_LEN], then after each further token
    fed one at a time: `step(weights, tokens (B, T), cache) -> (logits, cache)`."""
    cache = init_cache(config, BATCH, MAX_LEN, jnp.float32)
    logits, cache = step(weights, jnp.asarray(tokens[:, :PROMPT_LEN]), cache)
    found = [np.asarray(logits)]
    for t in range(PROMPT_LEN, MAX_LEN - 1):
        logits, cache = step(weights, jnp.asarray(tokens[:, t:t + 1]), cache)
        found.append(np.asarray(logits))
    return found


def model_and_tokens(shape: Shape):
    config = jax_backend.model_config(shape, "float32", MAX_LEN)
    tokens = np.random.default_rng(0).integers(0, shape.vocab, size=(BATCH, MAX_LEN))
    return config, build_model(config, seed=1), tokens


@pytest.mark.parametrize("unroll", [1, True], ids=["scan", "unrolled"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_fused_path_gives_the_training_models_logits(shape, unroll):
    config, model, tokens = model_and_tokens(shape)
    graphdef, state = nnx.split(model)

    def unfused(state, tokens, cache):
        return nnx.merge(graphdef, state).prefill(tokens, cache)  # decode_step is prefill of one token

    fused_step = jax.jit(lambda weights, tokens, cache: jax_backend.forward(config, weights, tokens, cache, unroll),
                         donate_argnums=(2,))
    expected = logits_of_each_step(jax.jit(unfused), state, config, tokens)
    found = logits_of_each_step(fused_step, jax_backend.decode_weights(model, jnp.float32), config, tokens)
    for step, (want, got) in enumerate(zip(expected, found)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"step {step}")


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_fused_path_gives_the_torch_models_logits_for_the_same_weights(shape):
    torch = pytest.importorskip("torch")
    from infscale_dsl.latency.torch_model import KVCache, TransformerLM

    config, model, tokens = model_and_tokens(shape)
    weights = jax_backend.decode_weights(model, jnp.float32)
    torch_model = TransformerLM(shape, MAX_LEN).eval()
    load_jax_weights(torch_model, model, torch)
    cache = KVCache(shape, BATCH, MAX_LEN, torch.float32, "cpu")
    with torch.inference_mode():
        expected = [torch_model(torch.as_tensor(tokens[:, :PROMPT_LEN]), cache, start=0).numpy()]
        for t in range(PROMPT_LEN, MAX_LEN - 1):
            expected.append(torch_model(torch.as_tensor(tokens[:, t:t + 1]), cache, start=t).numpy())

    fused_step = jax.jit(lambda weights, tokens, cache: jax_backend.forward(config, weights, tokens, cache))
    found = logits_of_each_step(fused_step, weights, config, tokens)
    for step, (want, got) in enumerate(zip(expected, found)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"step {step}")


def load_jax_weights(torch_model, model, torch) -> None:
    """Copy the jax model's weights into the torch model (a torch Linear holds kernel.T)."""
    def put(parameter, value, transpose=False):
        value = np.asarray(value[...])
        parameter.data = torch.as_tensor((value.T if transpose else value).copy())

    put(torch_model.embed.weight, model.embed.embedding)
    put(torch_model.norm.weight, model.final_norm.scale)
    if model.lm_head is not None:
        put(torch_model.lm_head.weight, model.lm_head.kernel, transpose=True)
    for ours, theirs in zip(model.blocks, torch_model.blocks):
        put(theirs.attention_norm.weight, ours.attn_norm.scale)
        put(theirs.mlp_norm.weight, ours.mlp_norm.scale)
        for name, linear in (("query", ours.attn.wq), ("key", ours.attn.wk), ("value", ours.attn.wv),
                             ("out", ours.attn.wo)):
            put(getattr(theirs.attention, name).weight, linear.kernel, transpose=True)
        for name, linear in (("gate", ours.mlp.w_gate), ("up", ours.mlp.w_up), ("down", ours.mlp.w_down)):
            put(getattr(theirs.mlp, name).weight, linear.kernel, transpose=True)


def test_the_three_jax_generators_decode_the_same_tokens():
    shape = SHAPES["untied, grouped-query"]
    settings = BenchSettings(prompt_len=6, output_len=8, dtype="float32", repeats=2, warmup=1, seed=2)
    unfused = jax_backend.UnfusedGenerator(shape, settings, batch=2)
    expected = np.asarray(unfused.decode(unfused.prefill()))
    for fused in (jax_backend.Generator(shape, settings, batch=2), jax_backend.UnrolledGenerator(shape, settings, batch=2)):
        assert fused.param_count == unfused.param_count == shape.params
        np.testing.assert_array_equal(fused.prompt, unfused.prompt)
        np.testing.assert_array_equal(fused.decode(fused.prefill()), expected)


def test_cases_of_several_backends_come_back_in_order():
    shapes = list(SHAPES.values())[:2]
    settings = BenchSettings(prompt_len=4, output_len=4, dtype="float32", repeats=2, warmup=1)
    cases = [("jax", shapes[0]), ("jax-unfused", shapes[0]), ("jax", shapes[1])]
    table = benchmark_cases(cases, settings, quiet=True)
    assert table["backend"].tolist() == ["jax", "jax-unfused", "jax"]
    assert table["d_model"].tolist() == [s.d_model for _, s in cases]
    assert table["n_layers"].tolist() == [s.n_layers for _, s in cases]
    assert (table["tpot_ms"] > 0).all() and (table["floor_ms"] > 0).all()
