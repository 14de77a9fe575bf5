"""Latency benchmark: the decode loops generate what a full forward pass would, both backends
build models of the counted size, the harness's rows have the documented schema, and the
roofline arithmetic matches a hand computation. Tiny shapes only."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from flax import nnx

from infscale_dsl.latency import jax_backend
from infscale_dsl.latency.bench import benchmark, summarize
from infscale_dsl.latency.roofline import DeviceSpec, add_roofline, decode_floor_ms, device_spec
from infscale_dsl.latency.shapes import BenchSettings, Shape
from infscale_dsl.nn.model import build_model, param_count

# torch in the same process as JAX's fits has crashed the suite (see pyproject's markers)
pytestmark = pytest.mark.torch

TINY = Shape(d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab=64, name="tiny")
SETTINGS = BenchSettings(prompt_len=5, output_len=6, dtype="float32", repeats=2, warmup=1, seed=3)
SHAPES = [
    TINY,
    Shape(d_model=48, n_layers=3, n_heads=3, n_kv_heads=3, vocab=80, ffn_multiplier=3.0),
    Shape(d_model=64, n_layers=1, n_heads=8, n_kv_heads=1, vocab=50, tie_embeddings=True),
]


def greedy_by_full_forward(logits_at, prompt: np.ndarray, n_tokens: int) -> np.ndarray:
    """Greedy tokens from re-running the whole sequence each step: what a KV cache must match.
    `logits_at(sequence, t)` gives the logits after position t (B, vocab) of a causal model, so
    the not-yet-generated tail of `sequence` may hold anything."""
    batch, prompt_len = prompt.shape
    sequence = np.zeros((batch, prompt_len + n_tokens), dtype=prompt.dtype)
    sequence[:, :prompt_len] = prompt
    for t in range(prompt_len, prompt_len + n_tokens):
        sequence[:, t] = np.asarray(logits_at(sequence, t - 1)).argmax(-1)
    return sequence[:, prompt_len:]


def test_jax_decode_loop_generates_the_full_forward_tokens():
    batch = 2
    generator = jax_backend.Generator(TINY, SETTINGS, batch)
    first_token, cache = generator.prefill()
    tokens = np.asarray(generator.decode((first_token, cache)))  # (B, output_len)

    max_len = SETTINGS.prompt_len + SETTINGS.output_len
    config = jax_backend.model_config(TINY, "float32", max_len)
    graphdef, weights = nnx.split(build_model(config, seed=SETTINGS.seed))
    forward = jax.jit(lambda tokens: nnx.merge(graphdef, weights)(tokens))  # (B, T, vocab)
    expected = greedy_by_full_forward(lambda seq, t: forward(jnp.asarray(seq))[:, t],
                                      np.asarray(generator.prompt), SETTINGS.output_len)
    assert tokens.shape == (batch, SETTINGS.output_len)
    np.testing.assert_array_equal(tokens, expected)


def test_torch_decode_loop_generates_the_full_forward_tokens():
    torch = pytest.importorskip("torch")
    from infscale_dsl.latency.torch_backend import Generator
    from infscale_dsl.latency.torch_model import KVCache

    generator = Generator(TINY, SETTINGS, batch=2)
    tokens = generator.decode(generator.prefill()).numpy()

    def logits_at(sequence, t):  # a fresh cache each time: the sequence up to t as one prompt
        cache = KVCache(TINY, 2, t + 1, torch.float32, "cpu")
        with torch.inference_mode():
            return generator.model(torch.as_tensor(sequence[:, :t + 1]), cache, start=0)

    expected = greedy_by_full_forward(logits_at, generator.prompt.numpy(), SETTINGS.output_len)
    np.testing.assert_array_equal(tokens, expected)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s.d_model}x{s.n_layers}")
def test_both_backends_build_models_of_the_counted_size(shape):
    pytest.importorskip("torch")
    from infscale_dsl.latency.torch_backend import Generator as TorchGenerator

    counts = param_count(jax_backend.model_config(shape, "float32", 16))
    assert (shape.params, shape.non_embedding_params) == (counts["total"], counts["non_embedding"])
    assert jax_backend.Generator(shape, SETTINGS, 1).param_count == shape.params
    assert TorchGenerator(shape, SETTINGS, 1).param_count == shape.params


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_harness_rows_have_the_documented_schema(backend):
    if backend == "torch":
        pytest.importorskip("torch")
    settings = BenchSettings(batch_sizes=(1, 2), prompt_len=4, output_len=4, dtype="float32",
                             repeats=3, warmup=1)
    table = benchmark([TINY], settings, backend=backend, quiet=True)

    assert len(table) == 2  # one row per batch size
    for column in ("ttft_ms", "ttft_p90_ms", "ttft_cv", "tpot_ms", "tpot_p90_ms", "tpot_cv",
                   "floor_ms", "mem_floor_ms", "compute_floor_ms", "tpot_over_floor"):
        assert pd.api.types.is_float_dtype(table[column]), column
        assert (table[column] > 0).all(), column
    assert (table["tpot_p90_ms"] >= table["tpot_ms"]).all()
    assert table[["d_model", "n_layers", "n_heads", "n_kv_heads", "vocab", "batch"]].values.tolist() == [
        [32, 2, 4, 2, 64, 1], [32, 2, 4, 2, 64, 2]]
    assert table["params_N"].tolist() == [TINY.params] * 2
    assert table["non_embedding_params"].tolist() == [TINY.non_embedding_params] * 2
    assert set(table["backend"]) == {backend}
    assert table["device"].str.startswith("cpu: ").all()
    assert table["library_versions"].str.startswith(backend).all()
    assert set(table["dtype"]) == {"float32"}
    assert (table[["prompt_len", "output_len", "repeats"]] == [4, 4, 3]).all().all()


def test_summary_is_median_p90_and_cv():
    median, p90, cv = summarize([0.001, 0.002, 0.003, 0.004, 0.010])
    assert median == pytest.approx(3.0)
    assert p90 == pytest.approx(4.0 + 0.6 * 6.0)  # linear interpolation between 4 and 10 ms
    values = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    assert cv == pytest.approx(values.std(ddof=1) / values.mean())


def test_roofline_by_hand():
    """1B bf16 parameters, 10 layers, 8 KV heads of 128, batch 2, mean context 100 on an H200:
    weights 2e9 B + KV cache 2 * 10 * 2 * 100 * 8 * 128 * 2 B = 8.192e6 B, over 4.8e12 B/s."""
    spec = device_spec("NVIDIA H200")
    assert spec == DeviceSpec("NVIDIA H200", 4.8e12, 989e12)
    memory_ms, compute_ms = decode_floor_ms(10**9, 10, 8, 128, 2, 100, "bfloat16", spec)
    assert memory_ms == pytest.approx(1e3 * (2e9 + 8.192e6) / 4.8e12)  # 0.41837 ms
    assert compute_ms == pytest.approx(1e3 * 4e9 / 989e12)  # 0.0040 ms

    row = pd.DataFrame([dict(params_N=10**9, n_layers=10, n_kv_heads=8, d_model=1024, n_heads=8,
                             batch=2, prompt_len=68, output_len=64, dtype="bfloat16", tpot_ms=0.83674)])
    row = add_roofline(row, spec).iloc[0]
    assert row["floor_ms"] == pytest.approx(memory_ms)
    assert row["tpot_over_floor"] == pytest.approx(2.0, rel=1e-4)


def test_unknown_devices_get_no_floor_and_known_gpus_are_matched():
    assert device_spec("NVIDIA H100 80GB HBM3").memory_bandwidth == 3.35e12
    assert device_spec("NVIDIA A100-SXM4-40GB").peak_flops == 312e12
    assert device_spec("Some Accelerator") is None
    row = pd.DataFrame([dict(tpot_ms=1.0)])
    assert add_roofline(row, None)["floor_ms"].isna().all()


def test_the_jax_backend_works_with_x64_on():
    """The fit switches 64-bit types on for the whole process; generation must not mind."""
    with jax.enable_x64(True):
        generator = jax_backend.Generator(TINY, SETTINGS, 1)
        tokens = generator.decode(generator.prefill())
    assert tokens.dtype == jnp.int32 and tokens.shape == (1, SETTINGS.output_len)
