"""Synthetic tables from a checked spec: the law at given parameter values, plus its noise.

    table = simulate(spec, {"E": 1.8, "A": 480, ...}, inputs, sigma=0.01, seed=0)
    table = published_table("chinchilla", rows=12)        # a corpus law at its published values

`simulate` evaluates the law with `compile.law_value` (the fit's own evaluator) and adds noise
as the law's noise model says: log-normal (or log-Student-t) for `on log`, additive otherwise.
`PUBLISHED` holds a parameter set per law in models/, with its source, and an input grid; the
corpus tests and the sampler benchmark fit these tables.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from ..model.compile import law_value
from ..model.data import prepare
from ..language import load_spec
from ..language.ast import CheckedSpec
from ..language.evaluate import names_in

# the ready specs: inside an installed wheel, else the repository's models/ folder
_PACKAGE = Path(__file__).resolve().parents[1]
MODELS = _PACKAGE / "models" if (_PACKAGE / "models").is_dir() else _PACKAGE.parent / "models"


def simulate(spec: CheckedSpec, params: Mapping[str, object], inputs: pd.DataFrame, *,
             sigma: float | Mapping[str, float] = 0.01, seed: int = 0) -> pd.DataFrame:
    """`inputs` with one column per law's response drawn at `params`. A grouped parameter is
    given as {level: value}; `sigma` is the noise scale (one for all laws, or per response)."""
    data = prepare(spec, inputs, with_responses=False)
    values = {}
    for name, value in params.items():
        parameter = spec.parameters[name]
        if parameter.group is not None:  # levels in the order prepare coded them
            value = np.array([value[level] for level in data.levels[parameter.group]], float)
        values[name] = value
    rng = np.random.default_rng(seed)
    table = inputs.copy()
    for law in spec.laws:
        missing = [p for p in names_in(law.expr) if p in spec.parameters and p not in values]
        if missing:
            raise ValueError(f"no value for {', '.join(missing)} (law for {law.response})")
        with np.errstate(all="ignore"):
            mean = np.broadcast_to(np.asarray(law_value(spec, law, values, data.values, np), float),
                                   (data.n_rows,))
        scale = sigma[law.response] if isinstance(sigma, Mapping) else sigma
        if law.noise.family == "StudentT":
            noise = scale * rng.standard_t(law.noise.nu, data.n_rows)
        else:
            noise = scale * rng.standard_normal(data.n_rows)
        observed = mean * np.exp(noise) if law.noise.scale == "log" else mean + noise
        table[spec.data[law.response].column] = observed
    return table


def n_parameters(spec: CheckedSpec, levels: Mapping[str, int] | None = None) -> int:
    """Parameters the data checker counts for the first law: one per level for grouped ones."""
    levels = levels or {}
    law = spec.laws[0]
    return sum(levels.get(spec.parameters[p].group, 1) for p in spec.law_parameters(law))


# --- published parameter sets -------------------------------------------------------------------

def _cycle(values, n: int) -> np.ndarray:
    return np.resize(np.asarray(values, float), n)


def _lm_runs(n: int, log_n: tuple[float, float], ratios=(20, 5, 80, 10, 40, 160)) -> dict:
    """Sizes log-spaced over log10 N in `log_n`, tokens per parameter cycling over `ratios`."""
    N = np.logspace(*log_n, n)
    return {"N": N, "D": N * _cycle(ratios, n)}


def _shaped_runs(n: int) -> pd.DataFrame:
    """The seed paper's columns: sizes 8e7-1.2e9 and shapes with R = d_model/n_layers 16-128."""
    runs = _lm_runs(n, (7.9, 9.1), ratios=(20, 40, 160))
    d_model = _cycle([512, 768, 1024, 1536, 2048], n)
    n_layers = np.maximum(2, np.round(d_model / _cycle([16, 64, 32, 128], n)))
    return pd.DataFrame({"params_N": runs["N"], "tokens_D": runs["D"], "d_model": d_model, "n_layers": n_layers})


def _repeated_runs(n: int) -> pd.DataFrame:
    """Muennighoff's setting: U unique tokens (1-20 per parameter) seen 1 to 60 times."""
    N = np.logspace(7.5, 9.5, n)
    U = N * _cycle([20, 5, 1], n)
    return pd.DataFrame({"N": N, "U": U, "D": U * _cycle([1, 4, 16, 60, 2], n)})


def _grouped_runs(n: int) -> pd.DataFrame:
    return pd.DataFrame(_lm_runs(n, (7.8, 9.8)) | {"dataset": np.resize(["c4", "pile", "web"], n)})


@dataclass(frozen=True)
class Published:
    law: str  # file in models/
    params: dict
    source: str
    inputs: Callable[[int], pd.DataFrame]  # rows -> input columns
    sigma: float = 0.01
    levels: dict = field(default_factory=dict)  # category -> number of levels, for row counts

    def spec(self) -> CheckedSpec:
        return load_spec(MODELS / self.law)


