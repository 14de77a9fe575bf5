"""Evaluate an expression tree with NumPy or jax.numpy, and list the names it reads."""
from __future__ import annotations

from typing import Any, Mapping

from .ast import Binary, Call, Expr, Name, Number, Unary


def names_in(expr: Expr) -> list[str]:
    """Names an expression reads, in order of first appearance, without repeats."""
    found: dict[str, None] = {}

    def walk(node: Expr) -> None:
        if isinstance(node, Name):
            found.setdefault(node.id, None)
        elif isinstance(node, Unary):
            walk(node.operand)
        elif isinstance(node, Binary):
            walk(node.left)
            walk(node.right)
        elif isinstance(node, Call):
            for arg in node.args:
                walk(arg)

    walk(expr)
    return list(found)


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
