"""Fit a checked spec to a table: a robust point fit, then (by default) NUTS started from it.

    result = fit(load_spec("models/chinchilla.law"), read_table("runs.csv"))
    result.summary()          # per parameter: mean, median, q05, q95, r_hat, ess_bulk, ...
    result.save("fit/")       # posterior.nc, summary.json, spec.law, fit.json

Fits run in float64 (inside `jax.enable_x64`, not switched on for the whole process): power
laws over N ~ 1e11 and log-scale noise of 1e-3 need it. The fit's programs are kept per model
structure, in the process and on disk (programs.py); the few small ones left go through JAX's
own disk cache (`use_compilation_cache`). NUTS chains run in parallel when JAX
has a device per chain (the CLI asks for them with numpyro.set_host_device_count before JAX
starts), else vectorised.
"""
from __future__ import annotations

import hashlib
import importlib
import sys

import jax
import numpy as np
import pandas as pd

from ..model.compile import CompiledModel, compile_spec, law_value
from ..model.data import PreparedData, prepare
from ..datasets import cache_dir
from ..errors import Diagnostic, SpecError
from ..language.ast import CheckedSpec
from ..model.likelihood import Likelihood
from ..posterior.result import MAX_R_HAT, MIN_ESS, FitResult, complete_inference_data
from .pointfit import PointFit, point_fit
from .programs import LoadAhead, RecentPrograms, kept_jit
from .sampler import MASS_CHOICES, Sampler

METHODS = ("nuts", "map")
# the default cap on draws per chain, in multiples of `draws`: blocks stop where the gate is met,
# so a higher cap changes no fit that passes below it. At 4x the seed law on the 17 runs below
# its 116M group passed or failed (R-hat 1.010) on the chains' path at the cap; that path
# passes at 5x (benchmarks/results/cpu_2026-12-03/run_once_o0_timing.txt)
MAX_DRAWS_FACTOR = 8


def fit(spec: CheckedSpec, table: pd.DataFrame, *, method: str = "nuts", chains: int = 4,
        warmup: int = 500, draws: int = 500, max_draws: int | None = None, seed: int = 0,
        target_accept: float = 0.99, mass: str = "auto", progress: bool = False,
        filename: str | None = None, loss: str = "huber", delta: float = 1e-3,
        n_starts: int = 4096) -> FitResult:
    """Fit `spec` to `table`; `method` is "nuts" (posterior) or "map" (robust point fit).

    NUTS runs `chains` chains of `warmup` steps, then `draws` draws each, then more blocks of
    `draws` until the diagnostics gate's ESS and R-hat are met or `max_draws` per chain are
    drawn (default 8 x draws; equal to draws: exactly `draws`). `mass` is NUTS's mass matrix
    (see sampler.py): "laplace" keeps the inverse Hessian at the posterior mode, "adapt"
    re-estimates it in warm-up windows from there, and "auto" (the default) keeps the first
    unless it mixes too slowly in the first quarter of warm-up, in one run."""
    max_draws = MAX_DRAWS_FACTOR * draws if max_draws is None else max_draws
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if mass not in MASS_CHOICES:
        raise ValueError(f"mass must be one of {MASS_CHOICES}, not {mass!r}")
    for name, value in (("chains", chains), ("warmup", warmup), ("draws", draws)):
        if not (isinstance(value, (int, np.integer)) and value >= 1):
            raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise ValueError(f"seed must be a whole number >= 0, not {seed!r}")
    if max_draws < draws:
        raise ValueError(f"max_draws ({max_draws}) must be at least draws ({draws})")
    use_compilation_cache()
    with jax.enable_x64(True):
        data = prepare(spec, table, filename=filename)
        compiled = compile_spec(spec, data)
        settings = (method, chains, warmup, draws, max_draws, target_accept, mass, progress, loss, delta, n_starts)
        with LoadAhead(("fit", settings) + compiled.structure_key(data), on_compile=_say_compiling if progress else None):
            # ~1 s of Python imports the fit needs later, while the programs load (programs.py)
            importlib.import_module("arviz")
            importlib.import_module("scipy.stats")
            return _fit(compiled, data, table, method=method, chains=chains, warmup=warmup, draws=draws,
                        max_draws=max_draws, seed=seed, target_accept=target_accept, mass=mass,
                        progress=progress, loss=loss, delta=delta, n_starts=n_starts)


