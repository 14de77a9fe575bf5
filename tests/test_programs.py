"""Compiled programs kept on disk (inference/programs.py): a new process runs a stored program
without tracing it, with the same results, and a damaged file is compiled again."""
import json
import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from infscale_dsl.inference import programs
from infscale_dsl.inference.programs import StoredProgram

REPO = Path(__file__).resolve().parents[1]

# a decomposition (jaxlib registers its LAPACK kernels only when it lowers one: a process that
# loads the program must do so first) and a loop, as the sampler's programs have
SCRIPT = textwrap.dedent("""
    import json, jax, jax.numpy as jnp, numpy as np
    from infscale_dsl.inference.programs import StoredProgram
    traced = []

    def f(x):
        traced.append(1)  # runs only when JAX traces f
        values, _ = jnp.linalg.eigh(x @ x.T)
        return jax.lax.fori_loop(0, 10, lambda i, v: v * 0.9 + 1.0, values)

    program = StoredProgram(("test program", 1), jax.jit(f))
    x = np.arange(12.0).reshape(3, 4) / 10
    print(json.dumps({"value": np.asarray(program(x)).tolist(), "traced": len(traced)}))
""")


def run_script(cache: Path) -> dict:
    env = os.environ | {"INFSCALE_DSL_CACHE": str(cache), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_a_new_process_runs_the_stored_program_without_tracing_it(tmp_path):
    first, second = run_script(tmp_path), run_script(tmp_path)
    assert first["traced"] == 1 and second["traced"] == 0
    assert second["value"] == first["value"]
    assert len(list((tmp_path / "programs").glob("*.bin"))) == 1


def test_a_damaged_program_is_compiled_again(tmp_path):
    first = run_script(tmp_path)
    (stored,) = (tmp_path / "programs").glob("*.bin")
    stored.write_bytes(b"cut short")
    again = run_script(tmp_path)
    assert again["traced"] == 1 and again["value"] == first["value"]
    assert stored.stat().st_size > 1000  # stored anew


def test_a_cache_that_cannot_be_written_costs_a_compile_not_the_run(tmp_path, monkeypatch):
    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    monkeypatch.setenv("INFSCALE_DSL_CACHE", str(blocked))
    program = StoredProgram(("cannot store",), jax.jit(lambda x: x + 1))
    assert float(program(jnp.zeros(()))) == 1.0


def test_each_key_and_argument_shape_has_its_own_program(tmp_path, monkeypatch):
    monkeypatch.setenv("INFSCALE_DSL_CACHE", str(tmp_path))
    double, triple = (StoredProgram(("scale", k), jax.jit(lambda x, k=k: k * x)) for k in (2, 3))
    assert float(double(jnp.ones(2))[0]) == 2.0 and float(triple(jnp.ones(2))[0]) == 3.0
    assert double(jnp.ones(3)).shape == (3,)
    assert len(list((tmp_path / "programs").glob("*.bin"))) == 3


def traced_where(threads: list[str]):
    """sin(x) * 2, noting the thread that traces it (tracing happens once per compile)."""
    def f(x):
        threads.append(threading.current_thread().name)
        return jnp.sin(x) * 2
    return f


X = jax.ShapeDtypeStruct((3,), jnp.float32)  # the argument, as known before its values are


def test_a_program_compiled_ahead_on_another_thread_is_taken_by_the_call(tmp_path, monkeypatch):
    monkeypatch.setenv("INFSCALE_DSL_CACHE", str(tmp_path))
    cache_setting = jax.config.jax_enable_compilation_cache
    threads = []
    program = StoredProgram(("ahead",), jax.jit(traced_where(threads)))
    with ThreadPoolExecutor(1, thread_name_prefix="ahead") as pool:
        assert pool.submit(program.compile_ahead, X).result()  # compiled there
    np.testing.assert_allclose(program(jnp.ones(3, jnp.float32)), 2 * np.sin(np.ones(3)), rtol=1e-6)
    assert threads == ["ahead_0"]  # the call compiled nothing
    assert not program.compile_ahead(X)  # held: nothing to do
    assert program.available(X) and not program.available(jax.ShapeDtypeStruct((4,), jnp.float32))
    # stored: a new process's program (a new StoredProgram) is loaded by its call, not compiled ahead
    again = StoredProgram(("ahead",), jax.jit(traced_where(threads)))
    assert again.available(X) and not again.compile_ahead(X)
    np.testing.assert_allclose(again(jnp.ones(3, jnp.float32)), 2 * np.sin(np.ones(3)), rtol=1e-6)
    assert threads == ["ahead_0"]
    assert jax.config.jax_enable_compilation_cache == cache_setting  # switched back after compiling


def test_a_call_while_the_program_compiles_ahead_waits_for_it(tmp_path, monkeypatch):
    monkeypatch.setenv("INFSCALE_DSL_CACHE", str(tmp_path))
    threads, tracing, release = [], threading.Event(), threading.Event()
    slow = traced_where(threads)

    def f(x):
        tracing.set()
        release.wait(10)  # held on the background thread until the call below is under way
        return slow(x)

    program = StoredProgram(("ahead, slow",), jax.jit(f))
    with ThreadPoolExecutor(1, thread_name_prefix="ahead") as pool:
        ahead = pool.submit(program.compile_ahead, X)
        assert tracing.wait(10)
        threading.Timer(0.3, release.set).start()
        value = program(jnp.ones(3, jnp.float32))  # waits for the background's program
        assert ahead.result()
        assert not program.compile_ahead(X)  # made, by the other thread: nothing to do
    assert threads == ["ahead_0"] and float(value[0]) == pytest.approx(2 * np.sin(1.0), rel=1e-6)


def test_a_program_that_fails_to_compile_ahead_is_compiled_by_its_call(tmp_path, monkeypatch):
    monkeypatch.setenv("INFSCALE_DSL_CACHE", str(tmp_path))
    threads = []
    works = traced_where(threads)

    def f(x):
        if threading.current_thread().name.startswith("ahead"):
            raise RuntimeError("failed on the background thread")
        return works(x)

    program = StoredProgram(("ahead, failing",), jax.jit(f))
    with ThreadPoolExecutor(1, thread_name_prefix="ahead") as pool:
        with pytest.raises(RuntimeError, match="background"):
            pool.submit(program.compile_ahead, X).result()
    assert float(program(jnp.ones(3, jnp.float32))[0]) == pytest.approx(2 * np.sin(1.0), rel=1e-6)
    assert threads == ["MainThread"]


def test_the_folder_is_trimmed_least_recently_used_first(tmp_path):
    for age, name in enumerate(["new", "middle", "old"]):
        path = tmp_path / f"{name}.bin"
        path.write_bytes(b"x" * 100)
        os.utime(path, (1e9 - age, 1e9 - age))
    programs._trim(tmp_path, 250)
    assert sorted(p.stem for p in tmp_path.glob("*.bin")) == ["middle", "new"]


def fit_like_twice(tmp_path, monkeypatch, first_calls: list[str], second_calls: list[str]):
    """Two `LoadAhead` blocks under one key, as two processes' fits of one structure: programs
    named in `*_calls` are built and called in each; the second process holds none of the first's.
    Returns the second block's LoadAhead, its values, and the threads that loaded programs."""
    monkeypatch.setenv("INFSCALE_DSL_CACHE", str(tmp_path))
    loaded_on = []
    load = programs._load
    monkeypatch.setattr(programs, "_load", lambda *a: loaded_on.append(threading.current_thread().name) or load(*a))
    scales = {"double": 2.0, "triple": 3.0, "negate": -1.0}

    def call(names: list[str]) -> list[float]:
        built = [StoredProgram(("scale", name), jax.jit(lambda x, k=scales[name]: k * x)) for name in names]
        return [float(program(jnp.ones(()))) for program in built]

    with programs.LoadAhead(("fit", "same structure")):
        call(first_calls)
    gc.collect()  # the first "process" has ended: this one holds none of its programs
    loaded_on.clear()
    with programs.LoadAhead(("fit", "same structure")) as ahead:
        started = set(ahead._loading)
        values = call(second_calls)
    return ahead, started, values, loaded_on


def test_a_repeated_fit_loads_its_programs_ahead_on_a_background_thread(tmp_path, monkeypatch):
    ahead, started, values, loaded_on = fit_like_twice(tmp_path, monkeypatch, ["triple", "double"],
                                                       ["triple", "double"])
    assert values == [3.0, 2.0]
    assert len(started) == 2 and loaded_on == ["load-ahead_0"] * 2  # none loaded by the fit itself
    # listed in the order first called: the next fit loads the one it needs first, first
    assert list(ahead.listed) == list(ahead.used)


def test_a_fit_that_takes_another_path_drops_what_it_loaded_for_nothing(tmp_path, monkeypatch):
    ahead, started, values, _ = fit_like_twice(tmp_path, monkeypatch, ["double", "negate"], ["double", "triple"])
    assert values == [2.0, 3.0] and len(started) == 2
    assert ahead._loading == {}  # negate's program, never called, is not kept
    listed = programs._read_list(ahead.list_path)
    assert list(listed) == list(ahead.used) and len(listed) == 2  # the list says what this fit used


def test_a_damaged_list_or_a_failed_fit_loads_nothing_ahead_and_lists_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("INFSCALE_DSL_CACHE", str(tmp_path))
    ahead = programs.LoadAhead(("fit", "damaged"))
    ahead.list_path.parent.mkdir(parents=True)
    ahead.list_path.write_text("not a list\n")
    with pytest.raises(RuntimeError), ahead:
        assert ahead._loading == {}
        StoredProgram(("plus one",), jax.jit(lambda x: x + 1))(jnp.zeros(()))
        raise RuntimeError("the fit failed")
    assert ahead.list_path.read_text() == "not a list\n"  # a failed fit's path is no guide


def test_a_fit_hears_once_that_it_must_compile_and_not_when_it_loads(tmp_path, monkeypatch):
    """A fit that shows progress says why nothing moves while its programs compile (fit.py)."""
    monkeypatch.setenv("INFSCALE_DSL_CACHE", str(tmp_path))
    heard = []
    with programs.LoadAhead(("fit", "announced"), on_compile=lambda: heard.append("compiling")):
        for k in (2, 3):  # two programs compiled: one announcement
            StoredProgram(("announced", k), jax.jit(lambda x, k=k: k * x))(jnp.ones(2))
    assert heard == ["compiling"]
    with programs.LoadAhead(("fit", "announced"), on_compile=lambda: heard.append("again")):
        for k in (2, 3):  # as a new process's fit: both stored, loaded, nothing compiled
            StoredProgram(("announced", k), jax.jit(lambda x, k=k: k * x))(jnp.ones(2))
    assert heard == ["compiling"]


@pytest.mark.slow
def test_a_fit_in_a_new_process_loads_its_programs_and_gives_the_same_posterior(tmp_path):
    # the CLI twice on one cache: the second fit traces and compiles none of the stored programs
    table = REPO / "examples" / "data" / "cpu_small_runs.parquet"
    env = os.environ | {"INFSCALE_DSL_CACHE": str(tmp_path / "cache")}
    draws, stored = {}, {}
    for run in ("first", "second"):
        started = time.time()
        argv = [sys.executable, "-m", "infscale_dsl", "fit", str(REPO / "models" / "chinchilla.law"), str(table),
                "-o", str(tmp_path / run), "-q", "--warmup", "100", "--draws", "100", "--chains", "2"]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
        assert done.returncode in (0, 1), done.stderr[-2000:]
        import arviz as az

        draws[run] = az.from_netcdf(str(tmp_path / run / "posterior.nc")).posterior
        stored[run] = {p.name: p.stat().st_mtime for p in (tmp_path / "cache" / "programs").glob("*.bin")}
    for name in ("E", "A", "alpha", "B", "beta", "sigma_loss"):
        np.testing.assert_array_equal(draws["second"][name].values, draws["first"][name].values)
    # point fit, chain starts, sampler phases, prior draws, log-likelihood: none new the second time,
    # and every one read back (a program is touched when loaded)
    assert len(stored["first"]) >= 5 and stored["second"].keys() == stored["first"].keys()
    assert all(mtime >= started for mtime in stored["second"].values())


@pytest.mark.slow
def test_a_fit_whose_programs_are_stored_traces_no_model(tmp_path, monkeypatch):
    # A new process that finds every program on disk need not run numpyro's model set-up
    # (0.5 s of a warm fit from the shell), and loads them on a background thread while it
    # imports the rest (LoadAhead); here, in one process, with the in-memory programs dropped
    # as a new process has none.
    import pandas as pd

    from infscale_dsl.inference import fit as fit_module, pointfit
    from infscale_dsl.language import load_spec
    from infscale_dsl.model.compile import CompiledModel

    monkeypatch.setenv("INFSCALE_DSL_CACHE", str(tmp_path))
    table = pd.read_parquet(REPO / "examples" / "data" / "cpu_small_runs.parquet")
    spec = load_spec(REPO / "models" / "chinchilla.law", columns=table.columns)
    settings = dict(chains=2, warmup=60, draws=60, max_draws=60, seed=3)
    made_on = []  # (thread, what) for each program the first fit makes
    make = StoredProgram._load_or_compile
    monkeypatch.setattr(StoredProgram, "_load_or_compile", lambda self, *a: made_on.append(
        (threading.current_thread().name, self.key[:2])) or make(self, *a))
    first = fit_module.fit(spec, table, **settings)
    monkeypatch.setattr(StoredProgram, "_load_or_compile", make)
    # NUTS's programs compiled on a thread of their own (sampler.py), each once, and one start and
    # one chunk program per chunk size serve every warm-up phase of the run
    assert len(made_on) == len(set(made_on)) == 6, made_on  # with the point fit, chain starts, log-likelihood
    phases = ((False, 15), (False, 45), (True, 45))
    expected = {("sampler", ("start", phases)): "compile-ahead_0",
                ("sampler", ("chunk", phases, 15)): "compile-ahead_0",  # warm-up, in both parts
                ("sampler", ("chunk", phases, 20)): "compile-ahead_0"}  # the 60 draws
    assert {what: thread for thread, what in made_on if what[0] == "sampler"} == expected, made_on
    assert first.sampler["mass"] == "adapt"  # the path `expected` names

    # as a new process: none of the first fit's programs held (not even by monkeypatch, to restore)
    fit_module._SAMPLERS, pointfit._COMPILED = programs.RecentPrograms(8), programs.RecentPrograms(8)
    programs._kept_programs.cache_clear()
    jax.clear_caches()  # JAX's own caches hold the sampler's functions, and with them its programs
    gc.collect()
    loaded_on = []  # a new process loads the programs the first fit listed on a background thread
    load = programs._load
    monkeypatch.setattr(programs, "_load", lambda *a: loaded_on.append(threading.current_thread().name) or load(*a))
    model_runs = []
    sample_parameters = CompiledModel.sample_parameters
    monkeypatch.setattr(CompiledModel, "sample_parameters",
                        lambda self, *a, **k: model_runs.append(1) or sample_parameters(self, *a, **k))
    again = fit_module.fit(spec, table, **settings)
    assert model_runs == []
    assert len(loaded_on) >= 5 and set(loaded_on) == {"load-ahead_0"}, loaded_on
    np.testing.assert_array_equal(again.idata.posterior["alpha"].values, first.idata.posterior["alpha"].values)


def memory_maps() -> int:
    with open("/proc/self/maps") as maps:
        return sum(1 for _ in maps)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="counts memory maps in /proc (Linux)")
