"""The noise model of one law, in one place: how an observed y relates to the law's value mu.

Every part of the pipeline that reads the noise model asks this object: the NumPyro model
(`distribution`), the point fit (`residual`), the log-likelihood stored with a fit
(`log_jacobian`), and predictions (`draws`). A new noise family touches this file only.

Two scales make up a new run's spread around the law:
- `sigma_<response>`, the noise within the fitted range, fitted from the residuals;
- `drift_<response>`, the law's own misfit per unit of distance beyond the fitted data. Laws
  bend away from the truth outside the range they were fitted on (Chinchilla's largest runs
  sit below its fitted curve), and a constant noise scale cannot say so. The distance d of a
  row is how far it lies from the convex hull of the fitted runs in the space of the law's
  inputs: in log units for positive inputs (so d = 1 is a factor e beyond the fitted runs),
  in widths of the fitted range for others. A new run then has log y = log mu + noise +
  drift * d * z with z ~ Normal(0, 1) (on the identity scale, the drift is relative to mu).
  Inside the fitted range d = 0, so the data cannot inform the drift directly: its prior is
  what a prediction beyond the data assumes, and `show` prints it. By default it scales with
  how far the fitted runs scatter around the law, drift ~ HalfNormal(sqrt(DRIFT_FLOOR^2 +
  (DRIFT_PER_SCATTER * sigma)^2)) per posterior draw of sigma: a law that describes its own
  runs loosely (Porian's isoFLOP tables, sigma 0.03 to 0.06) bends away faster beyond them
  than one its runs sit on (Chinchilla, the seed paper's runs: sigma 0.004), and the floor
  keeps a law that fits its runs almost exactly from claiming it fits beyond them as well.
  Both numbers were chosen by the backtests of benchmarks/extrapolation.py (README).

Where a spec declares no noise, the table decides (`with_default_noise`): Normal on the log
scale, or StudentT(nu=4) on the log scale where the law has ROBUST_ROWS_PER_PARAMETER fitted rows
or more per parameter. Measured on the extrapolation benchmark (README): on tables that large a
heavy-tailed likelihood lets a stray run sit off the law instead of bending it (Chinchilla's
top tenth of compute 1.14 -> 0.84 % off, OPT's curves pass the gate), while on 5, 6 or 27 runs
it let the law drift away from rows it needed (0.97 -> 1.09, 1.51 -> 1.91, 0.94 -> 1.16 %).

With Normal noise on the log scale and the default noise prior, sigma^2 ~ InverseGamma(a, b),
the sampler never sees sigma: it is integrated out (`marginal_log_density`, a multivariate t
in the residuals), and each posterior draw's sigma is then drawn from its exact conditional,
InverseGamma(a + n/2, b + SSR/2) (`conditional_sigma`). With 5 or 6 runs and nearly as many
law parameters, sampling sigma beside the law is a funnel: the law's spread shrinks with
sigma, and no one step size serves both ends.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np

from ..language.ast import CheckedSpec, Law, Noise
from ..language.distributions import DEFAULT_NU

# the default prior of drift_<response>, the law's extra log-scale error per log unit (a factor
# e) beyond the fitted data: HalfNormal with scale sqrt(DRIFT_FLOOR^2 + (DRIFT_PER_SCATTER *
# s)^2), s the runs' scatter around the law on the log scale (sigma; with `curves by`, sigma and
# tau together). Chosen by the interval score of the extrapolation benchmark's 90 % intervals
# (README, "The drift's default, measured"); the fixed HalfNormal(0.02) before it left
# Porian's Kaplan-like table covered at 0.63.
DRIFT_FLOOR = 0.01
DRIFT_PER_SCATTER = 2.0
# the default noise prior on the log scale: sigma^2 ~ InverseGamma(NOISE_SHAPE, NOISE_RATE),
# median sigma 0.015, 90 % between 0.007 and 0.055: published fits' residual SDs of log loss
# run from 0.004 (Bian et al.) and 0.006 (Chinchilla) through 0.013 (OPT's curves) to 0.05
# to 0.09 (Porian's isoFLOP tables, far-off runs kept). It has no mass near 0, so a fit of
# few runs cannot buy a tight law with a vanishing sigma.
NOISE_SHAPE = 1.0
NOISE_RATE = 0.015 ** 2 * np.log(2.0)  # the median of sigma^2 under shape 1 is rate / log 2
# fitted rows per law parameter from which a law with no declared noise gets StudentT(nu=4)
ROBUST_ROWS_PER_PARAMETER = 10


def default_noise(n_rows: int, n_parameters: int) -> Noise:
    """The noise of a law that declares none, fitted on `n_rows` rows with `n_parameters`."""
    if n_rows >= ROBUST_ROWS_PER_PARAMETER * max(n_parameters, 1):
        return Noise("StudentT", "log", DEFAULT_NU, default=True)
    return Noise("Normal", "log", default=True)


def with_default_noise(spec: CheckedSpec, n_rows: Mapping[str, int]) -> CheckedSpec:
    """`spec` with each undeclared noise set from its law's fitted rows (response -> rows)."""
    return with_noise(spec, {law.response: default_noise(n_rows[law.response], len(law_parameters(spec, law)))
                             for law in spec.laws if law.noise.default and law.response in n_rows})


