"""Priors: the user's, or defaults suited to each parameter's role (as brms prints its own).

Defaults are weakly informative and scale-free: they read only the typical size of the
response (its median over the fitted rows, `y_ref`), so the same law fits losses near 3 and
latencies near 20 ms without tuning.

| role        | default prior                                                            |
|-------------|--------------------------------------------------------------------------|
| coefficient | log of its term at the data's typical X ~ Normal(log y_ref, 3)           |
| exponent    | Normal(0.5, 0.5) truncated to [0, 3]                                     |
| offset      | Gamma(2, 2 / y_ref) (mean y_ref, no mass at 0) on the log scale;         |
|             | HalfNormal(2 y_ref) on the identity one                                  |
| free        | Normal(0, 2.5)                                                           |
| noise       | sigma^2 ~ InverseGamma(1, 0.000156) on the log scale (median sigma 0.015;|
|             | likelihood.py); HalfNormal(sd of y) on the identity one                  |
| scale       | LogNormal(log y_ref, 5): a factor of a power of a non-data base          |
| drift       | HalfNormal(0.02): misfit per log unit beyond the data (likelihood.py)    |
| run_scale   | tau^2 ~ InverseGamma(1, 0.000277) on the log scale (median tau 0.02),    |
|             | times y_ref^2 on the identity one: runs' offsets under `curves by`       |
|             | (curves.py)                                                              |
| hyper       | loc of a LogNormal: Normal(log y_ref, 2); loc of a Normal: Normal(y_ref,  |
|             | 2 y_ref); scales: HalfNormal(1) (LogNormal) or HalfNormal(y_ref)         |
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

import numpyro.distributions as dist

from .language.ast import CheckedSpec, Distribution, Number, PriorDecl
from .language.distributions import DISTRIBUTIONS, TRUNCATABLE, bind_arguments
from .language.evaluate import evaluate, names_in
from .curves import RUN_RATE, RUN_SHAPE
from .likelihood import DEFAULT_DRIFT, NOISE_RATE, NOISE_SHAPE
from .roles import Roles


@dataclass(frozen=True)
class PriorChoice:
    """The prior one parameter gets, as `show` prints it and the model samples it."""

    name: str
    text: str  # e.g. "Normal(0.5, 0.5) in [0, 3]"
    source: str  # "declared" | "default"
    on: str  # what the distribution is over: the parameter, or "log(A/N^alpha at N = 1.2e9)"
    depends_on: tuple[str, ...]  # hyperparameters its arguments read
    # environment -> distribution; the environment holds the parameters sampled so far and
    # the data's scales (y_ref:<response>, y_sd:<response>)
    build: Callable[[Mapping[str, object]], dist.Distribution]
    positive: bool = False  # its support is (0, inf): no mass at or below 0, no upper bound


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _default(name: str, text: str, on: str,
             build: Callable[[Mapping[str, object]], dist.Distribution], positive: bool = False) -> PriorChoice:
    return PriorChoice(name, text, "default", on, (), build, positive)


def declared_prior(decl: PriorDecl, filename: str) -> PriorChoice:
    """The user's prior, built from the registry; hyperparameter arguments read `params`."""
    info = DISTRIBUTIONS[decl.distribution.name]
    arguments = bind_arguments(decl.distribution)
    family = getattr(dist, info.name)
    bounded = decl.lower is not None or decl.upper is not None
    assert not bounded or info.name in TRUNCATABLE, "check() rejects bounds on this family"

    def build(params: Mapping[str, object]) -> dist.Distribution:
        values = {key: evaluate(expr, params, _jnp()) for key, expr in arguments.items()}
        base = family(**values)
        if bounded:
            return dist.TruncatedDistribution(base, low=decl.lower, high=decl.upper)
        return base

    text = _distribution_text(decl.distribution)
    if bounded:
        low = "-inf" if decl.lower is None else _fmt(decl.lower)
        high = "inf" if decl.upper is None else _fmt(decl.upper)
        text += f" in [{low}, {high}]"
    depends = tuple(n for expr in arguments.values() for n in names_in(expr))
    positive = decl.upper is None and (info.support == "positive" or (decl.lower is not None and decl.lower >= 0))
    return PriorChoice(decl.name, text, "declared", decl.name, depends, build, positive)


