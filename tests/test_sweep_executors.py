"""Sweeps on Ray and through submitit: the same runs table as a local sweep, a failed run reported
with its log while the others are saved, and a Ray sweep whose worker and driver are killed
resumes without losing a finished run."""
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infscale_dsl.cli import build_parser, main
from infscale_dsl.cli.sweep import placement
from infscale_dsl.errors import LawError
from infscale_dsl.executors import InProcess, Resources, SlurmOptions, make_executor
from infscale_dsl.nn import runs
from infscale_dsl.nn.sweep import RunsFailed, load_sweep, run_sweep
from test_sweep import SWEEP as TINY_SWEEP

needs_extras = pytest.mark.skipif(find_spec("ray") is None or find_spec("submitit") is None,
                                reason="needs the [ray] and [slurm] extras")
REPO = Path(__file__).resolve().parents[1]
SWEEP = TINY_SWEEP + "{extra}"  # the tiny sweep of test_sweep.py, plus executor settings
MACHINE_COLUMNS = ["wall_time_s", "tokens_per_s", "device"]  # machine facts: may differ between executors (a Ray worker sees its own CPU devices)
quiet = lambda _: None


@pytest.fixture
def sweep_file(tmp_path):
    """Tiny models (a few thousand parameters, a few dozen steps) on a small text file."""
    def write(budgets="0.05", extra=""):
        corpus = tmp_path / "corpus.txt"
        corpus.write_text("Shall I compare thee to a summer's day? Thou art more lovely and more temperate. " * 40)
        path = tmp_path / "sweep.toml"
        path.write_text(SWEEP.format(corpus=corpus, budgets=budgets, extra=extra))
        return path
    return write


@pytest.fixture(scope="module")
def ray_instance():
    """A real local Ray instance limited to 2 CPUs, shared by the tests that join it."""
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow
@needs_extras
def test_local_ray_and_submitit_give_the_same_table(sweep_file, tmp_path, ray_instance):
    sweep = load_sweep(sweep_file())
    tables = {}
    for on in ("local", "ray", "slurm-local"):
        output = tmp_path / f"{on}.parquet"
        workers = 1 if on == "local" else 2
        with make_executor(on, workers, slurm=SlurmOptions(tmp_path / "submitit", time_min=5)) as executor:
            assert run_sweep(sweep, output, log=quiet, executor=executor) == (2, 0)
        tables[on] = pd.read_parquet(output).drop(columns=MACHINE_COLUMNS)
        assert len(list((tmp_path / f"{on}.parquet.logs").glob("*.log"))) == 2
    # same configs and seeds; a worker process's multi-threaded float reductions may round the
    # last digits of a loss differently from this process's (seen: 5.50939703 against 5.50939655)
    for on in ("ray", "slurm-local"):
        curves = [np.asarray([json.loads(c) for c in t["loss_curve"]], dtype=float) for t in (tables[on], tables["local"])]
        np.testing.assert_allclose(*curves, rtol=1e-6)  # (runs, checkpoints, [tokens, loss])
        pd.testing.assert_frame_equal(tables[on].drop(columns="loss_curve"),
                                      tables["local"].drop(columns="loss_curve"), check_exact=False, rtol=1e-6)


@needs_extras
def test_a_failed_run_is_reported_with_its_log_and_the_others_are_saved(sweep_file, tmp_path, ray_instance, capsys):
    # the explicit run's windows (seq_len 512) are longer than the held-out text (324 bytes)
    path = sweep_file(extra="[[runs]]\nd_model = 8\nn_heads = 2\nseq_len = 512\ntokens = 100\n")
    output = tmp_path / "runs.parquet"
    assert main(["sweep", str(path), "-o", str(output), "--on", "ray", "--workers", "2", "--quiet"]) == 1
    error = capsys.readouterr().err
    failed = re.search(r"run (\S+) failed: ConfigError: held-out text has \d+ bytes.*\n.*its log: (\S+\.log)", error)
    assert failed and failed.group(1) == load_sweep(path).runs[0].name, error
    assert "1 of 3 runs failed; the others are saved" in error and "rerun the same command" in error
    assert "Traceback" in Path(failed.group(2)).read_text()  # the worker's own traceback, kept
    assert len(pd.read_parquet(output)) == 2


