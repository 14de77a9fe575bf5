"""Where the data must be positive: the checks that keep a law finite before any fitting.

A power with a non-integer or parameter exponent needs a positive base, log and sqrt a positive
argument, log1p one above -1. Parameters are kept in range by their priors, so only the parts of
an expression that read data (columns, derived variables) become requirements, which
`check` uses to infer a column's domain and `data.prepare` checks row by row.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .ast import Binary, Call, CheckedSpec, Expr, Name, Number
from .evaluate import evaluate, names_in, nodes


@dataclass(frozen=True)
class Requirement:
    """Values of `expr` (which reads only data, derived variables and constants) must be > `above`."""

    expr: Expr
    above: float
    reason: str


def value_requirements(spec: CheckedSpec, expr: Expr) -> list[Requirement]:
    """What the data must satisfy for `expr` to be finite: power bases with a non-integer or
    parameter exponent and arguments of log/sqrt are > 0, arguments of log1p are > -1. Looks
    inside the derived variables that `expr` reads; splits products and quotients into factors."""
    found: dict[Requirement, None] = {}
    seen_derived: set[str] = set()
    derived = spec.derived_by_name

    def walk(expr: Expr) -> None:
        for node in nodes(expr):
            if isinstance(node, Binary) and node.op == "^" and not _is_integer(node.right, spec):
                add_factors(node.left, "the base of a power with a non-integer or parameter exponent")
            elif isinstance(node, Call) and node.func in ("log", "sqrt") and node.args:
                add_factors(node.args[0], f"the argument of {node.func}()")
            elif isinstance(node, Call) and node.func == "log1p" and node.args and spec.reads_data_only(node.args[0]):
                found.setdefault(Requirement(node.args[0], -1.0, "the argument of log1p()"))
            elif isinstance(node, Name) and node.id in derived and node.id not in seen_derived:
                seen_derived.add(node.id)
                walk(derived[node.id].expr)

    def add_factors(expr: Expr, reason: str) -> None:
        for factor in _positive_factors(expr, spec):
            found.setdefault(Requirement(factor, 0.0, reason))

    walk(expr)
    return list(found)


def _positive_factors(expr: Expr, spec: CheckedSpec) -> list[Expr]:
    """Parts of `expr` that read data and must be > 0 for `expr` to be > 0 (parameters are kept
    positive by their priors, so only data parts are listed)."""
    if isinstance(expr, Binary) and expr.op in "*/":
        return _positive_factors(expr.left, spec) + _positive_factors(expr.right, spec)
    if isinstance(expr, Binary) and expr.op == "^":
        return _positive_factors(expr.left, spec)
    if isinstance(expr, Call) and expr.func == "exp" or isinstance(expr, Number):
        return []
    if isinstance(expr, Name) and (expr.id in spec.constants or expr.id in spec.parameters):
        return []
    return [expr] if spec.reads_data_only(expr) else []


def _is_integer(expr: Expr, spec: CheckedSpec) -> bool:
    """True for an exponent that is a whole number known before fitting (2, -1, a constant 3)."""
    if not all(name in spec.constants for name in names_in(expr)):
        return False
    with np.errstate(all="ignore"):
        value = float(evaluate(expr, spec.constants, np))
    return math.isfinite(value) and value == round(value)