def _fit(compiled: CompiledModel, data: PreparedData, table: pd.DataFrame, *, method: str, chains: int,
         warmup: int, draws: int, max_draws: int, seed: int, target_accept: float, mass: str, progress: bool,
         loss: str, delta: float, n_starts: int) -> FitResult:
    spec = compiled.spec  # the noise of a law that declares none is now set from its rows
    start = point_fit(compiled, data, seed=seed, loss=loss, delta=delta, n_starts=n_starts)
    if not np.isfinite(start.objective):
        raise SpecError(_no_finite_start(spec, n_starts))

    def result(idata, sampler: dict) -> FitResult:
        fitted = FitResult(
            spec=spec, method=method, idata=idata, levels=dict(data.levels),
            data_ranges=_observed_ranges(spec, data), n_obs={r: int(len(i)) for r, i in data.rows.items()},
            left_out=dict(data.left_out), data_sha256=table_sha256(table),
            columns=tuple(str(c) for c in table.columns),
            objective=start.objective if method == "map" else None,
            priors={name: f"{c.text} over {c.on} ({c.source})" for name, c in compiled.priors.items()},
            sampler=sampler, support=_support(spec, data),
        )
        fitted.checks = _misfit_checks(compiled, data, fitted)
        return fitted

    if method == "map":
        return result(_point_idata(compiled, start), {"seed": seed, "loss": loss, "delta": delta,
                                                      "device": jax.default_backend()})
    settings = dict(chains=chains, warmup=warmup, draws=draws, seed=seed, target_accept=target_accept)
    idata, chosen = _sample(compiled, data, start, mass=mass, progress=progress, max_draws=max_draws, **settings)
    return result(idata, settings | {"draws": int(idata.posterior.sizes["draw"]), "min_draws": draws,
                                     "max_draws": max_draws, "mass": chosen.mass, "mass_note": chosen.note,
                                     "device": jax.default_backend(), "chain_method": chosen.chain_method,
                                     "chain_method_fallback": chosen.chain_method_fallback,
                                     "gradients": chosen.gradients})


_SAMPLERS = RecentPrograms(8)  # structure key and settings -> compiled sampler


def _sample(compiled: CompiledModel, data: PreparedData, start: PointFit, *, chains: int,
            warmup: int, draws: int, max_draws: int, seed: int, target_accept: float, mass: str, progress: bool):
    import arviz as az
    from numpyro.infer import log_likelihood

    model = compiled.model()
    inputs = compiled.inputs(data)
    key = (compiled.structure_key(data), chains, warmup, draws, max_draws, target_accept)
    sampler = _SAMPLERS.get(key, lambda: Sampler(compiled.model(collapse=True), inputs, start.params, key=key,
                                                 chains=chains, warmup=warmup, draws=draws, max_draws=max_draws,
                                                 target_accept=target_accept))
    result = sampler.run(jax.random.PRNGKey(seed), start.unconstrained, inputs, mass, MIN_ESS,
                         enough=_gate_met(compiled, inputs, seed), progress=progress)
    draws = result.diverging.shape[1]  # at least the draws asked for; more if the gate wanted them
    flat = {k: v.reshape((chains * draws,) + v.shape[2:]) for k, v in result.samples.items()}
    noise = compiled.draw_collapsed_noise(np.random.default_rng(seed), flat, inputs)
    flat |= noise
    result.samples |= {name: values.reshape(chains, draws) for name, values in noise.items()}
    # then the drift scales, whose default prior reads each draw's noise scale (priors.py)
    prior_only = compiled.draw_prior_only(np.random.default_rng(seed + 1), inputs["scales"] | result.samples,
                                          (chains, draws))
    result.samples |= prior_only
    flat |= {name: values.reshape(chains * draws) for name, values in prior_only.items()}

    # one jitted program over all draws, kept per structure (run op by op, numpyro's loop over
    # draws is a program of its own in every fit)
    pointwise = kept_jit(("log-likelihood",) + compiled.structure_key(data),
                         lambda draws, inputs: log_likelihood(model, draws, inputs, parallel=True))
    log_lik = {}
    for name, values in pointwise(flat, inputs).items():
        if not name.startswith("obs_"):
            continue  # a declared prior on a coefficient enters as a factor site, not data
        law = compiled.spec.law_for(name.removeprefix("obs_"))
        y = compiled.fitted_rows(inputs, law.response)[law.response]
        values = np.asarray(values)[:, np.asarray(inputs["masks"][law.response])]  # (S, n): padding dropped
        log_lik[law.response] = (values + Likelihood.of(law).log_jacobian(y)).reshape(chains, draws, -1)
    idata = az.from_dict(
        posterior=result.samples,
        log_likelihood=log_lik,  # the density of y itself, so laws on either scale compare
        sample_stats={"diverging": result.diverging},
        observed_data={law.response: compiled.fitted_rows(inputs, law.response)[law.response]
                       for law in compiled.spec.laws},
    )
    idata = complete_inference_data(compiled, data, idata, seed)
    return idata, result


