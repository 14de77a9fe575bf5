"""Executors: every backend returns each task's value or its error, a dead worker is reported,
the sbatch file asks for what the tasks need, and a missing extra names the install command.

Task functions come from the standard library: Ray and submitit workers import a function by
its module, and these test modules are not importable there."""
import math
import operator
import os
import stat
import sys
from importlib.util import find_spec

import pytest

from infscale_dsl.cli import main
from infscale_dsl.errors import LawError
from infscale_dsl.executors import TASKS_PER_WORKER, Resources, SlurmOptions, SubmititExecutor, make_executor

needs_extras = pytest.mark.skipif(find_spec("ray") is None or find_spec("submitit") is None,
                                  reason="needs the [ray] and [slurm] extras")
BACKENDS = [("local", 1), ("local", 2), ("ray", 2), ("slurm-local", 2)]


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    """One local Ray instance of 2 CPUs for the module: the executor joins it, and starting one
    per test would cost seconds each."""
    if find_spec("ray") is None:
        yield
        return
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def run_all(on, workers, fn, tasks, tmp_path):
    options = SlurmOptions(tmp_path / "submitit", time_min=2)
    with make_executor(on, workers, slurm=options) as executor:
        return {outcome.index: outcome for outcome in executor.map(fn, tasks)}


@needs_extras
@pytest.mark.parametrize("on, workers", BACKENDS)
def test_values_and_errors_come_back_per_task(on, workers, tmp_path):
    outcomes = run_all(on, workers, operator.truediv, [(1, 2), (3, 0), (9, 3)], tmp_path)
    assert sorted(outcomes) == [0, 1, 2]
    assert (outcomes[0].value, outcomes[2].value) == (0.5, 3.0)
    assert outcomes[0].error is None and outcomes[2].error is None
    assert "ZeroDivisionError" in outcomes[1].error  # one failure, the others still ran


@needs_extras
@pytest.mark.parametrize("on, most_per_process", [("ray", TASKS_PER_WORKER), ("local", 2 * TASKS_PER_WORKER)])
def test_a_worker_process_is_replaced_after_a_few_tasks(on, most_per_process, tmp_path):
    """Long-lived workers pile up what jaxlib's compiler never gives back (see TASKS_PER_WORKER);
    a local pool of 2 is replaced after 2 * TASKS_PER_WORKER tasks, however they fell."""
    n_tasks = 4 * TASKS_PER_WORKER + 1
    outcomes = run_all(on, 2, os.getpid, [()] * n_tasks, tmp_path)  # (1 worker runs in this process)
    pids = [outcomes[i].value for i in range(n_tasks)]
    assert None not in pids and os.getpid() not in pids
    assert max(pids.count(pid) for pid in set(pids)) <= most_per_process
    assert len(set(pids)) >= math.ceil(n_tasks / most_per_process)


def test_local_pools_are_gone_when_their_tasks_are_done(tmp_path):
    """A pool left to close in the background raced Python's exit hook, which then printed an
    "Exception ignored ... Bad file descriptor" traceback under the last line of a benchmark."""
    import multiprocessing
    import threading

    outcomes = run_all("local", 2, os.getpid, [()] * (2 * TASKS_PER_WORKER + 1), tmp_path)  # two pools
    assert all(outcome.error is None for outcome in outcomes.values())
    assert multiprocessing.active_children() == []
    assert not [t for t in threading.enumerate() if "ExecutorManager" in type(t).__name__]


@needs_extras
@pytest.mark.parametrize("on, workers", [("local", 2), ("ray", 2)])
def test_a_dead_worker_is_an_error_not_a_hang(on, workers, tmp_path):
    outcomes = run_all(on, workers, os._exit, [(3,)], tmp_path)  # the worker process exits mid-task
    assert outcomes[0].value is None and ("died" in outcomes[0].error or "crash" in outcomes[0].error.lower())


@needs_extras
def test_sbatch_file_asks_for_each_task_s_resources(tmp_path, monkeypatch):
    # stand-ins for SLURM's commands: sbatch keeps the file it was given and answers with a job id
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("sbatch", f'cp "$1" {tmp_path}/job.sh\necho "Submitted batch job 4242"'), ("srun", "")):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    options = SlurmOptions(tmp_path / "submitit", partition="gpu", time_min=90, array_parallelism=2, account="lab")
    executor = SubmititExecutor(options).submit_executor(Resources(cpus=4, gpus=1, memory_gb=30.5))
    jobs = executor.map_array(operator.truediv, [1, 2, 3], [1, 1, 1])
    assert [job.job_id for job in jobs] == ["4242_0", "4242_1", "4242_2"]
    flags = {line.split("=")[0]: line.split("=", 1)[1] for line in (tmp_path / "job.sh").read_text().splitlines()
             if line.startswith("#SBATCH --") and "=" in line}
    assert {k: flags.get(f"#SBATCH --{k}") for k in
            ("partition", "time", "cpus-per-task", "gpus-per-task", "mem", "array", "account", "ntasks-per-node")} == {
        "partition": "gpu", "time": "90", "cpus-per-task": "4", "gpus-per-task": "1", "mem": "31GB",
        "array": "0-2%2", "account": "lab", "ntasks-per-node": "1"}


@pytest.mark.parametrize("on, module, extra", [("ray", "ray", "ray"), ("slurm", "submitit", "slurm"),
                                               ("slurm-local", "submitit", "slurm")])
def test_missing_extra_says_what_to_install(on, module, extra, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, module, None)  # `import ray` now fails, as without the extra
    with pytest.raises(LawError, match=rf"--on {on} needs the '{module}' package") as error:
        make_executor(on, slurm=SlurmOptions(tmp_path))
    assert error.value.diagnostics[0].hint == f"pip install 'infscale-dsl[{extra}]'"
    sweep = tmp_path / "sweep.toml"
    sweep.write_text("[[runs]]\nd_model = 8\nn_heads = 2\ntokens = 100\n")
    assert main(["sweep", str(sweep), "-o", str(tmp_path / "runs.parquet"), "--on", on]) == 2
    assert f"pip install 'infscale-dsl[{extra}]'" in capsys.readouterr().err


def test_unknown_backend():
    with pytest.raises(LawError, match="unknown executor 'k8s'"):
        make_executor("k8s")
