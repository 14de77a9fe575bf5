"""NUTS chains in parallel, compiled once per model structure.

numpyro's `MCMC.run` re-traces its parallel chains on every call, which costs more than the
sampling itself for a small law. This module builds the same sampler from numpyro's functional
NUTS kernel (`numpyro.infer.hmc.hmc`: dense mass matrix and step size adapted during warm-up),
maps it over chains with `jax.pmap` (one CPU device per chain) or `jax.vmap`, and keeps the
compiled function per model structure with the data as arguments: a second fit of the same
spec to data of the same shapes runs without tracing or compiling.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.hmc import hmc
from numpyro.infer.util import initialize_model
from tqdm.auto import tqdm

PROGRESS_EVERY = 25  # iterations between progress-bar updates (each one is a host callback)


@dataclass
class Chains:
    samples: dict[str, np.ndarray]  # site or deterministic -> (chains, draws, ...)
    diverging: np.ndarray  # (chains, draws) bool


class Sampler:
    def __init__(self, model, inputs: dict, *, chains: int, warmup: int, draws: int,
                 target_accept: float, progress: bool):
        self.chains, self.warmup, self.draws = chains, warmup, draws
        self.progress = progress
        self._bar = None
        info = initialize_model(jax.random.PRNGKey(0), model, model_args=(inputs,), dynamic_args=True)
        init_kernel, sample_kernel = hmc(potential_fn_gen=info.potential_fn, algo="NUTS")
        postprocess = info.postprocess_fn

        def one_chain(key, start, inputs):
            state = init_kernel(start, num_warmup=warmup, dense_mass=True,
                                target_accept_prob=target_accept, model_args=(inputs,), rng_key=key)

            def step(state, i):
                state = sample_kernel(state, model_args=(inputs,))
                if progress:
                    jax.lax.cond(i % PROGRESS_EVERY == 0,
                                 lambda: jax.debug.callback(self._advance), lambda: None)
                return state, (state.z, state.diverging)

            state, _ = jax.lax.scan(step, state, jnp.arange(warmup))
            _, (z, diverging) = jax.lax.scan(step, state, jnp.arange(warmup, warmup + draws))
            return jax.vmap(postprocess(inputs))(z), diverging  # constrained sites, (draws, ...)

        if jax.local_device_count() >= chains:
            self._run = jax.pmap(one_chain, in_axes=(0, 0, None))
        else:
            self._run = jax.jit(jax.vmap(one_chain, in_axes=(0, 0, None)))

    def run(self, key, starts: dict, inputs: dict) -> Chains:
        """Sample from `starts` (unconstrained, each with a leading chains axis)."""
        keys = jax.random.split(key, self.chains)
        total = self.chains * (self.warmup + self.draws)
        with tqdm(total=total, desc="NUTS", unit="it", disable=not self.progress) as self._bar:
            samples, diverging = self._run(keys, starts, inputs)
            samples = jax.tree.map(np.asarray, samples)
            diverging = np.asarray(diverging)
            self._bar.update(total - self._bar.n)
        return Chains(samples, diverging)

    def _advance(self) -> None:
        if self._bar is not None:
            self._bar.update(PROGRESS_EVERY)
