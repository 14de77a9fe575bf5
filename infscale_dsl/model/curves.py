"""Learning curves: several rows per training run (its checkpoints), grouped by `curves by run`.

The checkpoints of one run share its seed, its data order and its schedule, so they are not
independent: a run that sits 2 % above the law sits there at every checkpoint. Counted as
independent rows, 30 checkpoints of one run would weigh like 30 runs, and the law's
parameters that only differ between runs (the size exponent, where N is fixed within a run)
would look far better known than they are. Under `curves by run`, each law adds one offset
per run on the noise's scale, partially pooled:

    log y_ij = log law(x_ij) + u_j + e_ij,   u_j ~ Normal(0, tau_<response>)

for checkpoint i of run j (y_ij = law + u_j + e_ij for noise on the identity scale). The
noise e_ij keeps its model (likelihood.py); with the default log-scale noise, sigma is still
integrated out, now over the residuals less each row's run offset. A new run draws a fresh
u ~ Normal(0, tau), shared by its rows (`new_run_offsets`).

How the offsets are sampled depends on the table. Where runs have several rows (a curve
table), each run's rows pin its offset down, and u is sampled as it is (centred): sampled as
tau * z, z_j ~ Normal(0, 1), each z_j would be tied to 1 / tau along a curved ridge. On a test
table of 8 runs x 10 rows, tau's bulk ESS was 211 per 600 draws centred against 28
non-centred. Where runs have fewer than MIN_ROWS_CENTRED rows, the data barely tell u from the
noise, and the non-centred z mixes better (one row per run: ESS 99 against 22).

What it does not model: the noise of one run's checkpoints is still taken as independent
around the run's offset, so more checkpoints of one run still sharpen what varies within a run
(the data exponent); and a checkpoint is read as the law at its tokens seen. A checkpoint
mid-way through a cosine schedule sits above the final loss of a shorter run; a law can read
a schedule column where the table has one (the sweep writes `schedule_fraction`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import numpy as np

from ..language.ast import CheckedSpec, Law

if TYPE_CHECKING:
    import pandas as pd

# the default prior of tau_<response> on the log scale: tau^2 ~ InverseGamma(RUN_SHAPE, RUN_RATE),
# median tau 0.02, 90 % between 0.01 and 0.07 (on the identity scale, times the response's
# median). A run's offset is what a table of final losses sees as noise, whose published
# residual SDs of log loss run from 0.004 (Bian et al.) and 0.006 (Chinchilla) to 0.05
# (Porian's isoFLOP tables); runs of one recipe that differ in shape or seed differ by about 1
# to 5 %. No mass near 0, for sigma's reason (likelihood.py): with few runs (OPT's curves have
# 4) tau is mostly its prior, and one with mass near 0 lets a fit claim that a new run lands
# on the law.
RUN_SHAPE = 1.0
RUN_RATE = 0.02 ** 2 * np.log(2.0)  # the median of tau^2 under shape 1 is rate / log 2
OFFSETS_SUFFIX = "__u"  # the runs' offsets u (n_runs,) of a law: tau_<response>__u
Z_SUFFIX = "__z"  # their standard-normal sampling site where they are non-centred (u = tau * z)
MIN_ROWS_CENTRED = 3  # median rows per run from which the offsets are sampled centred


@dataclass(frozen=True)
class RunGrouping:
    """How `curves by` groups a table's fitted rows, for `show`."""

    column: str
    n_runs: int
    rows_per_run: dict[str, tuple[int, float, int]]  # response -> (min, median, max) over runs

    @property
    def centred(self) -> bool:
        """Whether the offsets are sampled as they are (see the module's notes)."""
        return min(median for _, median, _ in self.rows_per_run.values()) >= MIN_ROWS_CENTRED

    def describe(self, spec: CheckedSpec) -> list[str]:
        lines = [f"curves by {self.column}: rows are checkpoints of {self.n_runs} runs"]
        if len(spec.curve_laws) < len(spec.laws):
            lines[0] += f" for {', '.join(law.response for law in spec.curve_laws)}; the other laws' rows are runs"
        for law in spec.curve_laws:
            low, median, high = self.rows_per_run[law.response]
            spread = f"{low} rows per run" if low == high else f"{low} to {high} rows per run (median {median:g})"
            form = (f"centred, {offsets_site(law)} per run" if self.centred else
                    f"non-centred, {offsets_site(law)} = {law.run_scale} * {z_site(law)}, "
                    f"{z_site(law)} ~ Normal(0, 1) per run")
            lines.append(f"  {law.response}: {spread}; each run's rows share an offset "
                         f"u ~ Normal(0, {law.run_scale}) on the {law.noise.scale} scale ({form}); "
                         "a new run draws a fresh one")
        if not self.centred:
            lines.append(f"  runs have fewer than {MIN_ROWS_CENTRED} rows: the data barely tell a run's "
                         "offset from the noise, so tau and sigma rest on their priors")
        return lines


