"""Where a first fit's time goes: every compiled program, its tracing and lowering and its XLA
compiling timed apart, in one `infscale-dsl fit` with an empty program cache.

    python benchmarks/first_fit_programs.py [SPEC RUNS]   # default: the README's first fit

Each StoredProgram (inference/programs.py) normally lowers, compiles and stores its program on
first call; here a wrapper lowers and compiles it in two timed steps and stores nothing, so the
fit's numbers are the same and every program is compiled. Each row says which thread compiled
the program: NUTS's are compiled on a thread of their own while the fit's thread works on
(sampler.py), so the rows overlap in time and their sums exceed the wall time they took. Beside
the two sums, the CPU time the process used.
"""
from __future__ import annotations

import contextlib
import io
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC, RUNS = "models/chinchilla.law", "examples/data/cpu_small_runs.parquet"


def main() -> None:
    spec, runs = sys.argv[1:3] if len(sys.argv) >= 3 else (SPEC, RUNS)
    with tempfile.TemporaryDirectory(prefix="first-fit-") as temp:
        os.environ["INFSCALE_DSL_CACHE"] = str(Path(temp) / "cache")  # before the package reads it
        measure(spec, runs, Path(temp) / "fit")


def measure(spec: str, runs: str, out: Path) -> None:
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    began = time.perf_counter()

    from infscale_dsl.cli import main as cli
    from infscale_dsl.inference import programs

    timings = []  # (what the program computes, lowering s, compiling s, seconds into the run, thread)

    def lower_then_compile(program, name, args):
        start = time.perf_counter()
        with programs.tracing():  # as StoredProgram lowers: one thread traces at a time
            lowered = program.traced.lower(*args)
        lowered_at = time.perf_counter()
        compiled = lowered.compile()
        timings.append((program.key[:2], lowered_at - start, time.perf_counter() - lowered_at, start - began,
                        threading.current_thread().name))
        return compiled

    programs.StoredProgram._load_or_compile = lower_then_compile
    # every XLA compile of the process, the stored programs' and the small ones JAX compiles op
    # by op outside them (key splits, slices of pmap outputs), which JAX's own disk cache keeps
    backend_compiles = []
    import jax.monitoring

    jax.monitoring.register_event_duration_secs_listener(
        lambda event, seconds, **_: backend_compiles.append(seconds)
        if event == "/jax/core/compile/backend_compile_duration" else None)
    with contextlib.redirect_stdout(io.StringIO()):  # the fit's summary: not what is measured
        code = cli(["fit", spec, runs, "-o", str(out), "-q"])
    wall = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"# {spec} on {runs}, empty program cache; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; fit exited {code}")
    print(f"{'program (what it computes, first part of its key)':<64} {'lower s':>8} {'compile s':>10} {'at s':>6}"
          f"  thread")
    for key, lowering, compiling, at, thread in timings:
        # the key's second part: the phase for the sampler's programs, else the whole model structure
        detail = repr(key[1]) if len(key) > 1 and len(repr(key[1])) < 40 else "<model structure>"
        label = f"{key[0]} {detail}"
        print(f"{label:<64} {lowering:8.2f} {compiling:10.2f} {at:6.1f}  {thread}")
    print(f"total: lowering {sum(t[1] for t in timings):.1f} s, compiling {sum(t[2] for t in timings):.1f} s; "
          f"the whole process {wall:.1f} s of wall time, {usage.ru_utime + usage.ru_stime:.1f} s of CPU")
    small = len(backend_compiles) - len(timings)
    print(f"besides them: {small} small programs compiled op by op, "
          f"{sum(backend_compiles) - sum(t[2] for t in timings):.2f} s")


if __name__ == "__main__":
    main()
