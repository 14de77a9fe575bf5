"""The two point-fit baselines of the extrapolation benchmark, on any law of the task list.

- `least_squares`: scipy.optimize.curve_fit on raw loss (the seed paper's method), best of a
  grid of starts; interval from parametric draws of the fitted covariance plus the residual noise.
- `huber_bootstrap`: Besiroglu et al.'s fit, the sum of Huber losses (delta 1e-3) of log
  residuals, L-BFGS-B from the 32 best points of the same grid; interval from bootstrap refits
  (rows resampled, each refit started at the full fit, at most 300 iterations), each draw times
  a resampled log residual of the full fit.

Both evaluate the law with `infscale_dsl.model.compile.law_value` and fit positive parameters on the
log scale. Each returns (median, q05, q95) for the test rows, and the joint draws (draws, rows)
the interval was read from (None where there is no interval).
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
from scipy.optimize import curve_fit, minimize

from infscale_dsl.model.compile import law_value
from infscale_dsl.model.data import prepare
from infscale_dsl.language.ast import CheckedSpec
from infscale_dsl.language.evaluate import names_in

# starting values per parameter name, as in Hoffmann's grid: exponents, offsets, coefficients
EXPONENTS = {"alpha": (0.2, 0.5), "beta": (0.2, 0.5), "eta": (0.15, 0.4)}
SMALL = {"eps": (1e-4, 1e-2), "C": (1e-2, 1e-1)}  # C: the schedule term of the trajectory tasks (positive)
COEFFICIENTS = {"A", "B", "a", "b"}


class LawFunction:
    """The law of `spec` as a numpy function of log-parameters, on a table's rows."""

    def __init__(self, spec: CheckedSpec, response: str = "loss"):
        self.spec, self.law = spec, spec.law_for(response)
        self.names = [n for n in dict.fromkeys(names_in(self.law.expr)) if n in spec.parameters]

    def inputs(self, table: pd.DataFrame) -> dict:
        return prepare(self.spec, table, with_responses=False).values

    def __call__(self, values: dict, log_params: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):  # overflowing trial points are rejected by the fits
            params = dict(zip(self.names, np.exp(log_params)))
            n = len(next(iter(values.values())))
            return np.broadcast_to(np.asarray(law_value(self.spec, self.law, params, values, np), float), (n,))

    def starts(self, y: np.ndarray) -> list[np.ndarray]:
        grids = []
        for name in self.names:
            if name in EXPONENTS:
                grids.append(EXPONENTS[name])
            elif name in SMALL:
                grids.append(SMALL[name])
            elif name == "E":
                grids.append((0.5 * y.min(), 0.9 * y.min()))
            elif name in COEFFICIENTS:
                grids.append(tuple(np.exp([2.0, 6.0, 10.0, 14.0])))
            else:
                raise ValueError(f"no start grid for parameter {name!r}; add it to baselines.py")
        return [np.log(np.array(point)) for point in itertools.product(*grids)]


def take(values: dict, rows: np.ndarray) -> dict:
    return {k: np.asarray(v)[rows] for k, v in values.items()}


def least_squares_ends(f: LawFunction, x: dict, y: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray, np.ndarray]]:
    """(residual sum of squares, start, fitted log-parameters, their covariance) from each start
    of the grid where curve_fit converges to finite residuals, smallest residuals first."""
    ends = []
    for start in f.starts(y):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theta, cov = curve_fit(lambda _, *t: f(x, np.array(t)), np.arange(len(y)), y, p0=start, maxfev=2000)
        except (RuntimeError, ValueError):
            continue
        sse = float(np.sum((f(x, theta) - y) ** 2))
        if np.isfinite(sse):
            ends.append((sse, start, theta, cov))
    return sorted(ends, key=lambda end: end[0])


def least_squares(f: LawFunction, train: pd.DataFrame, test: pd.DataFrame, *, draws: int = 2000,
                  seed: int = 0):
    x, y = f.inputs(train), train[f.law.response].to_numpy(float)
    ends = least_squares_ends(f, x, y)
    if not ends:
        raise RuntimeError("curve_fit converged from no start")
    sse, _, theta, cov = ends[0]
    xt = f.inputs(test)
    median = f(xt, theta)
    if not np.all(np.isfinite(cov)):  # as many runs as parameters: no covariance, no interval
        return median, np.full_like(median, np.nan), np.full_like(median, np.nan), None
    rng = np.random.default_rng(seed)
    thetas = rng.multivariate_normal(theta, cov, size=draws, check_valid="ignore")
    noise_sd = np.sqrt(sse / max(len(y) - len(theta), 1))
    predicted = np.array([f(xt, t) for t in thetas]) + noise_sd * rng.standard_normal((draws, len(median)))
    return median, np.nanquantile(predicted, 0.05, axis=0), np.nanquantile(predicted, 0.95, axis=0), predicted


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r ** 2, delta * (a - 0.5 * delta))


def huber_fit(f: LawFunction, x: dict, log_y: np.ndarray, starts, delta: float, refine: int = 32,
               maxiter: int = 15000):
    def objective(theta):
        r = np.log(f(x, theta)) - log_y
        return float(np.sum(_huber(r, delta))) if np.all(np.isfinite(r)) else 1e10

    # L-BFGS from the `refine` best grid points only: numerical gradients make each run costly
    starts = sorted(starts, key=objective)[:refine]
    best = None
    for start in starts:
        found = minimize(objective, start, method="L-BFGS-B", options={"maxiter": maxiter})
        if best is None or found.fun < best.fun:
            best = found
    return best.x


def huber_bootstrap(f: LawFunction, train: pd.DataFrame, test: pd.DataFrame, *, bootstraps: int = 200,
                    delta: float = 1e-3, seed: int = 0):
    x, y = f.inputs(train), train[f.law.response].to_numpy(float)
    theta = huber_fit(f, x, np.log(y), f.starts(y), delta)
    residuals = np.log(y) - np.log(f(x, theta))
    xt = f.inputs(test)
    median = f(xt, theta)
    rng = np.random.default_rng(seed)
    predicted = []
    for _ in range(bootstraps):
        rows = rng.integers(0, len(y), len(y))
        refit = huber_fit(f, take(x, rows), np.log(y[rows]), [theta], delta, maxiter=300)
        predicted.append(f(xt, refit) * np.exp(rng.choice(residuals, len(median))))
    predicted = np.array(predicted)
    return median, np.nanquantile(predicted, 0.05, axis=0), np.nanquantile(predicted, 0.95, axis=0), predicted