def with_noise(spec: CheckedSpec, noise: Mapping[str, Noise]) -> CheckedSpec:
    """`spec` with the noise of the laws of `noise` (response -> Noise) replaced."""
    laws = tuple(replace(law, noise=noise[law.response]) if law.response in noise else law for law in spec.laws)
    return spec if laws == spec.laws else replace(spec, laws=laws)


def law_parameters(spec: CheckedSpec, law: Law) -> list[str]:
    """The parameters in the law's own expression (not sigma, drift or the priors' hyperparameters)."""
    from ..language.evaluate import names_in

    return list(dict.fromkeys(n for n in names_in(law.expr) if n in spec.parameters))


def noise_text(noise: Noise) -> str:
    """`StudentT(nu=4) on log`, as a spec would declare it."""
    family = noise.family + (f"(nu={noise.nu:g})" if noise.family == "StudentT" else "")
    return f"{family} on {noise.scale}"


@dataclass(frozen=True)
class Likelihood:
    noise: Noise

    @classmethod
    def of(cls, law: Law) -> "Likelihood":
        return cls(law.noise)

    @property
    def on_log(self) -> bool:
        return self.noise.scale == "log"

    def observed(self, y, xp=np):
        """The observation on the scale the noise acts on: log y or y."""
        return xp.log(y) if self.on_log else y

    def location(self, mu, xp=np):
        """The law's value on the noise's scale: log mu or mu."""
        return xp.log(mu) if self.on_log else mu

    def residual(self, y, mu, xp=np):
        return self.observed(y, xp) - self.location(mu, xp)

    def distribution(self, mu, sigma):
        """numpyro distribution of `observed(y)` given the law's value. Arguments are not
        validated: a non-finite mu must give a non-finite density (which the sampler and the
        point fit reject), not an exception while a model is being traced."""
        import jax.numpy as jnp
        import numpyro.distributions as dist

        loc = self.location(mu, jnp)
        if self.noise.family == "StudentT":
            return dist.StudentT(self.noise.nu, loc, sigma, validate_args=False)
        return dist.Normal(loc, sigma, validate_args=False)

    @property
    def collapsible(self) -> bool:
        """Normal noise on the log scale: with the default prior, sigma is integrated out."""
        return self.on_log and self.noise.family == "Normal"

    @staticmethod
    def marginal_log_density(residual, mask):
        """log of the density of the residuals (n,) where `mask` (n,) is True, with sigma
        integrated out under the default prior:
        (2 pi)^(-n/2) b^a Gamma(a + n/2) / (Gamma(a) (b + SSR/2)^(a + n/2))."""
        import jax.numpy as jnp
        from jax.scipy.special import gammaln

        n, a, b = jnp.sum(mask, axis=-1), NOISE_SHAPE, NOISE_RATE
        half_ssr = 0.5 * jnp.sum(jnp.where(mask, residual, 0.0) ** 2, axis=-1)
        return (-0.5 * n * jnp.log(2 * jnp.pi) + a * jnp.log(b) + gammaln(a + n / 2) - gammaln(a)
                - (a + n / 2) * jnp.log(b + half_ssr))

    @staticmethod
    def conditional_sigma(rng: np.random.Generator, residual: np.ndarray) -> np.ndarray:
        """sigma given the residuals (S, n) of S draws of the law, under the default prior:
        sigma^2 ~ InverseGamma(a + n/2, b + SSR/2), one draw each, (S,)."""
        n = residual.shape[-1]
        half_ssr = 0.5 * np.sum(residual ** 2, axis=-1)
        return np.sqrt((NOISE_RATE + half_ssr) / rng.gamma(NOISE_SHAPE + n / 2, size=half_ssr.shape))

    def log_jacobian(self, y):
        """What turns the density of `observed(y)` into the density of y, so laws on either
        scale compare in LOO: -log y on the log scale, 0 on the identity scale."""
        return -np.log(y) if self.on_log else np.zeros_like(y)

    def draws(self, mu, sigma, drift, distance, rng: np.random.Generator, run_offset=0.0):
        """New runs' values, one per draw and row. mu (S, n), sigma and drift (S, 1),
        distance (n,) beyond the fitted data (see `distance_beyond`); run_offset (S, n) on the
        noise's scale, each new run's own under `curves by` (curves.py)."""
        if self.noise.family == "StudentT":
            noise = sigma * rng.standard_t(self.noise.nu, size=mu.shape)
        else:
            noise = sigma * rng.standard_normal(mu.shape)
        noise = noise + run_offset
        misfit = drift * distance * rng.standard_normal(mu.shape)
        return mu * np.exp(noise + misfit) if self.on_log else mu * (1 + misfit) + noise