_TIED = dict(A=7720.63, B=68572.9, E=2.13061, alpha=0.494667)  # Bian et al. 2025, Chinchilla tied
_ETA = _TIED["alpha"] / 2  # Gadre's eta: alpha = beta = 2 eta, a = A 6^eta, b = B 6^eta

PUBLISHED: dict[str, Published] = {
    "chinchilla": Published(
        "chinchilla.law", dict(E=1.817, A=482.0, B=2085.4, alpha=0.3478, beta=0.3659),
        "Besiroglu et al. 2024 refit of Hoffmann et al. 2022",
        lambda n: pd.DataFrame(_lm_runs(n, (7.8, 10.2)))),
    "chinchilla_tied": Published(
        "chinchilla_tied.law", dict(_TIED), "Bian et al. 2025, Chinchilla baseline (alpha = beta)",
        lambda n: _shaped_runs(n)[["params_N", "tokens_D"]]),
    "bian2025": Published(
        "bian2025.law", dict(A=54754.4, B=778346, E=2.44751, alpha=0.614574, eps=0.00114621),
        "Bian et al. 2025, inference-aware law, tied", _shaped_runs),
    "bian2025_eta": Published(
        "bian2025_eta.law", dict(A=50841.0, B=704733, E=2.4675, alpha=0.609582, eps=2.358e-05, eta=1.25607),
        "Bian et al. 2025, inference-aware law, eta free", _shaped_runs),
    "kaplan": Published(
        "kaplan.law", dict(aN=0.076, aD=0.095, Nc=8.8e13, Dc=5.4e13), "Kaplan et al. 2020, eq. 1.5",
        lambda n: pd.DataFrame(_lm_runs(n, (6.0, 9.0)))),
    "latency": Published(
        "latency.law", dict(c0=1.65, c1=0.027, c2=5e-9),
        "H200 fused decode (shared data README): 1.65 ms fixed, 0.027 ms per layer; "
        "c2 = 24 bytes per d_model^2 per layer / 4.8 TB/s",
        lambda n: pd.DataFrame({"d_model": _cycle([1024, 1536, 2048, 3072, 4096], n),
                                "n_layers": _cycle([79, 35, 20, 9, 5, 12, 40], n)}),
        sigma=0.03),
    "gadre2024": Published(
        "gadre2024.law", dict(E=_TIED["E"], eta=_ETA, a=_TIED["A"] * 6 ** _ETA, b=_TIED["B"] * 6 ** _ETA),
        "Gadre et al. 2024 form at Bian et al. 2025's tied Chinchilla fit (alpha = 2 eta)",
        lambda n: pd.DataFrame(_lm_runs(n, (7.9, 9.8), ratios=(20, 20, 20, 20, 320, 80)))),
    "muennighoff2023": Published(
        "muennighoff2023.law", dict(E=1.87, A=521, B=1488, alpha=0.353, beta=0.353, RD=15.4, RN=5.3),
        "Muennighoff et al. 2023, data-constrained fit",
        _repeated_runs),
    "caballero2023_bpl": Published(
        "caballero2023_bpl.law", dict(E=1.7, b=10.3, c0=0.05, c1=0.1, d1=1e20, f1=0.5),
        "Caballero et al. 2023 form; illustrative values (break at 1e20 FLOPs), not a published fit",
        lambda n: pd.DataFrame({"C": np.logspace(17, 23, n)})),
    "porian2024_frontier": Published(
        "porian2024_frontier.law", dict(A=128.9, E=2.006, alpha=0.106),
        "Porian et al. 2024, RefinedWeb, corrected setup",
        lambda n: pd.DataFrame({"C": np.logspace(16.1, 19.4, n)})),
    "chinchilla_grouped": Published(
        "chinchilla_grouped.law",
        dict(E={"c4": 1.82, "pile": 1.95, "web": 2.10}, A=482.0, B=2085.4, alpha=0.3478, beta=0.3659),
        "Besiroglu et al. 2024's Chinchilla fit; per-data-set E illustrative",
        _grouped_runs,
        levels={"dataset": 3}),
}


def published_table(name: str, rows: int, *, seed: int = 0) -> pd.DataFrame:
    """A synthetic table of `rows` runs from `PUBLISHED[name]`, noise included."""
    entry = PUBLISHED[name]
    return simulate(entry.spec(), entry.params, entry.inputs(rows), sigma=entry.sigma, seed=seed)


def corpus_tables(name: str, sizes=(None, 12, 48), *, seed: int = 0) -> dict[int, pd.DataFrame]:
    """Synthetic tables for one corpus law, by row count; None stands for as many rows as the
    law has parameters (the smallest table the data checker accepts)."""
    entry = PUBLISHED[name]
    counts = [n_parameters(entry.spec(), entry.levels) if n is None else n for n in sizes]
    return {n: published_table(name, n, seed=seed) for n in counts}