def _gate_met(compiled: CompiledModel, inputs: dict, seed: int):
    """Whether draws (site -> (chains, draws, ...)) meet the diagnostics gate's bulk ESS and
    R-hat, with a margin, on the parameters NUTS samples and on the noise scales integrated out
    there: each is drawn as the fit draws it after (the same seed), since a noise scale can mix
    more slowly than the law it follows (Chinchilla's law on 6 synthetic runs: every parameter
    past the gate at 500 draws, sigma_loss at ESS 226 and R-hat 1.020). The summary's
    per-level rows must pass too."""
    import arviz as az

    names = [n for n in compiled.spec.parameters if n not in compiled.prior_only and n not in compiled.collapsed]

    def enough(samples: dict) -> bool:
        chains, draws = np.shape(next(iter(samples.values())))[:2]
        flat = {k: v.reshape((chains * draws,) + v.shape[2:]) for k, v in samples.items()}
        noise = compiled.draw_collapsed_noise(np.random.default_rng(seed), flat, inputs)
        checked = az.convert_to_dataset({n: np.asarray(samples[n]) for n in names}
                                        | {n: v.reshape(chains, draws) for n, v in noise.items()})
        ess = np.concatenate([np.ravel(v) for v in az.ess(checked, method="bulk").to_array().values])
        r_hat = np.concatenate([np.ravel(v) for v in az.rhat(checked).to_array().values])
        return bool(np.nanmin(ess) >= 1.1 * MIN_ESS and np.nanmax(r_hat) <= MAX_R_HAT - 0.002)
    return enough


def _say_compiling() -> None:
    print("compiling the model: the first fit of a model's structure takes up to a minute more; "
          "later fits load the programs", file=sys.stderr)


def _misfit_checks(compiled: CompiledModel, data: PreparedData, result: FitResult) -> dict:
    """checks.py's posterior-predictive checks, from at most ~400 draws of the law per row."""
    spec, draws = compiled.spec, result.draws
    thin = max(1, result.n_draws // 400)
    # scalars (S,) -> (S, 1) to broadcast over rows; grouped (S, levels) are indexed per row
    params = {n: v[::thin, None] if spec.parameters[n].group is None else v[::thin] for n, v in draws.items()}
    law_draws, observed, inputs, sigma = {}, {}, {}, {}
    for law in spec.laws:
        rows = data.rows[law.response]
        values = {n: np.asarray(v)[rows] for n, v in data.values.items()}
        value = np.asarray(law_value(spec, law, params, values, np), dtype=float)
        law_draws[law.response] = np.broadcast_to(value, (len(params[law.sigma]), len(rows)))
        observed[law.response], inputs[law.response] = values[law.response], values
        sigma[law.response] = float(np.median(draws[law.sigma]))
    from .checks import misfit_checks  # scipy.stats: imported while programs load (see fit)

    idata = result.idata if result.method == "nuts" else None
    return misfit_checks(spec, law_draws, observed, inputs, sigma, idata)


def _no_finite_start(spec: CheckedSpec, n_starts: int) -> list[Diagnostic]:
    """Located at every law: none of the starts drawn from the priors made the fit finite."""
    lines = spec.source.splitlines()
    return [Diagnostic(
        f"the law for '{law.response}' is not finite (NaN, inf, or not positive on the log scale) "
        f"on the table's rows at any of {n_starts} starts drawn from the priors",
        line=law.span.line if law.span else None, column=law.span.column if law.span else None,
        filename=spec.filename, source_line=lines[law.span.line - 1] if law.span else None,
        hint="give priors or bounds that keep the law finite and positive where the data are "
             "(e.g. `eps ~ HalfNormal(0.1)` for a factor (1 + eps * R^a)), or check the law's signs",
    ) for law in spec.laws]


def _point_idata(compiled: CompiledModel, start: PointFit):
    """A point fit stored as a posterior of one chain and one draw, so one loader serves both."""
    import arviz as az

    return az.from_dict(posterior={k: np.asarray(v)[None, None] for k, v in start.params.items()})


def use_compilation_cache() -> None:
    """Keep compiled XLA programs on disk (<cache>/jax, see datasets.cache_dir) unless the user
    chose a JAX cache already, so that the next CLI call reads from a file the small programs
    that programs.py does not store (single operations outside the fit's jitted functions).
    Every program is kept, however fast it compiled."""
    if jax.config.jax_compilation_cache_dir is None:
        jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "jax"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


def _support(spec: CheckedSpec, data: PreparedData) -> dict[str, dict[str, list[float]]]:
    """Per response, the law's inputs on its fitted rows (likelihood.distance_beyond)."""
    return {law.response: {name: np.asarray(data.values[name], dtype=float)[data.rows[law.response]].tolist()
                           for name in spec.law_inputs(law)}
            for law in spec.laws}


def _observed_ranges(spec: CheckedSpec, data: PreparedData) -> dict[str, tuple[float, float]]:
    """Min and max of every numeric data/derived variable over the fitted rows."""
    rows = np.unique(np.concatenate([np.asarray(r) for r in data.rows.values()]))
    ranges = {}
    for name, values in data.values.items():
        if name in data.levels:
            continue
        picked = np.asarray(values, dtype=float)[rows]
        picked = picked[np.isfinite(picked)]
        if picked.size:
            ranges[name] = (float(picked.min()), float(picked.max()))
    return ranges


def table_sha256(table: pd.DataFrame) -> str:
    """A hash of the table's contents and column names (stored with every fit)."""
    digest = hashlib.sha256()
    digest.update("\0".join(map(str, table.columns)).encode())
    digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    return digest.hexdigest()
