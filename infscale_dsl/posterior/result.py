"""A fitted law: posterior draws, diagnostics, and the fit folder that stores them.

A fit folder (`infscale-dsl fit ... -o fit/`) holds posterior.nc, summary.json, spec.law and
fit.json; fitfolder.py writes it whole and reads it back. A NUTS fit's InferenceData holds the
groups arviz's tools expect (`complete_inference_data`): `az.summary(idata)` and
`az.plot_ppc(idata)` work as they are.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import __version__
from . import folder as fitfolder
from ..language.ast import CheckedSpec

if TYPE_CHECKING:
    import arviz as az

    from ..model.compile import CompiledModel
    from ..model.data import PreparedData

# the diagnostics gate: a fit that fails any of these is flagged (and `--strict` exits 1)
MAX_R_HAT = 1.01
MIN_ESS = 400
PRIOR_DRAWS = 500  # prior and prior-predictive draws stored with a fit (one chain)


@dataclass
class FitResult:
    spec: CheckedSpec
    method: str  # "nuts" | "map"
    idata: az.InferenceData | fitfolder.StoredInferenceData  # the latter: a loaded fit, read as needed
    levels: dict[str, tuple[str, ...]]
    data_ranges: dict[str, tuple[float, float]]  # data/derived name -> observed (min, max)
    n_obs: dict[str, int]  # response -> rows fitted
    left_out: dict[str, int]  # response -> rows without that response
    data_sha256: str
    columns: tuple[str, ...]  # the table's columns (to re-check the spec on load)
    objective: float | None = None  # point fit only: the robust loss at the optimum
    priors: dict[str, str] = field(default_factory=dict)  # parameter -> the prior used, in words
    sampler: dict = field(default_factory=dict)  # the fit's settings: chains, draws, mass matrix, seed
    checks: dict = field(default_factory=dict)  # posterior-predictive checks (checks.py)
    # response -> input -> its values on the fitted rows: predictions measure from their hull
    support: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @cached_property
    def table(self) -> pd.DataFrame:
        """The per-parameter summary (see summary()), computed when first needed: `predict`
        does not need it, nor arviz, which computes R-hat and ESS."""
        return _summarise(self)

    def __repr__(self) -> str:
        verdict = "diagnostics ok" if self.diagnostics["ok"] else "DIAGNOSTICS FAILED"
        if self.method == "map":
            verdict = "a point fit"
        sizes = self.idata.posterior.sizes
        return (f"FitResult({self.spec.filename}: {self.method}, {sizes['chain']} chains x {sizes['draw']} draws, "
                f"{', '.join(f'{r} {n} rows' for r, n in self.n_obs.items())}; {verdict})")

    # ---- draws ------------------------------------------------------------------------------

    @property
    def draws(self) -> dict[str, np.ndarray]:
        """Parameter -> draws with chains flattened: (S,) or (S, n_levels) if grouped."""
        posterior = self.idata.posterior
        out = {}
        for name in self.spec.parameters:
            values = posterior[name].values  # (chains, draws, ...)
            out[name] = values.reshape((-1,) + values.shape[2:])
        return out

    @property
    def n_draws(self) -> int:
        posterior = self.idata.posterior
        return posterior.sizes["chain"] * posterior.sizes["draw"]

    @property
    def ess(self) -> dict[str, float]:
        """Bulk ESS per summary row (parameter or `name[level]`)."""
        return self.table["ess_bulk"].to_dict()

    @property
    def diagnostics(self) -> dict:
        """Divergences, worst R-hat and ESS, whether the gate passed and, if not, why."""
        divergences = 0
        if "sample_stats" in self.idata.groups() and "diverging" in self.idata.sample_stats:
            divergences = int(self.idata.sample_stats["diverging"].values.sum())
        r_hat = self.table["r_hat"].to_numpy(dtype=float)
        ess = self.table["ess_bulk"].to_numpy(dtype=float)
        problems: list[str] = []
        if self.method == "map":
            problems.append("a point fit (--method map) has no posterior: intervals and "
                            "probabilities show noise only, not the law's own uncertainty")
            problems += self.checks.get("problems", [])
            return {"divergences": 0, "max_r_hat": None, "min_ess_bulk": None, "ok": False,
                    "problems": problems}
        max_r_hat = float(np.nanmax(r_hat)) if np.isfinite(r_hat).any() else float("nan")
        min_ess = float(np.nanmin(ess)) if np.isfinite(ess).any() else float("nan")
        if divergences:
            problems.append(f"{divergences} divergent transitions: the sampler missed part of "
                            "the posterior (tighten priors or bounds, or raise --target-accept)")
        chains = self.idata.posterior.sizes["chain"]
        if chains < 2:
            problems.append("one chain: R-hat cannot see chains that disagree; run at least 2 (--chains 4)")
        elif not max_r_hat <= MAX_R_HAT:
            worst = self.table["r_hat"].idxmax() if np.isfinite(r_hat).any() else "?"
            problems.append(f"R-hat {max_r_hat:.3f} > {MAX_R_HAT} ({worst}): chains disagree; "
                            "run more warm-up and draws")
        if not min_ess >= MIN_ESS:
            worst = self.table["ess_bulk"].idxmin() if np.isfinite(ess).any() else "?"
            problems.append(f"bulk ESS {min_ess:.0f} < {MIN_ESS} ({worst}): {self._draws_hint(min_ess)}")
        problems += self.checks.get("problems", [])
        return {"divergences": divergences, "max_r_hat": max_r_hat, "min_ess_bulk": min_ess,
                "ok": not problems, "problems": problems}

    def _draws_hint(self, min_ess: float) -> str:
        """The draws per chain that would reach MIN_ESS at the ESS per draw this fit measured."""
        draws = self.idata.posterior.sizes["draw"]
        if not min_ess > 0:
            return "run more draws"
        needed = int(np.ceil(1.2 * draws * MIN_ESS / min_ess / 100) * 100)  # 20 % margin, in hundreds
        return f"run more draws (at this fit's ESS per draw, --draws {needed})"

    def summary(self) -> pd.DataFrame:
        """Per parameter (and per level of a grouped one): mean, median, q05, q95, r_hat,
        ess_bulk, ess_tail."""
        return self.table.copy()

    def predict(self, table: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
        """`table` with {response}_median, _q05, _q95 (a new run) and _law_median (see predict.py)."""
        from ..prediction.predict import predict  # predict.py imports this module

        return predict(self, table, seed=seed)

    def to_arviz(self) -> az.InferenceData:
        """The draws as arviz InferenceData (see complete_inference_data for its groups)."""
        if isinstance(self.idata, fitfolder.StoredInferenceData):
            self.idata = self.idata.to_inference_data()
        return self.idata

    def summary_json(self) -> dict:
        params = {name: {k: _plain(row[k]) for k in ("mean", "median", "q05", "q95", "r_hat", "ess_bulk")}
                  for name, row in self.table.iterrows()}
        diagnostics = self.diagnostics
        return {
            "params": params,
            "diagnostics": {k: diagnostics[k] for k in ("divergences", "max_r_hat", "min_ess_bulk", "ok")}
                           | {"problems": diagnostics["problems"]},
            "n_obs": self.n_obs,
            "left_out": self.left_out,
            "method": self.method,
            "sampler": self.sampler,
            "checks": self.checks,
            "objective": self.objective,
            "data_sha256": self.data_sha256,
            "infscale_dsl_version": __version__,
        }

    # ---- the fit folder -----------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write the fit folder (see fitfolder.py); an earlier fit there is replaced whole."""
        return fitfolder.write(self, folder)

    @classmethod
    def load(cls, folder: str | Path) -> "FitResult":
        """Read a fit folder; DataError naming the file and what to do if it is damaged."""
        return cls(**fitfolder.read(folder))


