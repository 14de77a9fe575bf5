"""Model comparison by PSIS-LOO (arviz): which law predicts left-out runs best, with the
Pareto-k check that says where the LOO estimate itself cannot be trusted."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd

from ..errors import DataError, Diagnostic
from .result import FitResult


@dataclass
class Comparison:
    response: str
    table: pd.DataFrame  # az.compare: rank, elpd_loo, p_loo, elpd_diff, weight, se, dse, warning
    high_pareto_k: dict[str, list[int]]  # model -> rows whose Pareto k exceeds arviz's good_k
    good_k: dict[str, float]  # model -> the threshold used (min(1 - 1/log10(S), 0.7))


def compare_fits(fits: dict[str, FitResult], response: str | None = None) -> Comparison:
    """Rank fits of the same rows by expected log predictive density (PSIS-LOO)."""
    for name, result in fits.items():
        if result.idata is None or "log_likelihood" not in result.idata.groups():
            raise DataError(Diagnostic(f"{name} has no pointwise log-likelihood to compare",
                                       hint="fit it with --method nuts (a point fit has no posterior)"))
    shared = set.intersection(*(set(r.idata.log_likelihood.data_vars) for r in fits.values()))
    response = response or next((law.response for law in next(iter(fits.values())).spec.laws
                                 if law.response in shared), None)
    if response is None or response not in shared:
        raise DataError(Diagnostic("the models share no response to compare on",
                                   hint=f"responses each model has: {', '.join(sorted(shared)) or 'none'}"))
    n_rows = {name: r.n_obs[response] for name, r in fits.items()}
    if len(set(n_rows.values())) > 1:
        raise DataError(Diagnostic(f"the models were fitted on different rows of {response!r}: {n_rows}",
                                   hint="fit every model on the same table"))
    idatas = {name: r.to_arviz() for name, r in fits.items()}
    high, good = {}, {}
    with warnings.catch_warnings():
        # arviz warns of high Pareto k per call; `describe` names the rows once instead
        warnings.simplefilter("ignore", UserWarning)
        for name, idata in idatas.items():
            loo = az.loo(idata, pointwise=True, var_name=response)
            k = np.asarray(loo.pareto_k).reshape(-1)
            good[name] = float(loo.good_k)
            high[name] = [int(i) for i in np.flatnonzero(k > loo.good_k)]
        table = az.compare(idatas, ic="loo", var_name=response)
    return Comparison(response, table, high, good)


def describe(comparison: Comparison) -> str:
    columns = ["rank", "elpd_loo", "se", "elpd_diff", "dse", "p_loo", "weight"]
    lines = [f"PSIS-LOO comparison on {comparison.response!r} (higher elpd_loo predicts better):",
             comparison.table[columns].to_string(float_format=lambda x: f"{x:.3f}")]
    for name, rows in comparison.high_pareto_k.items():
        if rows:
            lines.append(f"warning: {name}: Pareto k > {comparison.good_k[name]:.2f} at rows {rows}: "
                         "LOO is unreliable there (influential runs); check them or refit without them")
    return "\n".join(lines)
