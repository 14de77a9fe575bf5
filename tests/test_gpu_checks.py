"""The GPU checks' scripts (benchmarks/gpu_latency.py, benchmarks/gpu_sweep.py), in their tiny CPU
modes: what a GPU window relies on, checked before one is lent. The sweep trains tiny models,
keeps its table after every run, and skips what earlier windows finished; the decode part times
every backend and prints its table; the targets read the right columns."""
import importlib.util
import shutil
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from infscale_dsl.latency.shapes import load_config
from infscale_dsl.nn import runs
from infscale_dsl.nn.model import param_count
from infscale_dsl.nn.sweep import load_sweep

# torch in the same process as JAX's fits has crashed the suite (see pyproject's markers)
pytestmark = pytest.mark.torch

REPO = Path(__file__).resolve().parents[1]


def load_script(name: str):
    path = REPO / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_gpu_shapes_begin_with_the_reference_shapes():
    """Same N and non-embedding N as the H200 reference table, and 12 shapes for the latency law."""
    reference = pd.read_csv(REPO / "examples" / "latency" / "h200_decode_reference_1b.csv")
    shapes, settings = load_config(REPO / "examples" / "latency" / "gpu_shapes.toml")
    assert [(s.d_model, s.n_layers) for s in shapes[:5]] == list(zip(reference["d_model"], reference["n_layers"]))
    assert [s.params for s in shapes[:5]] == reference["params_total"].tolist()
    assert [s.non_embedding_params for s in shapes[:5]] == reference["params_non_embedding"].tolist()
    assert len({s.label for s in shapes}) == len(shapes) >= 12
    assert (settings.dtype, settings.batch_sizes, settings.prompt_len, settings.output_len) == (
        "bfloat16", (1,), 128, 256)


def test_the_gpu_sweep_is_designed_to_see_shape():
    """3 sizes, 3 to 4 shapes each of about equal size spanning >= 10x in R, 20 tokens per N."""
    path = REPO / "examples" / "sweeps" / "gpu_shape.toml"
    sizes = tomllib.loads(path.read_text())["grid"]["sizes"]
    runs_by_shape = {(run.model.d_model, run.model.n_layers): run for run in load_sweep(path).runs}
    assert len(sizes) == 3 and len(runs_by_shape) == sum(len(size["shapes"]) for size in sizes)
    non_embedding = []
    for size in sizes:
        size_runs = [runs_by_shape[shape["d_model"], shape["n_layers"]] for shape in size["shapes"]]
        counts = [param_count(run.model)["non_embedding"] for run in size_runs]
        ratios = [run.model.d_model / run.model.n_layers for run in size_runs]
        assert 3 <= len(size_runs) <= 4 and max(ratios) / min(ratios) >= 10 and max(counts) / min(counts) < 1.25
        assert all(run.train.tokens == 20 * param_count(run.model)["total"] for run in size_runs)
        non_embedding.append(sum(counts) / len(counts))
    assert 1.5e6 < non_embedding[0] and non_embedding[-1] < 25e6
    assert all(run.train.lr_base_width for run in runs_by_shape.values())


TARGET_CASES = [  # (rows: shape, backend, tpot_ms, floor_ms), expected (statement start, met)
    ([("1024x79", "jax", 2.5, 0.5), ("1024x79", "jax-unrolled", 1.9, 0.5), ("4096x5", "jax", 0.9, 0.76)],
     [("jax 1024x79 below 2 ms/token: 1.900 ms (jax-unrolled", True),
      ("jax 4096x5 within 1.5x of the memory floor", True)]),
    ([("1024x79", "jax", 2.5, 0.5), ("4096x5", "jax", 1.2, 0.76)],
     [("jax 1024x79 below 2 ms/token: 2.500 ms (jax;", False),
      ("jax 4096x5 within 1.5x of the memory floor", False)]),
]


@pytest.mark.parametrize("measured, expected", TARGET_CASES)
def test_targets_read_the_best_jax_path_and_the_floor(measured, expected):
    script = load_script("gpu_latency")
    rows = pd.DataFrame([dict(shape=s, d_model=int(s.split("x")[0]), n_layers=int(s.split("x")[1]), backend=b,
                              tpot_ms=t, floor_ms=f) for s, b, t, f in measured])
    checks = script.check_targets(script.compare(rows, reference=None))
    assert [(statement[:len(start)], met) for (statement, met), (start, _) in zip(checks, expected)] == expected


