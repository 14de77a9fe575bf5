"""Run independent tasks side by side: in this process, in local worker processes, as Ray tasks,
or as a SLURM job array through submitit.

Sweeps (one task per training run) and many-fit jobs (backtests, calibration: one task per fit)
hand their tasks to an executor and read an `Outcome` back as each task finishes, in the order
they finish. A task that raises, or whose worker dies, comes back as an error; the other tasks
go on. Ray and submitit are optional extras, imported only when asked for.

    with make_executor("ray", workers=2) as executor:
        for outcome in executor.map(fit_one, [(table, seed) for seed in range(20)]):
            ...
"""
from __future__ import annotations

import concurrent.futures
import math
import multiprocessing
import re
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import ConfigError, Diagnostic, require_extra

BACKENDS = ("local", "ray", "slurm", "slurm-local")  # slurm-local: the SLURM path, run on this machine
# Tasks a worker process runs (about; exactly, on Ray) before a fresh one replaces it. jaxlib 0.10's CPU
# compiler keeps what it maps for compiled programs (about 2,600 memory mappings per structure fitted);
# a process keeps only recent structures' programs (inference/programs.py), and a fresh worker
# also returns whatever else a long-lived process gathers.
TASKS_PER_WORKER = 4


@dataclass(frozen=True)
class Resources:
    """What one task needs: Ray schedules by it, SLURM requests it for each array task."""
    cpus: float = 1
    gpus: float = 0
    memory_gb: float | None = None


@dataclass(frozen=True)
class SlurmOptions:
    folder: Path  # submitit's job files and logs: on a filesystem the nodes share
    partition: str | None = None
    time_min: int = 60  # per array task
    array_parallelism: int = 256  # array tasks running at once
    account: str | None = None
    poll_s: float = 10.0  # how often the driver asks SLURM about its jobs


@dataclass
class Outcome:
    index: int  # the task's position in the list given to `map`
    value: Any = None
    error: str | None = None  # the task's traceback, or why its worker died
    log: str | None = None  # where the backend kept the worker's output, if it keeps it

    def error_line(self) -> str:
        """'ValueError: ...' from the error: its last line that is not a continuation (a hint, a frame)."""
        lines = [line for line in (self.error or "").strip().splitlines() if line and not line[0].isspace()]
        last = lines[-1] if lines else (self.error or "").strip()
        return re.sub(r"^(?:\w+\.)*(\w+): (?:error: )?", r"\1: ", last)  # infscale_dsl.errors.ConfigError -> ConfigError


class Executor:
    """`map(fn, tasks)` runs fn(*task) for every task and yields Outcomes as tasks finish."""
    in_process = False  # True: tasks share this process (and its terminal)

    def map(self, fn: Callable, tasks: list[tuple], resources: Resources = Resources()) -> Iterator[Outcome]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class InProcess(Executor):
    """One task after another in this process: no start-up cost, progress bars of each task."""
    in_process = True

    def map(self, fn, tasks, resources=Resources()):
        for index, task in enumerate(tasks):
            try:
                yield Outcome(index, value=fn(*task))
            except Exception:
                yield Outcome(index, error=traceback.format_exc())


class LocalProcesses(Executor):
    """Pools of fresh Python processes on this machine (spawned: JAX's threads do not survive
    fork). A pool takes `workers * TASKS_PER_WORKER` tasks and is then replaced, so no process
    runs more than that many (ProcessPoolExecutor's own max_tasks_per_child hung on Python 3.11)."""

    def __init__(self, workers: int):
        self.workers = workers

    def map(self, fn, tasks, resources=Resources()):
        tasks = list(tasks)
        per_pool = self.workers * TASKS_PER_WORKER
        for start in range(0, len(tasks), per_pool):
            yield from self._map_pool(fn, tasks[start:start + per_pool], start)

    def _map_pool(self, fn, tasks, first_index: int):
        context = multiprocessing.get_context("spawn")
        pool = concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=context)
        done = False
        try:
            futures = {pool.submit(fn, *task): first_index + i for i, task in enumerate(tasks)}
            for future in concurrent.futures.as_completed(futures):
                try:
                    yield Outcome(futures[future], value=future.result())
                except concurrent.futures.process.BrokenProcessPool:
                    yield Outcome(futures[future], error="a worker process died (killed, or out of memory)")
                except Exception as error:  # the worker's traceback rides along as the cause
                    yield Outcome(futures[future], error="".join(traceback.format_exception(error)))
            done = True
        finally:
            # Every task done: wait for the idle workers to exit. A pool left closing in the
            # background raced Python's exit hook ("Exception ignored ... Bad file descriptor").
            # Stopped early (an error, Ctrl-C): cancel what has not started and do not wait.
            pool.shutdown(wait=done, cancel_futures=True)


