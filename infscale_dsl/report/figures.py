"""The report's figures drawn from the data build.py gathered (figure_data.py): which arrays
each plot in plots.py is given. Nothing here reads a fit."""
from __future__ import annotations

from typing import Callable

from . import plots
from .figure_data import (DATA_TITLE, FAN_TITLE, FRONTIER_TITLE, PAIRS_TITLE, PROBABILITY_TITLE,
                          FigureData)

# title -> the plot that draws it from the report's figure data
DRAWERS: dict[str, Callable[[FigureData], bytes]] = {
    DATA_TITLE: lambda f: plots.data_against_law(f.data.groups, f.data.x_label, f.data.y_label),
    FRONTIER_TITLE: lambda f: plots.frontier_plot(
        f.frontier.names, f.frontier.loss, f.frontier.latency, f.frontier.on_front, f.frontier.chosen,
        f.frontier.target, f.frontier.budget, f.frontier.loss_label, f.frontier.latency_label),
    FAN_TITLE: lambda f: plots.fan_chart(f.fan.budgets, f.fan.loss, f.fan.observed_max_flops, f.fan.target,
                                         f.fan.y_label),
    PROBABILITY_TITLE: lambda f: plots.probability_against_budget(
        f.probability.budgets, f.probability.p_met, f.probability.target_text, f.probability.threshold),
    PAIRS_TITLE: lambda f: plots.pair_plot(f.parameters),
}


def draw(figures: FigureData) -> dict[str, bytes]:
    """Title -> PNG of every figure the data holds, in the report's order; each is drawn once
    (matplotlib takes seconds for the pair plot) and kept in `figures.drawn`."""
    for title in figures.titles():
        if title not in figures.drawn:
            figures.drawn[title] = DRAWERS[title](figures)
    return {title: figures.drawn[title] for title in figures.titles()}