def offsets_site(law: Law) -> str:
    return law.run_scale + OFFSETS_SUFFIX


def z_site(law: Law) -> str:
    return law.run_scale + Z_SUFFIX


def grouping(spec: CheckedSpec, levels: Mapping[str, tuple], values: Mapping[str, np.ndarray],
             rows: Mapping[str, np.ndarray]) -> RunGrouping | None:
    """Runs and rows per run of each law's fitted rows (prepared data: run codes in `values`)."""
    if spec.curves is None:
        return None
    column = spec.curves.column
    per_run = {}
    for law in spec.curve_laws:
        counts = np.bincount(np.asarray(values[column])[rows[law.response]], minlength=len(levels[column]))
        counts = counts[counts > 0]
        per_run[law.response] = (int(counts.min()), float(np.median(counts)), int(counts.max()))
    return RunGrouping(column, len(levels[column]), per_run)


def sample_offsets(spec: CheckedSpec, runs: RunGrouping, params: Mapping[str, object]) -> dict:
    """Inside a numpyro model, after the run scales: each law's run offsets u, (n_runs,) each."""
    import numpyro
    import numpyro.distributions as dist

    offsets = {}
    for law in spec.curve_laws:
        tau = params[law.run_scale]
        if runs.centred:
            u = numpyro.sample(offsets_site(law), dist.Normal(0.0, tau).expand([runs.n_runs]).to_event(1))
        else:
            z = numpyro.sample(z_site(law), dist.Normal(0.0, 1.0).expand([runs.n_runs]).to_event(1))
            u = numpyro.deterministic(offsets_site(law), tau * z)
        offsets[offsets_site(law)] = u
    return offsets


def with_run_offsets(spec: CheckedSpec, law: Law, mu, params: Mapping[str, object], rows: Mapping[str, object]):
    """The law's value mu (..., n_rows) moved by each row's run offset on the noise's scale;
    params hold the law's offsets (n_runs,) or, one row per draw, (S, n_runs)."""
    import jax.numpy as jnp

    codes = jnp.asarray(rows[spec.curves.column]).astype(int)
    offset = jnp.take(params[offsets_site(law)], codes, axis=-1)
    return mu * jnp.exp(offset) if law.noise.scale == "log" else mu + offset


def point_scales(residual: np.ndarray, codes: np.ndarray, n_runs: int) -> tuple[float, float, np.ndarray]:
    """For a point fit, which fits the law alone: (sigma, tau, u (n_runs,)) from its residuals
    (n,) and their run codes (n,). u is each run's mean residual (0 for a run without rows
    here), tau their spread, sigma the robust spread of the residuals around their run's mean.
    With one run there is no spread: tau is 1e-12 and its offset 0."""
    counts = np.bincount(codes, minlength=n_runs)
    means = np.bincount(codes, weights=residual, minlength=n_runs) / np.maximum(counts, 1)
    within = residual - means[codes]
    mad = 1.4826 * np.median(np.abs(within - np.median(within)))
    sigma = mad if mad > 0 else np.std(within) + 1e-12
    seen = counts > 0
    if seen.sum() < 2:
        return float(sigma), 1e-12, np.zeros(n_runs)
    return float(sigma), max(float(np.std(means[seen], ddof=1)), 1e-12), np.where(seen, means, 0.0)


def new_run_offsets(spec: CheckedSpec, tau: np.ndarray, table: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """(S, n_rows) offsets of new runs, one per draw of tau (S,): rows of `table` with the same
    run id share one; rows without the column, or without an id, are each a run of their own."""
    import pandas as pd

    column = spec.curves.column
    if column in table.columns:
        codes, labels = pd.factorize(table[column].reset_index(drop=True))
    else:
        codes, labels = np.full(len(table), -1), []
    alone = codes < 0
    codes = np.where(alone, len(labels) + np.cumsum(alone) - 1, codes)
    z = rng.standard_normal((len(tau), int(codes.max()) + 1 if len(codes) else 0))
    return tau[:, None] * z[:, codes]