def _sqrt_inverse_gamma(shape=NOISE_SHAPE, rate=NOISE_RATE) -> dist.Distribution:
    """sigma with sigma^2 ~ InverseGamma(shape, rate)."""
    return dist.TransformedDistribution(dist.InverseGamma(shape, rate), dist.transforms.PowerTransform(0.5))


def _jnp():
    import jax.numpy as jnp

    return jnp


def _distribution_text(d: Distribution) -> str:
    def show(expr):
        return _fmt(expr.value) if isinstance(expr, Number) else " ".join(names_in(expr))

    args = [show(a) for a in d.args] + [f"{k}={show(v)}" for k, v in d.kwargs]
    return f"{d.name}({', '.join(args)})"


def default_prior(name: str, role: str, response: str, y_ref: float | None,
                  y_sd: float | None, log_noise: bool, term_text: str = "") -> PriorChoice:
    """The default prior for a parameter of the given role (see the module's table). Its
    scales are read at sampling time from the environment (`y_ref:<response>`), so compiled
    code serves any data; `y_ref`/`y_sd` (None without data) only fill in the text."""
    known = y_ref is not None
    ref, sd = f"y_ref:{response}", f"y_sd:{response}"
    if role == "coefficient":
        text = f"Normal({_fmt(math.log(y_ref))}, 3)" if known else "Normal(log y_ref, 3)"
        return _default(name, text, f"log({term_text})", lambda env: dist.Normal(_jnp().log(env[ref]), 3.0))
    if role == "exponent":
        return _default(name, "Normal(0.5, 0.5) in [0, 3]", name,
                        lambda env: dist.TruncatedNormal(0.5, 0.5, low=0.0, high=3.0))
    if role == "offset" and log_noise:
        # a loss's floor: Gamma(2) with mean y_ref has no mass at 0, where E traded against a
        # coefficient and its exponent sends NUTS down a funnel in log E (divergences on few runs)
        text = f"Gamma(2, {_fmt(2 / y_ref)})" if known else "Gamma(2, 2 / y_ref)"
        return _default(name, text, name, lambda env: dist.Gamma(2.0, 2.0 / env[ref]), positive=True)
    if role == "offset":
        text = f"HalfNormal({_fmt(2 * y_ref)})" if known else "HalfNormal(2 y_ref)"
        return _default(name, text, name, lambda env: dist.HalfNormal(2 * env[ref]), positive=True)
    if role == "noise":
        where = "log scale" if log_noise else "identity scale"
        if log_noise:
            # see likelihood.py: published residual SDs of log loss, and why no mass near 0
            text = f"sqrt InverseGamma({_fmt(NOISE_SHAPE)}, {NOISE_RATE:.3g})"
            return _default(name, text, f"{name} ({where})", lambda env: _sqrt_inverse_gamma(), positive=True)
        text = f"HalfNormal({_fmt(y_sd)})" if known else "HalfNormal(sd y)"
        return _default(name, text, f"{name} ({where})", lambda env: dist.HalfNormal(env[sd]))
    if role == "scale":
        text = f"LogNormal({_fmt(math.log(y_ref))}, 5)" if known else "LogNormal(log y_ref, 5)"
        return _default(name, text, name, lambda env: dist.LogNormal(_jnp().log(env[ref]), 5.0))
    if role == "drift":
        return _default(name, f"HalfNormal({_fmt(DEFAULT_DRIFT)})", f"{name} (per log unit beyond the data)",
                        lambda env: dist.HalfNormal(DEFAULT_DRIFT))
    if role == "run_scale" and log_noise:  # see curves.py: published spreads, and why no mass near 0
        return _default(name, f"sqrt InverseGamma({_fmt(RUN_SHAPE)}, {RUN_RATE:.3g})", f"{name} (log scale, per run)",
                        lambda env: _sqrt_inverse_gamma(RUN_SHAPE, RUN_RATE), positive=True)
    if role == "run_scale":
        text = (f"sqrt InverseGamma({_fmt(RUN_SHAPE)}, {RUN_RATE * y_ref ** 2:.3g})" if known
                else f"sqrt InverseGamma({_fmt(RUN_SHAPE)}, {RUN_RATE:.3g} y_ref^2)")
        return _default(name, text, f"{name} (identity scale, per run)",
                        lambda env: _sqrt_inverse_gamma(RUN_SHAPE, RUN_RATE * env[ref] ** 2), positive=True)
    return _default(name, "Normal(0, 2.5)", name, lambda env: dist.Normal(0.0, 2.5))


