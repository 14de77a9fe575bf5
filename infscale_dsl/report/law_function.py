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
from ..language.evaluate import evaluate, names_in


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
        grouped = [name for name, p in spec.parameters.items() if p.group and name in self._reads()]
        if grouped:
            raise SpecError(Diagnostic(
                f"the law for {response!r} has parameters that vary by group ({', '.join(grouped)})",
                hint="allocation and lifetime cost need a law without grouped parameters",
            ))
        # parameter -> (S, 1), so data arrays of shape (G,) or (S, G) broadcast against it
        self.parameters = {
            name: np.asarray(draws[name], dtype=np.float64).reshape(-1, 1)
            for name in spec.parameters if name in self._reads()
        }
        self.n_draws = next(iter(self.parameters.values())).shape[0] if self.parameters else 1

    def _reads(self) -> set[str]:
        """Every name the law reads, directly or through derived variables."""
        names = set(names_in(self.expr))
        for assign in reversed(self.spec.derived):
            if assign.name in names:
                names.update(names_in(assign.expr))
        return names

    @property
    def data_names(self) -> list[str]:
        """Data variables the law needs (table columns, by their spec names)."""
        reads = self._reads()
        return [name for name in self.spec.data if name in reads and name != self.response]

    def __call__(self, data: Mapping[str, np.ndarray | float]) -> np.ndarray:
        missing = [name for name in self.data_names if name not in data]
        if missing:
            raise DataError(Diagnostic(
                f"the law for {self.response!r} needs values for {', '.join(missing)}",
                hint="give them as candidate columns or with --fix NAME=VALUE",
            ))
        env: dict[str, np.ndarray | float] = dict(self.spec.constants)
        env.update({name: np.asarray(value, dtype=np.float64) for name, value in data.items()})
        for assign in self.spec.derived:
            env[assign.name] = evaluate(assign.expr, env, np)
        env.update(self.parameters)
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
    values: dict[str, np.ndarray] = dict(data_from_table(spec, table))
    env: dict[str, np.ndarray | float] = {**spec.constants, **values}
    for assign in spec.derived:
        if set(names_in(assign.expr)) <= set(env):
            env[assign.name] = values[assign.name] = np.asarray(evaluate(assign.expr, env, np), dtype=np.float64)
    return values
