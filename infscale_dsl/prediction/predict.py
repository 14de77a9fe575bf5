"""Predictions from a fit: the law's value per posterior draw, and a new run's value.

    draws = predict_draws(result, table)      # response -> PredictiveDraws(law, observed)
    frame = predict(result, table)            # table + {r}_median, {r}_q05, {r}_q95, {r}_law_median
    frame, weights = predict_stacked({"a": fit_a, "b": fit_b}, table)   # several laws, stacked

`law` holds the law's own (epistemic) uncertainty; `observed` adds a new run's noise drawn
from the noise model and, beyond the fitted data, the law's drift (likelihood.py; on the log
scale: y = law * exp(noise + drift * distance * z)). Under `curves by run`, every row is a
checkpoint of a new run, with that run's fresh offset (curves.py) shared by the rows with the
same run id.

Stacked over several fits of one table (`predict_stacked`), each law's draws enter in
proportion to its LOO stacking weight on the fitted rows (Yao et al. 2018, by arviz's
`az.compare`), as brms's `pp_average` mixes models: a law that predicts left-out runs worse
gets less say. benchmarks/stacking.py measures it on the seed paper's tasks (README).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError, Diagnostic
from ..model import curves
from ..model.compile import law_value
from ..model.data import prepare
from ..model.likelihood import Likelihood, distance_beyond
from ..posterior.result import FitResult


# a point fit (--method map) has no posterior: its interval is this many noise draws around the
# point law (with the drift at its prior median), not the law's own uncertainty
POINT_FIT_NOISE_DRAWS = 4000


@dataclass
class PredictiveDraws:
    law: np.ndarray  # (S, n_rows): the law's value per posterior draw
    observed: np.ndarray  # (S, n_rows): a new run's value, noise and drift beyond the data included
    distance: np.ndarray  # (n_rows,): how far each row lies beyond the fitted data (likelihood.py)


def predict_draws(result: FitResult, table: pd.DataFrame, *, seed: int = 0,
                  filename: str | None = None) -> dict[str, PredictiveDraws]:
    spec = result.spec
    data = prepare(spec, table, with_responses=False, levels=result.levels, filename=filename)
    draws = result.draws
    if result.method == "map":  # one point: repeat it, so the interval shows the noise around it
        draws = {name: np.repeat(v, POINT_FIT_NOISE_DRAWS, axis=0) for name, v in draws.items()}
    n_draws = len(draws[spec.laws[0].sigma])
    # scalars (S,) -> (S, 1) to broadcast over rows; grouped (S, levels) are indexed per row
    params = {name: (v[:, None] if spec.parameters[name].group is None else v)
              for name, v in draws.items()}
    rng = np.random.default_rng(seed)
    out = {}
    for law in spec.laws:
        law_draws = np.asarray(law_value(spec, law, params, data.values, np))
        law_draws = np.broadcast_to(law_draws, (n_draws, data.n_rows)).astype(float)
        distance = distance_beyond(data.values, result.support.get(law.response, {}), data.n_rows)
        run_offset = curves.new_run_offsets(spec, draws[law.run_scale], table, rng) if spec.has_curves(law) else 0.0
        observed = Likelihood.of(law).draws(law_draws, draws[law.sigma][:, None],
                                            draws[law.drift][:, None], distance, rng, run_offset)
        out[law.response] = PredictiveDraws(law=law_draws, observed=observed, distance=distance)
    return out


def predict(result: FitResult, table: pd.DataFrame, *, seed: int = 0,
            filename: str | None = None) -> pd.DataFrame:
    """`table` with, per response, the posterior-predictive median and 90% interval (noise
    included) and the median of the law's value."""
    frame = table.copy()
    for response, draws in predict_draws(result, table, seed=seed, filename=filename).items():
        add_columns(frame, response, draws)
    return frame


def predict_stacked(fits: dict[str, FitResult], table: pd.DataFrame, *, seed: int = 0,
                    filename: str | None = None) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """`predict`'s table from several fits (name -> NUTS fit) of the same table, their draws
    mixed by LOO stacking weights per response; and the weights (response -> name -> weight)."""
    from ..posterior.compare import compare_fits  # arviz: only a stacked prediction needs it

    tables = {name: result.data_sha256[:12] for name, result in fits.items()}
    if len(set(tables.values())) > 1:
        raise DataError(Diagnostic(
            f"the fits were made on different tables (data hashes {tables}): stacking weighs laws "
            "by how well each predicts the same left-out rows", hint="fit every law to the same table"))
    draws = {name: predict_draws(result, table, seed=seed, filename=filename) for name, result in fits.items()}
    rng = np.random.default_rng(seed)
    frame, weights = table.copy(), {}
    for law in next(iter(fits.values())).spec.laws:
        lacking = [name for name, d in draws.items() if law.response not in d]
        if lacking:
            raise DataError(Diagnostic(f"{', '.join(lacking)} has no law for {law.response!r} to stack",
                                       hint="stack fits of laws for the same responses"))
        stacking = compare_fits(fits, law.response).table["weight"]
        weights[law.response] = {name: float(stacking[name]) for name in fits}
        add_columns(frame, law.response, _mixture({n: d[law.response] for n, d in draws.items()},
                                                   weights[law.response], rng))
    return frame, weights


def _mixture(draws: dict[str, PredictiveDraws], weights: dict[str, float],
             rng: np.random.Generator) -> PredictiveDraws:
    """About S draws, round(weight * S) of them from each fit's (S: the fewest any fit has)."""
    n_draws = min(len(d.law) for d in draws.values())
    picks = {name: rng.choice(len(d.law), int(round(weights[name] * n_draws)), replace=False)
             for name, d in draws.items()}
    return PredictiveDraws(law=np.concatenate([draws[n].law[i] for n, i in picks.items()]),
                           observed=np.concatenate([draws[n].observed[i] for n, i in picks.items()]),
                           distance=np.max([d.distance for d in draws.values()], axis=0))


def add_columns(frame: pd.DataFrame, response: str, draws: PredictiveDraws) -> None:
    """Adds {response}_median, _q05, _q95 (a new run) and _law_median to `frame`, whose rows are
    the draws' columns."""
    frame[f"{response}_median"] = np.median(draws.observed, axis=0)
    frame[f"{response}_q05"] = np.quantile(draws.observed, 0.05, axis=0)
    frame[f"{response}_q95"] = np.quantile(draws.observed, 0.95, axis=0)
    frame[f"{response}_law_median"] = np.median(draws.law, axis=0)