def default_hyperprior(name: str, family: str, argument: str, response: str,
                       y_ref: float | None) -> PriorChoice:
    """Default prior for a hyperparameter that fills `argument` of a grouped prior."""
    known, ref = y_ref is not None, f"y_ref:{response}"
    if argument == "loc" and family == "LogNormal":
        text = f"Normal({_fmt(math.log(y_ref))}, 2)" if known else "Normal(log y_ref, 2)"
        return _default(name, text, name, lambda env: dist.Normal(_jnp().log(env[ref]), 2.0))
    if argument == "loc":
        text = f"Normal({_fmt(y_ref)}, {_fmt(2 * y_ref)})" if known else "Normal(y_ref, 2 y_ref)"
        return _default(name, text, name, lambda env: dist.Normal(env[ref], 2 * env[ref]))
    if family == "LogNormal":
        return _default(name, "HalfNormal(1)", name, lambda env: dist.HalfNormal(1.0))
    text = f"HalfNormal({_fmt(y_ref)})" if known else "HalfNormal(y_ref)"
    return _default(name, text, name, lambda env: dist.HalfNormal(env[ref]))


def choose_priors(spec: CheckedSpec, roles: Roles, y_ref: Mapping[str, float] | None,
                  y_sd: Mapping[str, float] | None,
                  term_texts: Mapping[str, str]) -> dict[str, PriorChoice]:
    """One PriorChoice per parameter: the declared prior, else the default for its role.
    `y_ref`/`y_sd` (response -> median, sd) are None when no table is known."""
    y_ref = y_ref or {}
    y_sd = y_sd or {}
    # which response each parameter's scale comes from: the first law that reads it
    home: dict[str, str] = {}
    for law in spec.laws:
        for n in names_in(law.expr):
            home.setdefault(n, law.response)
        home.setdefault(law.sigma, law.response)
        home.setdefault(law.drift, law.response)
        home.setdefault(law.run_scale, law.response)
    hyper_use: dict[str, tuple[str, str, str]] = {}  # hyper -> (family, argument, owner)
    for parameter in spec.parameters.values():
        if parameter.prior is None:
            continue
        for argument, expr in bind_arguments(parameter.prior.distribution).items():
            for n in names_in(expr):
                hyper_use.setdefault(n, (parameter.prior.distribution.name, argument, parameter.name))

    choices: dict[str, PriorChoice] = {}
    for name, parameter in spec.parameters.items():
        response = home.get(name) or home.get(hyper_use.get(name, ("", "", ""))[2]) or spec.laws[0].response
        if parameter.prior is not None:
            choices[name] = declared_prior(parameter.prior, spec.filename)
        elif roles.role[name] == "hyper" and name in hyper_use:
            family, argument, _ = hyper_use[name]
            choices[name] = default_hyperprior(name, family, argument, response, y_ref.get(response))
        else:
            log_noise = spec.law_for(response).noise.scale == "log"
            choices[name] = default_prior(name, roles.role[name], response, y_ref.get(response),
                                          y_sd.get(response), log_noise, term_texts.get(name, ""))
    return choices
