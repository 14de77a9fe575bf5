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
