"""Helpers about the names of a spec: typo suggestions, what an expression reads, and the
order in which names depend on each other (walked without recursion, so chains of thousands
of names are fine)."""
from __future__ import annotations

import difflib
from typing import Callable, Iterable, Iterator

from ..errors import listed
from .ast import Distribution, Expr, Name
from .evaluate import nodes

TYPO_CUTOFF = 0.8  # difflib ratio above which an unknown name is taken for a misspelling


def suggest(name: str, candidates: Iterable[str], cutoff: float = TYPO_CUTOFF) -> str | None:
    """The closest candidate to `name`, if any is close enough (a difference of case only is close)."""
    others = sorted(set(candidates) - {name})
    same_but_case = [other for other in others if other.lower() == name.lower()]
    if same_but_case:
        return same_but_case[0]
    matches = difflib.get_close_matches(name, others, n=1, cutoff=cutoff)
    return matches[0] if matches else None


def column_hint(name: str, columns: Iterable) -> str:
    """The hint for a name that is not a column: the closest column, or the columns there are."""
    columns = [str(column) for column in columns]
    close = suggest(name, columns, 0.6)
    return f"did you mean '{close}'?" if close else f"the table has: {listed(columns)}"


def depth_first(roots: Iterable[str], dependencies: Callable[[str], list[str]]
                ) -> Iterator[tuple[str, str, list[str]]]:
    """A depth-first walk without recursion. Yields
    ("enter" | "exit" | "cycle", name, path), path being the names under visit, outermost first;
    "cycle" means `name` is already on the path."""
    state: dict[str, str] = {}  # name -> "visiting" | "done"
    for root in roots:
        if root in state:
            continue
        path, pending = [root], [iter(dependencies(root))]
        state[root] = "visiting"
        yield "enter", root, path
        while path:
            dependency = next(pending[-1], None)
            if dependency is None:
                name = path.pop()
                pending.pop()
                state[name] = "done"
                yield "exit", name, path
            elif state.get(dependency) == "visiting":
                yield "cycle", dependency, path
            elif dependency not in state:
                state[dependency] = "visiting"
                path.append(dependency)
                pending.append(iter(dependencies(dependency)))
                yield "enter", dependency, path


def name_nodes(expr: Expr) -> list[Name]:
    """Every Name node of an expression (with its span), repeats included."""
    return [node for node in nodes(expr) if isinstance(node, Name)]


def arguments_of(d: Distribution) -> tuple[Expr, ...]:
    """A distribution's argument expressions, positional then keyword."""
    return d.args + tuple(value for _, value in d.kwargs)