def test_a_process_that_compiles_many_structures_keeps_a_bounded_number_of_memory_maps():
    # A fit keeps its programs by structure; kept for the life of the process, a session of
    # twenty-odd structures ran out of memory maps (65,530) and aborted inside XLA.
    # The traced functions outlive their programs, as a model's functions do: JAX's own caches,
    # keyed by them, keep the executables until they are cleared.
    functions = []

    def compile_structures(keep, count: int) -> int:
        before = memory_maps()
        for k in range(count):
            functions.append(lambda x, k=k: jnp.sin(x) ** k + jnp.cos(x) * k)
            program = keep(("structure", k), lambda: jax.jit(functions[-1]))
            program(jnp.ones(3)).block_until_ready()
        return memory_maps() - before

    compile_structures(programs.RecentPrograms(4).get, 4)  # the first compile maps XLA's own code
    unbounded: dict = {}
    grown_unbounded = compile_structures(lambda key, build: unbounded.setdefault(key, build()), 40)
    recent = programs.RecentPrograms(4)
    grown_recent = compile_structures(recent.get, 40)
    assert len(recent) == 4
    assert grown_unbounded >= 40  # each program held maps at least one
    assert grown_recent <= 0.5 * grown_unbounded, (grown_recent, grown_unbounded)


def test_recent_programs_builds_once_and_drops_the_least_recently_used():
    built = []
    recent = programs.RecentPrograms(2)
    for key in ["a", "b", "a", "c", "a", "b"]:
        recent.get(key, lambda key=key: built.append(key) or key.upper())
    assert built == ["a", "b", "c", "b"]  # "b" was dropped when "c" came, "a" stayed in use
    assert recent.get("a", lambda: "rebuilt") == "A"
