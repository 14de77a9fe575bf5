"""Walk, evaluate (with NumPy or jax.numpy) and print expression trees."""
from __future__ import annotations

from typing import Any, Iterator, Mapping

from .ast import Binary, Call, Expr, Name, Number, Unary


def nodes(expr: Expr) -> Iterator[Expr]:
    """Every node of an expression, parents first."""
    yield expr
    if isinstance(expr, Unary):
        yield from nodes(expr.operand)
    elif isinstance(expr, Binary):
        yield from nodes(expr.left)
        yield from nodes(expr.right)
    elif isinstance(expr, Call):
        for arg in expr.args:
            yield from nodes(arg)


def names_in(expr: Expr) -> list[str]:
    """Names an expression reads, in order of first appearance, without repeats."""
    return list(dict.fromkeys(node.id for node in nodes(expr) if isinstance(node, Name)))


def evaluate(expr: Expr, env: Mapping[str, Any], xp: Any) -> Any:
    """The value of `expr` with names looked up in `env`; `xp` is numpy or jax.numpy."""
    if isinstance(expr, Number):
        return expr.value
    if isinstance(expr, Name):
        return env[expr.id]
    if isinstance(expr, Unary):
        return -evaluate(expr.operand, env, xp)
    if isinstance(expr, Binary):
        left, right = evaluate(expr.left, env, xp), evaluate(expr.right, env, xp)
        if expr.op == "+":
            return left + right
        if expr.op == "-":
            return left - right
        if expr.op == "*":
            return left * right
        if expr.op == "/":
            return left / right
        return xp.power(left, right)
    args = [evaluate(arg, env, xp) for arg in expr.args]
    if expr.func == "min":
        return xp.minimum(*args)
    if expr.func == "max":
        return xp.maximum(*args)
    return getattr(xp, expr.func)(*args)


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "^": 4}


def unparse(expr: Expr, parent: int = 0) -> str:
    """Source text of an expression, with only the parentheses it needs."""
    if isinstance(expr, Number):
        return f"{expr.value:g}"
    if isinstance(expr, Name):
        return expr.id
    if isinstance(expr, Call):
        return f"{expr.func}({', '.join(unparse(a) for a in expr.args)})"
    if isinstance(expr, Unary):
        text = "-" + unparse(expr.operand, 3)
        return f"({text})" if parent > 3 else text
    level = _PRECEDENCE[expr.op]
    left = unparse(expr.left, level + (expr.op == "^"))
    right = unparse(expr.right, level + (expr.op in "-/"))
    text = f"{left}{expr.op}{right}" if expr.op in "^*/" else f"{left} {expr.op} {right}"
    return f"({text})" if level < parent else text
