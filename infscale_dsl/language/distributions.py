"""The distributions a prior or a noise model may name, with their parameters in numpyro's order.

Names are numpyro.distributions class names (the compiler looks them up by name); `params` are
numpyro's argument names, so `Normal(0.5, 0.2)` and `Normal(loc=0.5, scale=0.2)` bind alike.
`truncatable` marks the families numpyro.distributions.TruncatedDistribution accepts, the only
ones a prior may bound with `in [lower, upper]`.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from ..errors import Diagnostic, LawError
from .ast import Distribution, Expr, Number, Unary

Support = Literal["real", "positive", "unit", "interval"]


@dataclass(frozen=True)
class DistInfo:
    name: str
    params: tuple[str, ...]
    support: Support  # "interval": between two of its own arguments (Uniform)
    truncatable: bool


DISTRIBUTIONS: dict[str, DistInfo] = {
    info.name: info
    for info in (
        DistInfo("Normal", ("loc", "scale"), "real", True),
        DistInfo("StudentT", ("df", "loc", "scale"), "real", True),
        DistInfo("Cauchy", ("loc", "scale"), "real", True),
        DistInfo("Laplace", ("loc", "scale"), "real", True),
        DistInfo("Logistic", ("loc", "scale"), "real", True),
        DistInfo("HalfNormal", ("scale",), "positive", False),
        DistInfo("HalfCauchy", ("scale",), "positive", False),
        DistInfo("LogNormal", ("loc", "scale"), "positive", False),
        DistInfo("Exponential", ("rate",), "positive", False),
        DistInfo("Gamma", ("concentration", "rate"), "positive", False),
        DistInfo("Beta", ("concentration1", "concentration0"), "unit", False),
        DistInfo("Uniform", ("low", "high"), "interval", False),
    )
}

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
    """Arguments of `d` by parameter name (positional first, then keywords); LawError if they do
    not fit the distribution's parameters."""
    problems = argument_problems(d)
    if problems:
        raise LawError([Diagnostic(message, hint=hint) for message, hint in problems])
    info = DISTRIBUTIONS[d.name]
    return dict(zip(info.params, d.args)) | dict(d.kwargs)


def constant_value(expr: Expr) -> float | None:
    """The value of a plain number such as `4`, `-1.5`; None for anything else."""
    if isinstance(expr, Number):
        return expr.value
    if isinstance(expr, Unary) and isinstance(expr.operand, Number):
        return -expr.operand.value
    return None