def _summarise(result: FitResult) -> pd.DataFrame:
    import arviz as az

    posterior = result.idata.posterior[list(result.spec.parameters)]
    several_chains = posterior.sizes["chain"] > 1 and posterior.sizes["draw"] > 3
    r_hat = az.rhat(posterior) if several_chains else None
    ess_bulk = az.ess(posterior, method="bulk") if posterior.sizes["draw"] > 3 else None
    ess_tail = az.ess(posterior, method="tail") if posterior.sizes["draw"] > 3 else None
    rows = {}
    for name in result.spec.parameters:
        values = posterior[name].values  # (chains, draws) or (chains, draws, levels)
        group = result.spec.parameters[name].group
        labels = [name] if values.ndim == 2 else [f"{name}[{lv}]" for lv in result.levels[group]]
        flat = values.reshape(values.shape[0] * values.shape[1], -1)
        for i, label in enumerate(labels):
            rows[label] = {
                "mean": float(flat[:, i].mean()),
                "median": float(np.median(flat[:, i])),
                "q05": float(np.quantile(flat[:, i], 0.05)),
                "q95": float(np.quantile(flat[:, i], 0.95)),
                "r_hat": _statistic(r_hat, name, i),
                "ess_bulk": _statistic(ess_bulk, name, i),
                "ess_tail": _statistic(ess_tail, name, i),
            }
    return pd.DataFrame.from_dict(rows, orient="index")


def _statistic(dataset, name: str, i: int) -> float:
    """Entry i of `name` in an arviz statistic (rhat, ess); NaN where it was not computed."""
    if dataset is None:
        return float("nan")
    return float(np.asarray(dataset[name].values).reshape(-1)[i])


def _plain(x):
    x = float(x)
    return None if not np.isfinite(x) else x


# ---- the InferenceData of a NUTS fit ------------------------------------------------------------