def distance_beyond(values: Mapping[str, np.ndarray], support: Mapping[str, np.ndarray],
                    n_rows: int) -> np.ndarray:
    """(n_rows,) distance of each row of `values` from the convex hull of the fitted runs
    `support` (name -> (n_fit,) inputs of the fitted rows), in log units for positive inputs
    and in widths of the fitted range for others; 0 inside the hull. The hull, not the box of
    ranges: Chinchilla's largest-compute runs have N and D each inside the fitted ranges but
    both large at once, a corner no fitted run reaches."""
    names = [n for n in support if n in values]
    if not names:
        return np.zeros(n_rows)
    fitted = np.stack([np.asarray(support[n], dtype=float) for n in names])  # (d, n_fit)
    rows = np.stack([np.broadcast_to(np.asarray(values[n], dtype=float), (n_rows,)) for n in names])  # (d, n)
    for i in range(len(names)):
        if np.all(fitted[i] > 0):
            fitted[i], rows[i] = np.log(fitted[i]), np.log(np.maximum(rows[i], 1e-300))
        else:
            width = np.ptp(fitted[i]) or 1.0
            fitted[i], rows[i] = fitted[i] / width, rows[i] / width
    from scipy.optimize import nnls  # here: `show` imports this module and needs no scipy

    fitted = np.unique(fitted, axis=1)
    # the nearest point of the hull: convex weights w >= 0 with sum 1 (a heavy extra row) by NNLS
    heavy = 1e3 * (1 + np.abs(fitted).max())
    system = np.vstack([fitted, np.full((1, fitted.shape[1]), heavy)])
    distance = np.zeros(n_rows)
    for j in range(n_rows):
        weights, _ = nnls(system, np.append(rows[:, j], heavy))
        distance[j] = np.linalg.norm(fitted @ weights - rows[:, j])
    return np.where(distance > 1e-6, distance, 0.0)  # inside the hull up to round-off
