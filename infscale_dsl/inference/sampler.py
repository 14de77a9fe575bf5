"""NUTS chains in parallel, compiled once per model structure, with the metric picked in warm-up.

numpyro's `MCMC.run` re-traces its parallel chains on every call, which costs more than the
sampling itself for a small law. This module builds the same sampler from numpyro's functional
NUTS kernel (`numpyro.infer.hmc.hmc`, dense mass matrix, step size adapted during warm-up),
maps it over chains with `jax.pmap` (one CPU device per chain) or `jax.vmap`, and keeps the
compiled functions per model structure with the data as arguments: a second fit of the same
spec to data of the same shapes runs without tracing or compiling, in this process and, as the
programs are stored on disk (programs.py), in the next. NUTS runs in compiled chunks of at most
PROGRESS_EVERY steps from the chains' states, and the progress bar moves between chunks: a
host callback inside a program, as numpyro's own bar uses, could not be stored. The warm-up
phase is an argument of the programs (warm_up_by_phase), so one start and one chunk program
serve both parts of warm-up below and the draws. A structure's first run compiles them on a
second thread while this one compiles and runs the chain starts (Sampler._compile_ahead).

Every run starts from a Laplace approximation: the posterior mode, found by Newton steps from the
point fit, and the inverse Hessian there. Each chain starts at its own draw from it, so that
R-hat can still see chains that fail to mix. Warm-up then runs in two parts, in one run:
1. A quarter of it: NUTS with the Laplace metric (step size adapted). On a well-identified law the local
   curvature is the right metric: on Chinchilla's 240 rows NUTS takes ~14 leapfrog steps per
   draw with it, against ~80 with a windowed estimate, whose global covariance of a curved
   posterior forces small steps.
2. If that quarter's draws mix well enough with it (their ESS per draw, over all chains, would
   reach twice the gate's ESS over the run's draws), the metric is kept for the rest of
   warm-up and the draws, and only the step size adapts again. Otherwise the posterior bends away from its mode (the offset E traded
   against a coefficient and its exponent, as on the seed paper's 27 rows: ESS 0.04 per draw)
   and the metric is re-estimated in numpyro's warm-up windows over the other three quarters,
   starting from the first quarter's covariance. Either way the draws follow, with no second fit. (How far the draws'
   covariance is from the Laplace one is no guide: NUTS mixes well on a plain power law with
   a metric 8 times too narrow in one direction.)
The draws come in blocks: after the first `draws` per chain, a caller's `enough(samples)` (the
diagnostics gate's ESS and R-hat) decides whether another block follows, up to `max_draws`.
A posterior that mixes slowly (E on a few runs: ESS 0.1 per draw) then costs time, not a
second fit, and one that mixes well stops at `draws`.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Callable
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.infer.hmc
from jax.flatten_util import ravel_pytree
from numpyro.diagnostics import effective_sample_size
from numpyro.infer.hmc import hmc
from numpyro.infer.initialization import init_to_value
from tqdm.auto import tqdm

from .pointfit import initialize_traced, newton
from .programs import StoredProgram, register_lapack, tracing

PROGRESS_EVERY = 25  # NUTS steps per compiled call at most: the progress bar moves between calls
MASS_CHOICES = ("auto", "laplace", "adapt")
SAFETY = 2.0  # keep the Laplace metric if warm-up shows this many times the ESS per draw needed


@dataclass
class Chains:
    samples: dict[str, np.ndarray]  # site or deterministic -> (chains, draws, ...)
    diverging: np.ndarray  # (chains, draws) bool
    mass: str  # "laplace" (kept) or "adapt" (re-estimated in warm-up)
    note: str  # why, in words
    chain_method: str  # "parallel" (a device per chain, pmap) or "vectorized" (vmap on one device)
    chain_method_fallback: str | None  # why the chains were vectorized, not parallel
    gradients: int  # leapfrog steps (gradient evaluations) over all chains, warm-up included:
    # the sampler's work, which a loaded machine's wall time does not measure


class Sampler:
    def __init__(self, model, inputs: dict, point: dict, *, key: tuple, chains: int, warmup: int, draws: int,
                 target_accept: float, max_draws: int | None = None):
        """`point`: constrained values of every sampling site where the law is finite (the
        point fit's). numpyro traces the model there, once and only if a program must be
        compiled; its own default, a random point, can make the law NaN (a negative base under
        a fractional power) and fail at random. `key` names the model structure and these
        settings: compiled programs are kept under it, on disk too (programs.py), and a fit
        whose programs are all there traces nothing (0.5 s of a warm fit from the shell)."""
        self.key = key
        self.chains, self.warmup, self.draws = chains, warmup, draws
        self.chain_method, self.chain_method_fallback = chain_method(chains)
        self.max_draws = max(draws, max_draws or draws)
        self.target_accept = target_accept
        self._bar = None
        self._model, self._model_inputs, self._model_point = model, inputs, point
        self._programs: dict[tuple, StoredProgram] = {}  # what a program runs -> the program
        # numpyro's functional NUTS; the potential is looked up when a program is traced
        self._kernel = hmc(potential_fn_gen=lambda inputs: self._info.potential_fn(inputs), algo="NUTS")

        def chain_starts(key, point, inputs):
            # the run's keys are split here: split outside a program, each split is one of its own
            start_key, first_key, second_key = jax.random.split(key, 3)
            potential = self._info.potential_fn(inputs)
            mode, inverse_mass = laplace(potential, point)
            flat_mode, unravel = ravel_pytree(mode)
            # (chains, d) draws within 2 sd of the mode: apart enough for R-hat, not in a flat tail
            noise = jnp.clip(jax.random.normal(start_key, (chains, flat_mode.size), flat_mode.dtype), -2, 2)
            flat_starts = flat_mode + noise @ jnp.linalg.cholesky(inverse_mass).T
            # a start where the potential is not finite (past a kink of the law) begins at the mode
            finite = jax.vmap(lambda x: jnp.isfinite(potential(unravel(x))))(flat_starts)
            flat_starts = jnp.where(finite[:, None], flat_starts, flat_mode)
            chain_keys = (jax.random.split(first_key, chains), jax.random.split(second_key, chains))
            return jax.vmap(unravel)(flat_starts), inverse_mass, chain_keys

        self._chain_starts = StoredProgram(("chain starts",) + key, jax.jit(chain_starts))

    @cached_property
    def _info(self):
        """numpyro's model set-up (potential and postprocess functions), traced when the first
        program is: only tracing a program reads it."""
        return initialize_traced(self._model, self._model_inputs, dynamic_args=True,
                                 init_strategy=init_to_value(values=self._model_point))

    def run(self, key, point: dict, inputs: dict, mass: str = "auto", target_ess: float = 400,
            enough: Callable[[dict], bool] | None = None, progress: bool = False) -> Chains:
        """Sample, starting near `point` (the point fit, unconstrained); `mass` as in
        MASS_CHOICES: "auto" picks the metric after the first quarter of warm-up, keeping the
        Laplace one if it mixes well enough there to reach twice `target_ess` over all draws.
        While `enough(samples)` is false, blocks of `draws` more draws follow, up to `max_draws`.
        `progress` shows a bar."""
        # a structure's first run compiles NUTS's programs on a second thread (_compile_ahead)
        first_run = not self._chain_starts.available(key, point, inputs)
        compiler = ThreadPoolExecutor(1, thread_name_prefix="compile-ahead") if first_run else None
        try:
            return self._run(key, point, inputs, mass, target_ess, enough, progress, compiler)
        finally:
            if compiler is not None:
                # no compiling outlives the run (a worker process may fork next); after a failure,
                # what has not begun never will
                compiler.shutdown(wait=True, cancel_futures=True)

    def _run(self, key, point: dict, inputs: dict, mass: str, target_ess: float, enough, progress: bool,
             compiler: ThreadPoolExecutor | None) -> Chains:
        first = 0 if mass == "adapt" else self.warmup // 4  # a quarter to judge the Laplace metric
        rest = self.warmup - first
        # the warm-up phases a run may take, (adapt_mass, steps): one program of each kind serves them all
        phases = ((False, first), (False, rest), (True, rest)) if first else ((True, rest),)
        first_phase = np.int32(0)  # phases are the programs' int32 arguments (a Python int would recompile)
        self._compile_ahead(compiler, point, inputs, phases, [first, rest, self.draws])
        # in NumPy: a device array that a pmapped program must split over its devices is split
        # by a small program of its own, compiled in every first fit
        starts, inverse_mass, (first_keys, second_keys) = jax.tree.map(
            np.asarray, self._chain_starts(key, point, inputs))
        total = self.chains * (self.warmup + self.draws)
        with tqdm(total=total, desc="NUTS", unit="it", disable=not progress) as self._bar:
            metric, step_size, chosen = inverse_mass, np.ones(self.chains), "adapt"
            note = "metric re-estimated in warm-up windows from the Laplace approximation"
            gradients = 0
            if first:
                state = self._start(phases)(first_keys, starts, metric, step_size, inputs, first_phase)
                state, (flat, _, _, steps) = self._steps(state, inputs, phases, first_phase, first)
                gradients += int(np.sum(steps))
                settled = flat[:, first // 2:]  # (chains, n, d), once the step size settled
                per_draw = _ess_per_draw(settled)
                # twice the ESS per draw the gate needs: a quarter of warm-up measures it roughly,
                # and a metric that only just passes there can fail the gate after (the seed's
                # 164M task: 0.30 per draw measured there, a final ESS of 362)
                need = min(1.0, SAFETY * target_ess / (self.chains * self.draws))
                # draws that are not finite say nothing about the metric: keep the Laplace one
                keep = mass == "laplace" or not np.isfinite(per_draw) or per_draw >= need
                chosen = "laplace" if keep else "adapt"
                note = (f"first quarter of warm-up with the Laplace metric: ESS {per_draw:.2f} per draw, "
                        f"{need:.2f} wanted: " + ("metric kept" if keep else "metric re-estimated in the rest of warm-up"))
                metric = inverse_mass if keep else _covariance(settled)
                starts, step_size = state.z, state.adapt_state.step_size
            phase = np.int32(phases.index((chosen == "adapt", rest)))
            state = self._start(phases)(second_keys, starts, metric, step_size, inputs, phase)
            state, (_, _, _, steps) = self._steps(state, inputs, phases, phase, rest)
            gradients += int(np.sum(steps))
            samples, diverging, drawn = None, None, 0
            while drawn < self.draws or (enough is not None and drawn + self.draws <= self.max_draws
                                         and not enough(samples)):
                if drawn >= self.draws:
                    self._bar.total += self.chains * self.draws
                state, (_, more, more_diverging, steps) = self._steps(state, inputs, phases, phase, self.draws)
                gradients += int(np.sum(steps))
                samples = more if samples is None else jax.tree.map(
                    lambda a, b: np.concatenate([a, b], axis=1), samples, more)
                diverging = more_diverging if diverging is None else np.concatenate([diverging, more_diverging], axis=1)
                drawn += self.draws
            if drawn > self.draws:
                note += f"; {drawn} draws per chain to reach the gate's ESS and R-hat"
        return Chains(samples, diverging, chosen, note, self.chain_method, self.chain_method_fallback, gradients)

    def _compile_ahead(self, compiler: ThreadPoolExecutor | None, point: dict, inputs: dict,
                       phases: tuple, step_counts: list[int]) -> None:
        """Have `compiler`'s thread compile the run's NUTS programs (its start, and the chunks
        that run `step_counts` steps: see _steps) that are neither held nor stored; with no
        compiler, nothing. A structure's first run spends ~4 s of its ~12 compiling them
        (benchmarks/first_fit_programs.py), and it can run beside this thread's own work, the
        chain starts' compiling."""
        if compiler is None:
            return
        # arguments like the run's: the chain starts' outputs, as NumPy arrays (run)
        keys = jax.eval_shape(lambda: jax.random.split(jax.random.PRNGKey(0), self.chains))
        leaves = jax.tree.leaves(point)
        starts = jax.tree.map(lambda x: np.zeros((self.chains,) + np.shape(x), jax.dtypes.canonicalize_dtype(
            np.result_type(x))), point)
        size = sum(np.size(x) for x in leaves)  # the metric is (d, d) over the flattened point
        metric = np.zeros((size, size), jax.dtypes.canonicalize_dtype(np.result_type(*leaves)))
        start_args = (np.zeros(keys.shape, keys.dtype), starts, metric, np.ones(self.chains), inputs, np.int32(0))
        x64 = jax.config.jax_enable_x64  # JAX's setting is the thread's own: the compiler's follows this one's
        register_lapack()  # before another thread lowers a decomposition
        # the programs are made on this thread: the other only compiles them
        start = self._start(phases)
        chunks = [self._chunk(phases, size) for size in sorted({_chunk_size(n) for n in step_counts if n})]

        def compile_all() -> None:
            with jax.enable_x64(x64):
                start.compile_ahead(*start_args)
                with tracing():
                    state = jax.eval_shape(start.traced, *start_args)
                for chunk in chunks:
                    chunk.compile_ahead(state, inputs, np.int32(0))

        compiler.submit(compile_all)

    def _steps(self, state, inputs: dict, phases: tuple, phase, count: int):
        """`count` NUTS steps of every chain from `state`, in warm-up phase `phase` (an index
        into `phases`), in chunks of at most PROGRESS_EVERY (the progress bar moves between
        them): the last state, and per step (chains, count, ...) the flat unconstrained draws,
        the constrained sites, divergences and leapfrog steps."""
        chunk = _chunk_size(count)
        run = self._chunk(phases, chunk)
        parts = []
        for _ in range(count // chunk):
            state, outputs = run(state, inputs, phase)
            parts.append(jax.tree.map(np.asarray, outputs))  # waits for the chunk: the bar is honest
            if self._bar is not None:
                self._bar.update(min(self.chains * chunk, self._bar.total - self._bar.n))
        return state, jax.tree.map(lambda *a: np.concatenate(a, axis=1), *parts)

    def _start(self, phases: tuple):
        """The compiled start of a run: (keys, starts, inverse mass, first step sizes (chains,),
        inputs, phase) -> every chain's first NUTS state, for the warm-up phase `phase` (an
        index into `phases`, each (adapt_mass, steps))."""
        init_kernel, _ = self._kernel

        def one_chain(key, start, inverse_mass, step_size, inputs, phase):
            with warm_up_by_phase(phases, phase):
                return init_kernel(start, num_warmup=_phase_steps(phases, phase), step_size=step_size,
                                   dense_mass=True, inverse_mass_matrix=inverse_mass,
                                   target_accept_prob=self.target_accept, model_args=(inputs,), rng_key=key)

        return self._over_chains(("start", phases), one_chain, (0, 0, None, 0, None, None))

    def _chunk(self, phases: tuple, steps: int):
        """The compiled run of `steps` NUTS steps from every chain's state, in warm-up phase
        `phase` (the state counts its steps: past the phase's warm-up they are draws, and nothing
        adapts): (states, inputs, phase) -> (states, (flat draws, constrained sites, diverging,
        leapfrog steps), each (chains, steps, ...))."""
        init_kernel, sample_kernel = self._kernel

        def one_chain(state, inputs, phase):
            with warm_up_by_phase(phases, phase):
                # numpyro's functional kernel keeps its warm-up schedule in the closure that
                # init_kernel fills; filled the same way as at the start, its result is not needed
                init_kernel(state.z, num_warmup=_phase_steps(phases, phase), dense_mass=True,
                            target_accept_prob=self.target_accept, model_args=(inputs,), rng_key=state.rng_key)

            def step(state, _):
                state = sample_kernel(state, model_args=(inputs,))
                return state, (ravel_pytree(state.z)[0], state.z, state.diverging, state.num_steps)

            state, (flat, z, diverging, leapfrogs) = jax.lax.scan(step, state, None, length=steps)
            return state, (flat, jax.vmap(self._info.postprocess_fn(inputs))(z), diverging, leapfrogs)

        return self._over_chains(("chunk", phases, steps), one_chain, (0, None, None))

    def _over_chains(self, key, one_chain, in_axes):
        """`one_chain` mapped over chains (a CPU device each where there are enough), compiled
        once and kept under `key`, on disk too (programs.py)."""
        if key not in self._programs:
            parallel = self.chain_method == "parallel"
            traced = jax.pmap(one_chain, in_axes=in_axes) if parallel else jax.jit(jax.vmap(one_chain, in_axes=in_axes))
            self._programs[key] = StoredProgram(("sampler", key, self.chain_method) + self.key, traced,
                                                devices=self.chains if parallel else 1)
        return self._programs[key]


@contextmanager
def warm_up_by_phase(phases: tuple, phase):
    """While numpyro's NUTS kernel is initialised inside a program: its warm-up adapts as in
    phase `phase` (a traced index into `phases`, each (adapt_mass, steps)), so that one compiled
    program serves every phase of a run. numpyro builds its adapter (`warmup_adapter`) from
    Python values, so a program compiled for the first quarter of warm-up could not run the
    rest (another schedule, the metric re-estimated or not), and a first fit compiled a start
    and a chunk program for each: 3 s more of compiling. Here the kernel gets every phase's own
    numpyro adapter, and the phase picks one at each step (`lax.switch`)."""
    own = numpyro.infer.hmc.warmup_adapter

    def adapter(num_warmup, **options):
        # init_fn does not depend on the schedule or the metric's adaptation: the first will do
        adapters = [own(steps, **(options | {"adapt_mass_matrix": adapt})) for adapt, steps in phases]
        updates = [update for _, update in adapters]

        def update_fn(t, accept_prob, z_info, state):
            return jax.lax.switch(phase, updates, t, accept_prob, z_info, state)
        return adapters[0][0], update_fn

    # numpyro looks the adapter up as its module's global each time a kernel is initialised;
    # the kernels here are initialised only while a program is traced, one trace at a time
    # (programs.tracing), so no other kernel this package initialises sees the swap
    with mock.patch.object(numpyro.infer.hmc, "warmup_adapter", adapter):
        yield


def _phase_steps(phases: tuple, phase) -> jax.Array:
    """The warm-up steps of phase `phase` (traced): the kernel counts its draws from there."""
    return jnp.asarray([steps for _, steps in phases])[phase]


def chain_method(chains: int) -> tuple[str, str | None]:
    """How `chains` chains run here, in numpyro's words: "parallel" (a device each) when JAX
    has that many devices, else "vectorized" on one; and, when vectorized, why and what to do."""
    devices = jax.local_device_count()
    if devices >= chains:
        return "parallel", None
    why = f"only {devices} {jax.default_backend()} device(s) for {chains} chains"
    if jax.default_backend() == "cpu":  # JAX makes more CPU devices when asked before it starts
        why += f": set XLA_FLAGS=--xla_force_host_platform_device_count={chains} before JAX starts"
    return "vectorized", why


def _chunk_size(count: int) -> int:
    """Steps per compiled call for a run of `count` steps: the largest divisor of `count` up
    to PROGRESS_EVERY."""
    return max(d for d in range(1, min(count, PROGRESS_EVERY) + 1) if count % d == 0)


def _covariance(flat: np.ndarray) -> np.ndarray:
    """(d, d) covariance of warm-up draws (chains, n, d) pooled over chains, shrunk towards a
    small diagonal as Stan regularises its metric estimate."""
    pooled = flat.reshape(-1, flat.shape[-1])
    n = len(pooled)
    covariance = np.atleast_2d(np.cov(pooled, rowvar=False))
    return (n / (n + 5.0)) * covariance + 1e-3 * (5.0 / (n + 5.0)) * np.eye(len(covariance))


def _ess_per_draw(flat: np.ndarray) -> float:
    """The smallest bulk ESS over the dimensions of draws (chains, n, d), per draw."""
    if flat.shape[1] < 4 or not np.all(np.isfinite(flat)):
        return float("nan")
    ess = effective_sample_size(np.asarray(flat, dtype=float))  # (d,)
    return float(np.min(ess)) / (flat.shape[0] * flat.shape[1])


def laplace(potential, point: dict, max_iter: int = 100) -> tuple[dict, jax.Array]:
    """The posterior mode near `point` and the inverse Hessian of the potential there (d, d),
    flattened in the pytree's order (numpyro's order for a dense mass matrix).

    The point fit leaves noise scales at their prior draws and ignores priors, so the mode is
    found again on the potential itself, by Newton's method (`newton`): d is a handful, and the
    Hessian that the mass matrix needs anyway gives the steps. If the potential is not finite at
    `point`, the point is kept and the mass matrix is the identity. Curvatures below 1e-6, or
    not finite, become 1: such a direction gets a unit variance."""
    flat_point, unravel = ravel_pytree(point)
    flat_mode, value, hessian = newton(lambda x: potential(unravel(x)), flat_point, max_iter)
    curvatures, vectors = jnp.linalg.eigh(hessian)
    usable = jnp.isfinite(curvatures) & (curvatures > 1e-6)
    inverse = (vectors / jnp.where(usable, curvatures, 1.0)) @ vectors.T
    finite = jnp.isfinite(value) & jnp.all(jnp.isfinite(inverse))
    return unravel(flat_mode), jnp.where(finite, inverse, jnp.eye(flat_point.size, dtype=flat_point.dtype))
