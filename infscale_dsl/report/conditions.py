"""Targets and budgets such as "loss <= 2.95" or "latency <= 20", judged draw by draw.

A condition names a quantity (a fitted response, or a column of the candidates table) and a
threshold. Over posterior draws it gives P(met) and the expected shortfall E[(value - t)+]
(for <=; E[(t - value)+] for >=): how far a candidate misses, on average, counting hits as 0.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, Diagnostic

_CONDITION = re.compile(r"^\s*([A-Za-z_]\w*)\s*(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Condition:
    name: str  # the quantity: a response or a candidates column
    op: str  # one of <= < >= >
    threshold: float

    @classmethod
    def parse(cls, text: str) -> "Condition":
        match = _CONDITION.match(text)
        if match is None:
            raise ConfigError(Diagnostic(
                f"cannot read the condition {text!r}",
                hint="write a name, a comparison and a number, e.g. \"loss <= 2.95\" or \"latency < 20\"",
            ))
        name, op, number = match.groups()
        return cls(name, op, float(number))

    def __str__(self) -> str:
        return f"{self.name} {self.op} {self.threshold:g}"

    @property
    def wants_low(self) -> bool:
        return self.op in ("<=", "<")

    def met(self, values: np.ndarray) -> np.ndarray:
        """Boolean array, True where the value meets the condition (same shape as values)."""
        values = np.asarray(values, dtype=np.float64)
        return {
            "<=": values <= self.threshold,
            "<": values < self.threshold,
            ">=": values >= self.threshold,
            ">": values > self.threshold,
        }[self.op]

    def shortfall(self, values: np.ndarray) -> np.ndarray:
        """How far each value misses the threshold, 0 where it meets it."""
        values = np.asarray(values, dtype=np.float64)
        miss = values - self.threshold if self.wants_low else self.threshold - values
        return np.maximum(miss, 0.0)


def parse_conditions(texts: list[str] | None) -> list[Condition]:
    return [Condition.parse(text) for text in texts or []]