def complete_inference_data(compiled: "CompiledModel", data: "PreparedData", idata: az.InferenceData,
                            seed: int) -> az.InferenceData:
    """`idata` of a NUTS fit (posterior of every sampling site, log_likelihood, sample_stats,
    observed_data) in the shape arviz's tools expect:

    posterior                the spec's parameters only, so az.summary needs no var_names;
    unconstrained_posterior  the sites NUTS moved in instead (names with `__`: A__log_ref,
                             E__log_sum, E__shares, E__z), where arviz's schema puts draws in
                             the sampler's transformed space. They stay in the file because
                             their R-hat and ESS diagnose the sampler itself;
    posterior_predictive     a new run per posterior draw and fitted row: the law plus noise
                             (no drift: every fitted row lies inside the fitted data);
    prior, prior_predictive  PRIOR_DRAWS draws of the parameters from their priors, and the
                             runs they imply on the fitted rows.
    """
    import arviz as az

    spec = compiled.spec
    posterior = idata.posterior
    internal = [name for name in posterior.data_vars if name not in spec.parameters]
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    flat = {name: posterior[name].values.reshape((chains * draws,) + posterior[name].shape[2:])
            for name in spec.parameters}
    rng = np.random.default_rng(seed + 4)  # a stream of its own: fit.py draws the noise scales from seed itself
    prior = draw_prior(compiled, compiled.inputs(data)["scales"], np.random.default_rng(seed + 3), PRIOR_DRAWS)
    with np.errstate(all="ignore"):  # a prior draw may put the law far out of range: inf is its honest value
        prior_runs = new_runs(compiled, data, prior, rng)
    posterior_runs = new_runs(compiled, data, flat, rng)
    groups = {group: idata[group] for group in idata.groups()}
    groups |= {
        "posterior": posterior[list(spec.parameters)],
        "posterior_predictive": az.convert_to_dataset(
            {r: v.reshape((chains, draws, -1)) for r, v in posterior_runs.items()}),
        "prior": az.convert_to_dataset({n: prior[n][None] for n in spec.parameters}),
        "prior_predictive": az.convert_to_dataset({r: v[None] for r, v in prior_runs.items()}),
    }
    if internal:
        groups["unconstrained_posterior"] = posterior[internal]
    return az.InferenceData(**groups)


def draw_prior(compiled: "CompiledModel", scales: dict, rng: np.random.Generator, n_draws: int) -> dict[str, np.ndarray]:
    """`n_draws` of every parameter from its prior (declared or default): (n_draws,), or
    (n_draws, levels) for a grouped one. Drawn in NumPy (priors.Prior.draw) in the model's
    sample order, each prior reading the data's scales and the draws of the parameters before
    it. A coefficient's default prior is on the log of its term at the data's typical X
    (compile.py); its draws are turned back into the coefficient as the model does."""
    from ..language.evaluate import evaluate

    spec = compiled.spec
    env = dict(spec.constants) | {name: np.asarray(value) for name, value in scales.items()}
    draws = {}
    for name in compiled.sample_order():
        choice, group = compiled.priors[name], spec.parameters[name].group
        if group is None:
            value = choice.draw(env, rng, (n_draws,))
        else:  # (levels, n_draws): hyperparameter draws (n_draws,) broadcast from the right
            value = choice.draw(env, rng, (len(compiled.levels[group]), n_draws)).T
        if compiled.roles.role[name] == "coefficient" and choice.source == "default":
            term = compiled.roles.term_for(name)
            shift = sum(evaluate(e, env, np) * env[f"log_ref:{base}"] for base, e in term.powers)
            value = np.exp(value - shift)
        env[name] = draws[name] = value
    return draws


def new_runs(compiled: "CompiledModel", data: "PreparedData", draws: dict[str, np.ndarray],
             rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Response -> (S, rows): a new run at each fitted row per draw of the parameters (S, ...),
    the law plus noise from its noise model."""
    from ..model.compile import law_value
    from ..model.likelihood import Likelihood

    spec = compiled.spec
    # scalars (S,) -> (S, 1) to broadcast over rows; grouped (S, levels) are indexed per row
    params = {n: v[:, None] if spec.parameters[n].group is None else v for n, v in draws.items()}
    runs = {}
    for law in spec.laws:
        rows = data.rows[law.response]
        values = {n: np.asarray(v)[rows] for n, v in data.values.items()}
        n_draws = len(draws[law.sigma])
        mu = np.broadcast_to(np.asarray(law_value(spec, law, params, values, np), dtype=float), (n_draws, len(rows)))
        no_drift = np.zeros((n_draws, 1))  # fitted rows lie inside the fitted data: distance 0
        runs[law.response] = Likelihood.of(law).draws(mu, draws[law.sigma][:, None], no_drift, np.zeros(len(rows)), rng)
    return runs
