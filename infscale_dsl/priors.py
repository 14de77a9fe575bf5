"""Priors: the user's, or defaults suited to each parameter's role (as brms prints its own).

Defaults are weakly informative and scale-free: they read only the typical size of the
response (its median over the fitted rows, `y_ref`), so the same law fits losses near 3 and
latencies near 20 ms without tuning.

| role        | default prior                                                            |
|-------------|--------------------------------------------------------------------------|
| coefficient | log of its term at the data's typical X ~ Normal(log y_ref, 3)           |
| exponent    | Normal(0.5, 0.5) truncated to [0, 3]                                     |
| offset      | HalfNormal(2 y_ref)                                                      |
| free        | Normal(0, 2.5)                                                           |
| noise       | HalfNormal(0.5) on the log scale; HalfNormal(sd of y) on the identity one |
| hyper       | loc of a LogNormal: Normal(log y_ref, 2); loc of a Normal: Normal(y_ref,  |
|             | 2 y_ref); scales: HalfNormal(1) (LogNormal) or HalfNormal(y_ref)         |
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

import numpyro.distributions as dist

from .errors import Diagnostic, LawError
from .language.ast import CheckedSpec, Distribution, Number, PriorDecl
from .language.distributions import DISTRIBUTIONS, bind_arguments
from .language.evaluate import evaluate, names_in
from .roles import Roles

# numpyro can truncate only these families (TruncatedDistribution)
TRUNCATABLE = {"Normal", "StudentT", "Cauchy", "Laplace", "Logistic", "SoftLaplace"}


@dataclass(frozen=True)
class PriorChoice:
    """The prior one parameter gets, as `show` prints it and the model samples it."""

    name: str
    text: str  # e.g. "Normal(0.5, 0.5) in [0, 3]"
    source: str  # "declared" | "default"
    on: str  # what the distribution is over: the parameter, or "log(A/N^alpha at N = 1.2e9)"
    depends_on: tuple[str, ...]  # hyperparameters its arguments read
    build: Callable[[Mapping[str, object]], dist.Distribution]  # params so far -> distribution


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _fixed(name: str, text: str, on: str, make: Callable[[], dist.Distribution]) -> PriorChoice:
    return PriorChoice(name, text, "default", on, (), lambda params: make())


def declared_prior(decl: PriorDecl, filename: str) -> PriorChoice:
    """The user's prior, built from the registry; hyperparameter arguments read `params`."""
    info = DISTRIBUTIONS[decl.distribution.name]
    arguments = bind_arguments(decl.distribution)
    family = getattr(dist, info.name)
    bounded = decl.lower is not None or decl.upper is not None
    if bounded and info.name not in TRUNCATABLE:
        span = decl.span
        raise LawError(Diagnostic(
            f"numpyro cannot truncate {info.name} to bounds",
            line=span.line if span else None, column=span.column if span else None,
            filename=filename,
            hint="use Normal, StudentT, Cauchy, Laplace or Logistic with `in [..]`, "
                 "or a family whose support already fits (HalfNormal, LogNormal, Beta)",
        ))

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
    return PriorChoice(decl.name, text, "declared", decl.name, depends, build)


def _jnp():
    import jax.numpy as jnp

    return jnp


def _distribution_text(d: Distribution) -> str:
    def show(expr):
        return _fmt(expr.value) if isinstance(expr, Number) else " ".join(names_in(expr))

    args = [show(a) for a in d.args] + [f"{k}={show(v)}" for k, v in d.kwargs]
    return f"{d.name}({', '.join(args)})"


def default_prior(name: str, role: str, y_ref: float, y_sd: float, log_noise: bool,
                  term_text: str = "") -> PriorChoice:
    """The default prior for a parameter of the given role (see the module's table)."""
    if role == "coefficient":
        loc = math.log(y_ref)
        return _fixed(name, f"Normal({_fmt(loc)}, 3)", f"log({term_text})",
                      lambda: dist.Normal(loc, 3.0))
    if role == "exponent":
        return _fixed(name, "Normal(0.5, 0.5) in [0, 3]", name,
                      lambda: dist.TruncatedNormal(0.5, 0.5, low=0.0, high=3.0))
    if role == "offset":
        return _fixed(name, f"HalfNormal({_fmt(2 * y_ref)})", name,
                      lambda: dist.HalfNormal(2 * y_ref))
    if role == "noise":
        scale = 0.5 if log_noise else max(y_sd, 1e-12)
        where = "log scale" if log_noise else "identity scale"
        return _fixed(name, f"HalfNormal({_fmt(scale)})", f"{name} ({where})",
                      lambda: dist.HalfNormal(scale))
    return _fixed(name, "Normal(0, 2.5)", name, lambda: dist.Normal(0.0, 2.5))


def default_hyperprior(name: str, family: str, argument: str, y_ref: float) -> PriorChoice:
    """Default prior for a hyperparameter that fills `argument` of a grouped prior."""
    log_family = family == "LogNormal"
    if argument == "loc":
        loc, scale = (math.log(y_ref), 2.0) if log_family else (y_ref, 2 * y_ref)
        return _fixed(name, f"Normal({_fmt(loc)}, {_fmt(scale)})", name,
                      lambda: dist.Normal(loc, scale))
    scale = 1.0 if log_family else y_ref
    return _fixed(name, f"HalfNormal({_fmt(scale)})", name, lambda: dist.HalfNormal(scale))


def choose_priors(spec: CheckedSpec, roles: Roles, y_ref: Mapping[str, float],
                  y_sd: Mapping[str, float], term_texts: Mapping[str, str]) -> dict[str, PriorChoice]:
    """One PriorChoice per parameter of the spec, declared ones first in priority."""
    # which response each parameter's scale comes from: the first law that reads it
    home: dict[str, str] = {}
    for law in spec.laws:
        for n in names_in(law.expr):
            home.setdefault(n, law.response)
        home.setdefault(law.sigma, law.response)
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
            choices[name] = default_hyperprior(name, family, argument, y_ref[response])
        else:
            log_noise = spec.law_for(response).noise.scale == "log"
            choices[name] = default_prior(name, roles.role[name], y_ref[response],
                                          y_sd[response], log_noise, term_texts.get(name, ""))
    return choices
