"""A fitted law as a NumPy function of its data variables, one value per posterior draw.

The allocation and lifetime-cost searches need the law at inputs that differ from draw to
draw (each draw has its own optimum), which a table-based predictor cannot give. This module
evaluates the law's expression tree with NumPy: parameters enter as (S, 1) columns, data
variables as arrays that broadcast against them, so `law({"N": n (G,), "D": d (G,)})` is
(S, G) and `law({"N": n (S, G), ...})` is (S, G) too.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import ConfigError, DataError, Diagnostic, SpecError
from ..language.ast import CheckedSpec
from ..language.evaluate import evaluate


def reads(spec: CheckedSpec, response: str) -> set[str]:
    """Every name the law of `response` reads, directly or through derived variables."""
    return set(spec.reads(spec.law_for(response).expr))


class LawFunction:
    """The law of one response of a fitted spec, vectorised over posterior draws."""

    def __init__(self, spec: CheckedSpec, draws: Mapping[str, np.ndarray], response: str):
        if response not in {law.response for law in spec.laws}:
            raise ConfigError(Diagnostic(
                f"the spec has no law for {response!r}",
                hint=f"its responses are: {', '.join(law.response for law in spec.laws)}",
            ))
        self.spec = spec
        self.response = response
        self.expr = spec.law_for(response).expr
        self.names = reads(spec, response)  # parameter, data and derived names
        grouped = [name for name, p in spec.parameters.items() if p.group and name in self.names]
        if grouped:
            raise SpecError(Diagnostic(
                f"the law for {response!r} has parameters that vary by group ({', '.join(grouped)})",
                hint="allocation and lifetime cost need a law without grouped parameters",
            ))
        # parameter -> (S, 1), so data arrays of shape (G,) or (S, G) broadcast against it
        self.parameters = {
            name: np.asarray(draws[name], dtype=np.float64).reshape(-1, 1)
            for name in spec.parameters if name in self.names
        }
        self.n_draws = next(iter(self.parameters.values())).shape[0] if self.parameters else 1
        # the data variables the law needs (table columns, by their spec names)
        self.data_names = [name for name in spec.data if name in self.names and name != response]

    def __call__(self, data: Mapping[str, np.ndarray | float]) -> np.ndarray:
        missing = [name for name in self.data_names if name not in data]
        if missing:
            raise DataError(Diagnostic(
                f"the law for {self.response!r} needs values for {', '.join(missing)}",
                hint="give them as candidate columns or with --fix NAME=VALUE",
            ))
        values = {name: np.asarray(value, dtype=np.float64) for name, value in data.items()}
        env = {**self.spec.constants, **values, **self.spec.derived_values(values, np), **self.parameters}
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            value = evaluate(self.expr, env, np)
        return np.broadcast_to(value, np.broadcast_shapes(np.shape(value), (self.n_draws, 1))).copy()


def data_from_table(spec: CheckedSpec, table) -> dict[str, np.ndarray]:
    """Spec data name -> float64 column of the table, for the names whose column it has."""
    return {
        name: table[decl.column].to_numpy(dtype=np.float64)
        for name, decl in spec.data.items()
        if decl.column in table.columns and decl.domain != "category"
    }


def variable_values(spec: CheckedSpec, table) -> dict[str, np.ndarray]:
    """Data and derived variables of each table row (derived ones where computable)."""
    values = data_from_table(spec, table)
    derived = spec.derived_values(values, np)
    return values | {name: np.asarray(value, dtype=np.float64) for name, value in derived.items()}