@pytest.mark.slow
def test_tiny_decode_part_times_every_backend_and_prints_its_table(tmp_path, capsys):
    pytest.importorskip("torch")
    script = load_script("gpu_latency")
    output = tmp_path / "decode.csv"
    assert script.main(["--tiny", "--quiet", "--only", "1024x79", "4096x5", "-o", str(output)]) == 0
    rows = pd.read_csv(output)
    assert sorted(zip(rows["shape"], rows["backend"])) == sorted([
        ("1024x79", "jax"), ("4096x5", "jax"), ("1024x79", "jax-unrolled"), ("1024x79", "jax-unfused"),
        ("1024x79", "torch"), ("4096x5", "torch")])
    assert (rows["tpot_ms"] > 0).all() and (rows["floor_ms"] > 0).all()
    assert script.main(["--tiny", "--table", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "jax-unfused_ms" in printed and "torch_ms" in printed and "targets apply to the full shapes" in printed


@pytest.mark.slow
def test_tiny_sweep_trains_keeps_every_run_and_skips_earlier_windows(tmp_path, capsys):
    script = load_script("gpu_sweep")
    out, windows = tmp_path / "out", tmp_path / "windows"
    assert script.main(["--tiny", "--out", str(out), "--windows", str(windows), "--work", str(tmp_path / "work")]) == 0
    table = runs.read_table(out / script.WINDOW_TABLE)
    sweep = load_sweep(script.TINY_SWEEP)
    assert sorted(table["config_hash"]) == sorted(sweep.config_hash(run) for run in sweep.runs)
    assert table["device"].str.endswith("cpu").all() and table["library_versions"].str.startswith("jax ").all()
    assert table["corpus"].str.startswith("python-sources:4: 4,000,000 bytes").all()
    assert (table["lr_base_width"] == 16).all()

    windows.mkdir()  # the window committed, then a second window: nothing left to train
    shutil.copy(out / script.WINDOW_TABLE, windows / "cpu_1.parquet")
    (out / script.WINDOW_TABLE).unlink()
    capsys.readouterr()
    assert script.main(["--tiny", "--out", str(out), "--windows", str(windows)]) == 0
    assert "4 finished in earlier windows" in capsys.readouterr().out
    assert not (out / script.WINDOW_TABLE).exists()


def test_a_run_that_would_not_fit_waits_for_the_next_window(tmp_path, capsys):
    script = load_script("gpu_sweep")
    assert script.main(["--tiny", "--out", str(tmp_path), "--windows", str(tmp_path), "--budget-s", "0"]) == 0
    printed = capsys.readouterr().out
    assert "stop: d8_L2_h2_kv2_D4136 needs about" in printed and "it and 3 more wait for the next window" in printed
    assert not (tmp_path / script.WINDOW_TABLE).exists()


def test_pace_learns_the_fixed_cost_and_the_rate_of_the_largest_run():
    script = load_script("gpu_sweep")
    sweep = load_sweep(script.SWEEP)
    small, large, next_run = sorted(sweep.runs, key=script.training_flops)[:3]

    class H200:
        device_kind = "NVIDIA H200"
    pace = script.Pace([H200()], "bfloat16")
    assert pace.predict(small) == pytest.approx(1.2 * (30 + script.training_flops(small) / (989e12 / 4)))
    for run, wall_s, tokens_per_s in ((small, 25.0, 2e6), (large, 60.0, 1e6)):
        pace.learn(run, dict(tokens_D=run.train.tokens, tokens_per_s=tokens_per_s, wall_time_s=wall_s))
    fixed = max(25.0 - small.train.tokens / 2e6, 60.0 - large.train.tokens / 1e6)  # the most a run paid
    rate = script.flops_per_token(large.model) * 1e6  # the larger run's training rate
    assert pace.predict(next_run) == pytest.approx(1.2 * (fixed + script.training_flops(next_run) / rate))
