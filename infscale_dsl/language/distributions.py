"""The distributions a prior or a noise model may name, with their parameters in numpyro's order.

Names are numpyro.distributions class names (the compiler looks them up by name); `params` are
numpyro's argument names, so `Normal(0.5, 0.2)` and `Normal(loc=0.5, scale=0.2)` bind alike.
`positive` lists the arguments numpyro's `arg_constraints` require to be > 0 (the others are
real; Uniform also needs low < high); tests/test_distributions.py compares both with numpyro.
`truncatable` marks the families numpyro.distributions.TruncatedDistribution accepts, the only
ones a prior may bound with `in [lower, upper]`. The table is plain data so that checking a spec
does not import numpyro.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from .ast import Distribution, Expr, Number, Unary

Support = Literal["real", "positive", "unit", "interval"]


@dataclass(frozen=True)
class DistInfo:
    name: str
    params: tuple[str, ...]
    support: Support  # "interval": between two of its own arguments (Uniform)
    truncatable: bool
    positive: tuple[str, ...] = ()  # arguments that must be > 0


DISTRIBUTIONS: dict[str, DistInfo] = {
    info.name: info
    for info in (
        DistInfo("Normal", ("loc", "scale"), "real", True, ("scale",)),
        DistInfo("StudentT", ("df", "loc", "scale"), "real", True, ("df", "scale")),
        DistInfo("Cauchy", ("loc", "scale"), "real", True, ("scale",)),
        DistInfo("Laplace", ("loc", "scale"), "real", True, ("scale",)),
        DistInfo("Logistic", ("loc", "scale"), "real", True, ("scale",)),
        DistInfo("HalfNormal", ("scale",), "positive", False, ("scale",)),
        DistInfo("HalfCauchy", ("scale",), "positive", False, ("scale",)),
        DistInfo("LogNormal", ("loc", "scale"), "positive", False, ("scale",)),
        DistInfo("Exponential", ("rate",), "positive", False, ("rate",)),
        DistInfo("Gamma", ("concentration", "rate"), "positive", False, ("concentration", "rate")),
        DistInfo("InverseGamma", ("concentration", "rate"), "positive", False, ("concentration", "rate")),
        DistInfo("Beta", ("concentration1", "concentration0"), "unit", False,
                 ("concentration1", "concentration0")),
        DistInfo("Uniform", ("low", "high"), "interval", False),
    )
}
TRUNCATABLE = frozenset(name for name, info in DISTRIBUTIONS.items() if info.truncatable)
# families a grouped parameter (`E[family] ~ ...`) may have: the compiler samples them non-centred
GROUPED_FAMILIES = ("Normal", "LogNormal")

# Noise families for `loss noise ...`: family -> its keyword arguments (all optional).
NOISE_FAMILIES: dict[str, tuple[str, ...]] = {"Normal": (), "StudentT": ("nu",)}
DEFAULT_NU = 4.0


def argument_problems(d: Distribution) -> list[tuple[str, str]]:
    """(message, hint) for each way the arguments of `d` fail to match its parameters."""
    info = DISTRIBUTIONS.get(d.name)
    if info is None:
        close = difflib.get_close_matches(d.name, DISTRIBUTIONS, n=1, cutoff=0.6)
        return [(f"unknown distribution '{d.name}'",
                 (f"did you mean '{close[0]}'? " if close else "") + f"use one of: {', '.join(DISTRIBUTIONS)}")]
    signature = f"{info.name}({', '.join(info.params)})"
    problems = []
    if len(d.args) > len(info.params):
        problems.append((f"{info.name} takes {len(info.params)} argument(s), got {len(d.args)}",
                         f"write {signature}"))
    positional = set(info.params[: len(d.args)])
    for key, _ in d.kwargs:
        if key not in info.params:
            problems.append((f"{info.name} has no argument '{key}'", f"write {signature}"))
        elif key in positional:
            problems.append((f"{info.name} argument '{key}' given twice", f"write {signature}"))
    given = positional | {key for key, _ in d.kwargs}
    missing = [p for p in info.params if p not in given]
    if missing and len(d.args) <= len(info.params):
        problems.append((f"{info.name} is missing argument(s) {', '.join(missing)}",
                         f"write {signature}"))
    return problems


def bind_arguments(d: Distribution) -> dict[str, Expr]:
    """Arguments of `d` by parameter name (positional first, then keywords), for a checked spec."""
    problems = argument_problems(d)
    if problems:  # check() reports these with a caret; reaching here is a bug
        raise RuntimeError(f"unchecked distribution {d.name}: {problems[0][0]}")
    info = DISTRIBUTIONS[d.name]
    return dict(zip(info.params, d.args)) | dict(d.kwargs)


def value_problems(name: str, values: dict[str, float]) -> list[tuple[str, str, str]]:
    """(argument, message, hint) for each known argument value outside what `name` accepts."""
    info = DISTRIBUTIONS[name]
    signature = f"{name}({', '.join(info.params)})"
    problems = [(p, f"{name} argument {p} = {values[p]:g} must be positive", f"{p} > 0 in {signature}")
                for p in info.positive if values.get(p) is not None and values[p] <= 0]
    low, high = values.get("low"), values.get("high")
    if info.support == "interval" and low is not None and high is not None and low >= high:
        problems.append(("high", f"{name}(low={low:g}, high={high:g}) is empty",
                         "low must be below high, e.g. Uniform(0, 1)"))
    return problems


def constant_value(expr: Expr) -> float | None:
    """The value of a plain number such as `4`, `-1.5`; None for anything else."""
    if isinstance(expr, Number):
        return expr.value
    if isinstance(expr, Unary) and isinstance(expr.operand, Number):
        return -expr.operand.value
    return None