def test_in_process_failure_does_not_stop_the_sweep(sweep_file, tmp_path):
    path = sweep_file(extra="[[runs]]\nd_model = 8\nn_heads = 2\nseq_len = 512\ntokens = 100\n")
    sweep = load_sweep(path)
    sweep = replace(sweep, runs=sweep.runs[:2])  # the failing run (explicit runs come first), then one more
    with pytest.raises(RunsFailed) as failure:
        run_sweep(sweep, tmp_path / "runs.parquet", log=quiet, executor=InProcess())
    assert len(failure.value.failures) == 2  # the failed run, then the summary
    assert len(pd.read_parquet(tmp_path / "runs.parquet")) == 1  # the run after the failed one trained


@needs_extras
@pytest.mark.slow
def test_ray_sweep_loses_no_finished_run_when_a_worker_and_the_driver_are_killed(sweep_file, tmp_path):
    path, output = sweep_file(budgets="0.05, 0.1"), tmp_path / "runs.parquet"
    command = [sys.executable, "-m", "infscale_dsl", "sweep", str(path), "-o", str(output), "--on", "ray"]
    env = os.environ | {"PYTHONPATH": str(REPO), "CI": "1"}
    # its own session: the driver's local Ray instance can be cleaned up with it, by process group
    driver = subprocess.Popen(command + ["--workers", "1"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    logs, parts = runs.logs_dir(output), runs.parts_dir(output)
    try:
        worker = int(_wait_for(lambda: re.search(r"pid (\d+)", _read_logs(logs)), driver).group(1))
        os.kill(worker, signal.SIGKILL)  # Ray retries its run on a fresh worker
        _wait_for(lambda: list(parts.glob("*.parquet")), driver)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    finally:  # what the driver started and left behind: its Ray instance's agents
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
    finished = {p.name: p.stat().st_mtime_ns for p in parts.glob("*.parquet")}
    assert 1 <= len(finished) < 4, "kill the driver after its first run and before its last"

    resumed = subprocess.run(command + ["--workers", "2"], env=env, cwd=tmp_path, capture_output=True,
                             text=True, check=True)
    assert f"{len(finished)} already finished, {4 - len(finished)} to train" in resumed.stdout
    assert {p.name: p.stat().st_mtime_ns for p in parts.glob("*.parquet") if p.name in finished} == finished
    table = pd.read_parquet(output)
    assert len(table) == 4 and table["config_hash"].is_unique


PLACEMENT = """
[resources]
cpus = 4
gpus = 1
memory_gb = 32
[slurm]
partition = "gpu"
time_min = 30
account = "lab"
"""


@pytest.mark.parametrize("options, resources, slurm", [
    ([], Resources(cpus=4, gpus=1, memory_gb=32), dict(partition="gpu", time_min=30, account="lab")),
    (["--gpus-per-run", "2", "--partition", "h100", "--time-min", "600"], Resources(cpus=4, gpus=2, memory_gb=32),
     dict(partition="h100", time_min=600, account="lab")),
])
def test_resources_and_slurm_come_from_the_file_or_the_options(sweep_file, tmp_path, options, resources, slurm):
    path = sweep_file(extra=PLACEMENT)
    args = build_parser().parse_args(["sweep", str(path), "-o", str(tmp_path / "runs.parquet"), *options])
    sweep, options = placement(args, load_sweep(path))
    assert sweep.resources == resources
    assert options == SlurmOptions(tmp_path / "runs.parquet.submitit", **slurm)
    assert sweep.config_hash(sweep.runs[0]) == load_sweep(sweep_file()).config_hash(sweep.runs[0])  # no effect on results


def test_typo_in_slurm_table_gets_a_suggestion(sweep_file):
    with pytest.raises(LawError) as error:
        load_sweep(sweep_file(extra="[slurm]\npartiton = 'gpu'\n"))
    assert "unknown key 'partiton' in [slurm]" in str(error.value)
    assert error.value.diagnostics[0].hint == "did you mean 'partition'?"


def _read_logs(folder: Path) -> str:
    return "".join(log.read_text() for log in folder.glob("*.log")) if folder.is_dir() else ""


def _wait_for(condition, process, timeout_s=300):
    deadline = time.monotonic() + timeout_s
    while not (found := condition()):
        assert process.poll() is None and time.monotonic() < deadline, "the sweep ended or stalled first"
        time.sleep(0.05)
    return found