class RayExecutor(Executor):
    """Each task a Ray task with the resources it declares, on the cluster at `address` or on a
    local Ray instance of `workers` CPUs. A task whose worker dies is retried `max_retries` times."""

    def __init__(self, address: str | None = None, workers: int | None = None, max_retries: int = 1):
        self.ray = require_extra("ray", "ray", "--on ray")
        self.max_retries, self.local = max_retries, address is None
        self.started = not self.ray.is_initialized()
        if self.started:  # worker output goes to each task's own log, not over the progress bar
            with warnings.catch_warnings():  # Ray forks and execs at once: JAX's warning does not apply
                warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
                self.ray.init(address=address, num_cpus=None if address else workers,
                              include_dashboard=False, log_to_driver=False, configure_logging=False)

    def map(self, fn, tasks, resources=Resources()):
        ray = self.ray
        if self.local:  # a task asking for more than this machine has would wait forever
            available = ray.cluster_resources()
            for name, need in (("CPU", resources.cpus), ("GPU", resources.gpus)):
                if need > available.get(name, 0):
                    raise ConfigError(Diagnostic(
                        f"each task asks for {need:g} {name}s but the local Ray instance has {available.get(name, 0):g}",
                        hint="lower the task's resources, raise --workers, or pass --address of a bigger cluster"))
        memory = None if resources.memory_gb is None else int(resources.memory_gb * 2**30)
        remote = ray.remote(max_calls=TASKS_PER_WORKER)(_call).options(
            num_cpus=resources.cpus, num_gpus=resources.gpus, memory=memory, max_retries=self.max_retries)
        pending = {remote.remote(fn, *task): index for index, task in enumerate(tasks)}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                index = pending.pop(done[0])
                try:
                    yield Outcome(index, value=ray.get(done[0]))
                except ray.exceptions.RayError as error:  # the task raised, or its worker or node died
                    yield Outcome(index, error=str(error))
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


class SubmititExecutor(Executor):
    """A SLURM job array through submitit, one array task per task; with `local=True`, submitit's
    LocalExecutor runs the same jobs as processes here, `workers` at a time."""

    def __init__(self, options: SlurmOptions, local: bool = False, workers: int = 1):
        self.submitit = require_extra("submitit", "slurm", "--on slurm-local" if local else "--on slurm")
        self.options, self.local, self.workers = options, local, workers

    def map(self, fn, tasks, resources=Resources()):
        jobs: dict[int, Any] = {}
        waiting = list(enumerate(tasks))
        executor = self.submit_executor(resources)
        if not self.local:  # one sbatch: SLURM keeps array_parallelism of them running
            jobs = dict(enumerate(executor.map_array(fn, *zip(*tasks)))) if tasks else {}
            waiting = []
        try:
            while jobs or waiting:
                while self.local and waiting and len(jobs) < self.workers:
                    index, task = waiting.pop(0)
                    jobs[index] = executor.submit(fn, *task)
                finished = [index for index, job in jobs.items() if job.done()]
                for index in finished:
                    yield self._outcome(index, jobs.pop(index))
                if not finished:
                    time.sleep(0.2 if self.local else self.options.poll_s)
        finally:
            if self.local:  # local jobs die with their driver; SLURM's run on and save their results
                for job in jobs.values():
                    job.cancel(check=False)

    def submit_executor(self, resources: Resources):
        """A submitit executor with the parameters that go into the sbatch file."""
        folder = self.options.folder
        if self.local:
            executor = self.submitit.LocalExecutor(folder=folder)
            executor.update_parameters(timeout_min=self.options.time_min, gpus_per_node=math.ceil(resources.gpus))
            return executor
        executor = self.submitit.SlurmExecutor(folder=folder)
        executor.update_parameters(**slurm_parameters(self.options, resources))
        return executor

    def _outcome(self, index: int, job) -> Outcome:
        log = str(job.paths.stderr)
        try:
            return Outcome(index, value=job.result(), log=log)
        except Exception as error:  # FailedJobError carries the task's traceback; timeouts say so
            return Outcome(index, error=str(error), log=log)


def slurm_parameters(options: SlurmOptions, resources: Resources) -> dict:
    """submitit's SlurmExecutor parameters (sbatch's option names) for one task's needs."""
    parameters = dict(job_name="infscale-dsl", time=options.time_min, ntasks_per_node=1,
                      cpus_per_task=math.ceil(resources.cpus), array_parallelism=options.array_parallelism)
    if resources.gpus:
        parameters["gpus_per_task"] = math.ceil(resources.gpus)
    if resources.memory_gb is not None:
        parameters["mem"] = f"{math.ceil(resources.memory_gb)}GB"
    if options.partition:
        parameters["partition"] = options.partition
    if options.account:
        parameters["account"] = options.account
    return parameters


def make_executor(on: str = "local", workers: int = 1, address: str | None = None,
                  slurm: SlurmOptions | None = None) -> Executor:
    """The executor for `--on`: local (in this process at 1 worker, else a process pool), ray,
    slurm, or slurm-local."""
    if on not in BACKENDS:
        raise ConfigError(Diagnostic(f"unknown executor {on!r}", hint=f"use one of {', '.join(BACKENDS)}"))
    if on == "local":
        return InProcess() if workers <= 1 else LocalProcesses(workers)
    if on == "ray":
        return RayExecutor(address, workers)
    if slurm is None:
        raise ConfigError(Diagnostic(f"--on {on} needs a folder for submitit's job files"))
    return SubmititExecutor(slurm, local=on == "slurm-local", workers=workers)


def _call(fn: Callable, *args):
    return fn(*args)  # ray.remote takes Python functions only, not builtins such as operator.add
