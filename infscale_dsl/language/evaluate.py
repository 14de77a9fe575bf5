"""Walk, evaluate (with NumPy or jax.numpy) and print expression trees.

The functions an expression may call are the fixed table FUNCTIONS: nothing else is ever looked
up, so spec text cannot reach any other NumPy function. Walks are iterative (no recursion limit,
linear time); evaluate and unparse recurse, which is safe because the parser bounds the depth.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import numpy as np

from .ast import Binary, Call, Expr, Name, Number, Unary


@dataclass(frozen=True)
class Function:
    arity: int
    xp_name: str  # the numpy / jax.numpy function that computes it


FUNCTIONS: dict[str, Function] = {
    "log": Function(1, "log"), "exp": Function(1, "exp"), "sqrt": Function(1, "sqrt"),
    "log1p": Function(1, "log1p"), "min": Function(2, "minimum"), "max": Function(2, "maximum"),
}


def children(expr: Expr) -> tuple[Expr, ...]:
    if isinstance(expr, Unary):
        return (expr.operand,)
    if isinstance(expr, Binary):
        return (expr.left, expr.right)
    if isinstance(expr, Call):
        return expr.args
    return ()


def nodes(expr: Expr) -> Iterator[Expr]:
    """Every node of an expression, parents first, left to right."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def depth(expr: Expr) -> int:
    """Levels of nesting: 1 for a name or number, 2 for `a + b`, n for a sum of n terms."""
    deepest, stack = 0, [(expr, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children(node))
    return deepest


def names_in(expr: Expr) -> list[str]:
    """Names an expression reads, in order of first appearance, without repeats."""
    return list(dict.fromkeys(node.id for node in nodes(expr) if isinstance(node, Name)))


def apply(node: Unary | Binary | Call, args: list, xp: Any) -> Any:
    """The operation of one node on the values of its operands."""
    if isinstance(node, Unary):
        return -args[0]
    if isinstance(node, Call):
        function = FUNCTIONS.get(node.func)
        if function is None or len(args) != function.arity:  # check() rejects these
            raise RuntimeError(f"unchecked call {node.func}() with {len(args)} argument(s)")
        return getattr(xp, function.xp_name)(*args)
    left, right = args
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    if node.op == "*":
        return left * right
    if node.op == "/":
        return left / right
    return xp.power(left, right)


def evaluate(expr: Expr, env: Mapping[str, Any], xp: Any) -> Any:
    """The value of `expr` with names looked up in `env`; `xp` is numpy or jax.numpy."""
    if isinstance(expr, Number):
        return expr.value
    if isinstance(expr, Name):
        return env[expr.id]
    return apply(expr, [evaluate(child, env, xp) for child in children(expr)], xp)


class ConstantError(ArithmeticError):
    """Constant arithmetic that fails (division by zero, overflow, log of a negative)."""

    def __init__(self, node: Expr, reason: str):
        super().__init__(reason)
        self.node, self.reason = node, reason


def fold(expr: Expr, constants: Mapping[str, float]) -> float | None:
    """The value of an expression of numbers and `constants` (None where it reads anything
    else). Raises ConstantError at the innermost node whose value is not a finite number."""
    values: dict[int, float | None] = {}
    for node in reversed(list(nodes(expr))):  # children before parents
        if isinstance(node, Number):
            value = np.float64(node.value)
        elif isinstance(node, Name):
            value = None if node.id not in constants else np.float64(constants[node.id])
        else:
            args = [values[id(child)] for child in children(node)]
            value = None if any(a is None for a in args) else _apply_strict(node, args)
        values[id(node)] = value
    value = values[id(expr)]
    return None if value is None else float(value)


# numpy's FloatingPointError text ("divide by zero encountered in divide") -> ours
_FAILURES = {"divide by zero": "division by zero", "overflow": "overflow (the result is too large)",
             "invalid value": "undefined result (log or sqrt of a negative number, 0/0, inf - inf)"}


def _apply_strict(node: Unary | Binary | Call, args: list) -> np.float64:
    try:
        with np.errstate(divide="raise", over="raise", invalid="raise", under="ignore"):
            value = np.float64(apply(node, args, np))
    except FloatingPointError as error:
        kind = str(error).split(" encountered")[0]
        raise ConstantError(node, _FAILURES.get(kind, kind)) from None
    if not np.isfinite(value):
        raise ConstantError(node, "the result is not a finite number")
    return value


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "^": 4}


def unparse(expr: Expr, parent: int = 0) -> str:
    """Source text of an expression, with only the parentheses it needs; parsing it gives
    `expr` back."""
    if isinstance(expr, Number):
        short = f"{expr.value:g}"
        return short if float(short) == expr.value else repr(expr.value)
    if isinstance(expr, Name):
        return expr.id
    if isinstance(expr, Call):
        return f"{expr.func}({', '.join(unparse(a) for a in expr.args)})"
    if isinstance(expr, Unary):
        text = "-" + unparse(expr.operand, 3)
        return f"({text})" if parent > 3 else text
    level = _PRECEDENCE[expr.op]
    left = unparse(expr.left, level + (expr.op == "^"))
    right = unparse(expr.right, level + (expr.op != "^"))  # a + (b + c) keeps its brackets
    text = f"{left}{expr.op}{right}" if expr.op in "^*/" else f"{left} {expr.op} {right}"
    return f"({text})" if level < parent else text
