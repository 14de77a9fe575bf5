"""What the report's figures show, as plain arrays: build.py fills it from a fit (through
build_figures.py), figures.py draws it. Kept apart from both so the report (document.py) can
hold it, and name its figures in the JSON, without drawing anything or importing a plotting
library.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .risk import Summary

DATA_TITLE = "Data against the fitted law"
FRONTIER_TITLE = "Loss against latency"
FAN_TITLE = "Compute-optimal loss against compute"
PROBABILITY_TITLE = "P(target met) against budget"
PAIRS_TITLE = "Posterior draws of the law's parameters"


@dataclass
class GroupCurve:
    """One size group: its data points and the law along x with the group's other inputs."""

    name: str
    x_points: np.ndarray  # (n,) observed x
    y_points: np.ndarray  # (n,) observed response
    x_grid: np.ndarray  # (G,)
    law: np.ndarray  # (S, G) the law's draws along the grid
    observed: np.ndarray  # (S, G) a new run's draws along the grid


@dataclass
class DataCurves:
    groups: list[GroupCurve]
    x_label: str
    y_label: str


@dataclass
class Frontier:
    """Each candidate's loss against its latency, the Pareto frontier and the lines to meet."""

    names: list[str]
    loss: list[Summary]  # per candidate, a new run's loss
    latency: list[Summary]
    on_front: np.ndarray  # (n,) bool
    chosen: str | None  # the recommended candidate; None when none is (or the fit is not reliable)
    target: float | None  # the loss target's threshold
    budget: float | None  # the latency budget's threshold
    loss_label: str
    latency_label: str


@dataclass
class ComputeFan:
    budgets: np.ndarray  # (B,) training FLOPs, from the data's smallest compute to beyond it
    loss: np.ndarray  # (B, S) compute-optimal loss per budget and draw
    observed_max_flops: float  # the largest training compute in the fitted data
    target: float | None
    y_label: str


@dataclass
class BudgetProbability:
    budgets: np.ndarray  # (B,) the fan's budgets
    p_met: np.ndarray  # (B,) share of draws whose compute-optimal loss meets the target
    target_text: str
    threshold: float  # the probability a recommendation asks for, drawn as a line


@dataclass
class FigureData:
    """Each figure's data, None where the report has no such figure."""

    data: DataCurves | None = None  # needs the training table
    frontier: Frontier | None = None  # needs candidates with a latency
    fan: ComputeFan | None = None  # needs a law of N and D
    probability: BudgetProbability | None = None  # needs a loss target and a reliable fit
    parameters: dict[str, np.ndarray] | None = None  # name -> (S,) draws; None for a point fit
    # title -> PNG, filled by figures.draw: a report written as .html and as .md draws once
    drawn: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    def titles(self) -> list[str]:
        """The figures' titles in the report's order: the one list the JSON and the drawing read."""
        present = ((DATA_TITLE, self.data), (FRONTIER_TITLE, self.frontier), (FAN_TITLE, self.fan),
                   (PROBABILITY_TITLE, self.probability), (PAIRS_TITLE, self.parameters))
        return [title for title, data in present if data is not None]
