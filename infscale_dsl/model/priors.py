"""Priors: the user's, or defaults suited to each parameter's role (as brms prints its own).

A prior is a record, `Prior`: a distribution written in the spec language itself, its bounds,
and what it is over. The defaults are written the same way (`ROLE_DEFAULTS`), so `show`'s text
and the numpyro distribution come from one place. A default may read two data scales of the
response it serves, which make it scale-free (the same law fits losses near 3 and latencies
near 20 ms): `y_ref`, the median of |y| over the fitted rows, and `y_sd`, their SD.

| role        | default prior                                                            |
|-------------|--------------------------------------------------------------------------|
| coefficient | log of its term at the data's typical X ~ Normal(log(y_ref), 3); for a   |
|             | term added to a number c (`1 + eps*R^alpha`), a correction to c:         |
|             | Normal(log(0.05 c), 2) (median 5 % of c, 90 % between 0.2 % and 1.4 c)  |
| exponent    | Normal(0.5, 0.5) in [0, 3]                                               |
| offset      | Gamma(2, 2/y_ref) (mean y_ref, no mass at 0) on the log scale;           |
|             | HalfNormal(2*y_ref) on the identity one                                  |
| free        | Normal(0, 2.5)                                                           |
| noise       | sigma^2 ~ InverseGamma(1, 0.000156) on the log scale (median sigma 0.015;|
|             | likelihood.py); HalfNormal(y_sd) on the identity one                     |
| scale       | LogNormal(log(y_ref), 5): a factor of a power of a non-data base         |
| drift       | HalfNormal(sqrt(0.01^2 + (2 * sigma)^2)): misfit per log unit beyond the |
|             | data, larger where the runs scatter more around the law (likelihood.py)  |
| run_scale   | tau^2 ~ InverseGamma(1, 0.000277) on the log scale (median tau 0.02),    |
|             | times y_ref^2 on the identity one: runs' offsets under `curves by`       |
|             | (curves.py)                                                              |
| hyper       | loc of a LogNormal: Normal(log(y_ref), 2); loc of a Normal: Normal(y_ref, |
|             | 2*y_ref); scales: HalfNormal(1) (LogNormal) or HalfNormal(y_ref)         |
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Mapping

import numpy as np

from ..language.ast import CheckedSpec, Expr, Law, Number, PriorDecl
from ..language.distributions import DISTRIBUTIONS, TRUNCATABLE, bind_arguments
from .curves import RUN_RATE, RUN_SHAPE
from ..language.evaluate import evaluate, names_in, unparse
from .likelihood import DRIFT_FLOOR, DRIFT_PER_SCATTER, NOISE_RATE, NOISE_SHAPE
from .roles import Roles

if TYPE_CHECKING:
    import numpyro.distributions as dist

DATA_SCALES = ("y_ref", "y_sd")  # what a default prior's arguments may read besides numbers

# (role, noise scale or None for either) -> the default prior, in the language's syntax
ROLE_DEFAULTS = {
    ("coefficient", None): "Normal(log(y_ref), 3)",
    ("exponent", None): "Normal(0.5, 0.5) in [0, 3]",
    # a loss's floor: Gamma(2) with mean y_ref has no mass at 0, where E traded against a
    # coefficient and its exponent sends NUTS down a funnel in log E (divergences on few runs)
    ("offset", "log"): "Gamma(2, 2 / y_ref)",
    ("offset", "identity"): "HalfNormal(2 * y_ref)",
    # over sigma^2 (`squared`); see likelihood.py for the published residual SDs behind it
    ("noise", "log"): f"InverseGamma({NOISE_SHAPE:g}, {NOISE_RATE:.6g})",
    ("noise", "identity"): "HalfNormal(y_sd)",
    ("scale", None): "LogNormal(log(y_ref), 5)",
    # {scatter}: the law's noise scale on the log scale (`scatter_text`), drawn before the drift
    ("drift", None): f"HalfNormal(sqrt({DRIFT_FLOOR:g}^2 + ({DRIFT_PER_SCATTER:g} * {{scatter}})^2))",
    ("free", None): "Normal(0, 2.5)",
    # over tau^2 (`squared`): the spread of runs' offsets under `curves by` (curves.py)
    ("run_scale", "log"): f"InverseGamma({RUN_SHAPE:g}, {RUN_RATE:.6g})",
    ("run_scale", "identity"): f"InverseGamma({RUN_SHAPE:g}, {RUN_RATE:.6g} * y_ref^2)",
}
# (family of the grouped prior, the argument a hyperparameter fills) -> its default prior
HYPER_DEFAULTS = {
    ("LogNormal", "loc"): "Normal(log(y_ref), 2)",
    ("Normal", "loc"): "Normal(y_ref, 2 * y_ref)",
    ("LogNormal", "scale"): "HalfNormal(1)",
    ("Normal", "scale"): "HalfNormal(y_ref)",
}
# any other argument a hyperparameter fills: a wide prior on its support (a rate or a
# concentration has no natural scale in the response's units)
POSITIVE_HYPER_DEFAULT = "LogNormal(0, 3)"
# A term added to a number (`1 + eps * R^alpha`) is a correction to it: its default prior has a
# median of 5 % of the number. Chosen by backtest (README, Extrapolation benchmark): on the seed
# law fitted to 6 runs of one shape, where the data cannot tell eps, Normal(log(c), 3) put the
# term near c and missed the other shapes by 4.6 %; this prior misses by 1.5 % and passes the gate.
CORRECTION_SHARE = 0.05
REAL_HYPER_DEFAULT = HYPER_DEFAULTS[("Normal", "loc")]


@dataclass(frozen=True)
class Prior:
    """The prior one parameter gets: `show` prints `text` and the model samples `build(env)`."""

    name: str
    declaration: PriorDecl  # distribution and bounds, as the user or ROLE_DEFAULTS wrote them
    source: str  # "declared" | "default"
    on: str  # what the distribution is over: the parameter, or "log(A/N^alpha at N = 1.2e9)"
    response: str  # whose data scales a default's arguments read
    scales: tuple[tuple[str, float], ...] = ()  # the response's y_ref and y_sd, where a table is known
    squared: bool = False  # the distribution is over the parameter squared

    @property
    def arguments(self) -> dict[str, Expr]:
        return bind_arguments(self.declaration.distribution)

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The hyperparameters its arguments read."""
        reads = (n for expr in self.arguments.values() for n in names_in(expr))
        return tuple(n for n in reads if self.source == "declared" or n not in DATA_SCALES)

    @property
    def positive(self) -> bool:
        """Its support is (0, inf): no mass at or below 0, no upper bound."""
        info, decl = DISTRIBUTIONS[self.declaration.distribution.name], self.declaration
        return decl.upper is None and (info.support == "positive" or (decl.lower is not None and decl.lower >= 0))

    def build(self, env: Mapping[str, object]) -> dist.Distribution:
        """The numpyro distribution; `env` holds the parameters sampled so far and the data's
        scales under `y_ref:<response>` and `y_sd:<response>`."""
        import jax.numpy as jnp
        import numpyro.distributions as dist

        distribution = getattr(dist, self.declaration.distribution.name)(**self._argument_values(env, jnp))
        decl = self.declaration
        if decl.lower is not None or decl.upper is not None:
            assert decl.distribution.name in TRUNCATABLE, "check() rejects bounds on this family"
            distribution = dist.TruncatedDistribution(distribution, low=decl.lower, high=decl.upper)
        if self.squared:
            distribution = dist.TransformedDistribution(distribution, dist.transforms.PowerTransform(0.5))
        return distribution

    def draw(self, env: Mapping[str, object], rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Draws of `shape` in NumPy, by the quantile function of scipy.stats' twin of
        `build(env)` at uniform draws. Arguments that are arrays (hyperparameter draws) broadcast
        against `shape` from the right. Prior draws outside the sampler are drawn here: each
        distribution's sampler in JAX is a program to compile (Gamma's costs about a second),
        for draws that take microseconds."""
        return self._quantile(env, rng.uniform(size=shape))

    def median(self, env: Mapping[str, object]) -> np.ndarray:
        """The prior's median (a point fit's value of a parameter no row informs)."""
        return self._quantile(env, np.asarray(0.5))

    def _argument_values(self, env: Mapping[str, object], backend) -> dict:
        """The distribution's arguments evaluated in `env` (jax.numpy or numpy); a default's
        `y_ref` and `y_sd` are its response's."""
        if self.source == "default":
            env = dict(env) | {s: env[f"{s}:{self.response}"] for s in DATA_SCALES if f"{s}:{self.response}" in env}
        return {key: evaluate(expr, env, backend) for key, expr in self.arguments.items()}

    def _quantile(self, env: Mapping[str, object], u: np.ndarray) -> np.ndarray:
        """The u-quantile of the prior: truncated to its bounds, and the root where `squared`."""
        values = {key: np.asarray(value, dtype=float) for key, value in self._argument_values(env, np).items()}
        frozen = _scipy_twin(self.declaration.distribution.name, values)
        decl = self.declaration
        with np.errstate(all="ignore"):  # both ways are computed; each is kept where it is precise
            # by the CDF F: F^-1(F(lower) + u (F(upper) - F(lower)))
            low = 0.0 if decl.lower is None else frozen.cdf(decl.lower)
            high = 1.0 if decl.upper is None else frozen.cdf(decl.upper)
            by_cdf = frozen.ppf(low + u * (high - low))
            # by the survival function S = 1 - F, precise where F rounds to 1: bounds in the upper
            # tail (Normal(0.5, 0.01) in [0.7, 3] has F(0.7) = 1 in float64)
            above_low = 1.0 if decl.lower is None else frozen.sf(decl.lower)
            above_high = 0.0 if decl.upper is None else frozen.sf(decl.upper)
            by_sf = frozen.isf(above_low - u * (above_low - above_high))
        value = np.where(low > 0.5, by_sf, by_cdf)
        return np.sqrt(value) if self.squared else value

    @property
    def text(self) -> str:
        """E.g. `Gamma(2, 0.6536)` with a table, `Gamma(2, 2/y_ref)` without."""
        known = dict(self.scales)

        def show(expr: Expr) -> str:
            reads = set(names_in(expr))
            if isinstance(expr, Number) or (self.source == "default" and reads and reads <= set(known)):
                return f"{float(evaluate(expr, known, np)):.4g}"
            return unparse(expr)

        d, decl = self.declaration.distribution, self.declaration
        text = f"{d.name}({', '.join([show(a) for a in d.args] + [f'{k}={show(v)}' for k, v in d.kwargs])})"
        if decl.lower is not None or decl.upper is not None:
            low = "-inf" if decl.lower is None else f"{decl.lower:.4g}"
            high = "inf" if decl.upper is None else f"{decl.upper:.4g}"
            text += f" in [{low}, {high}]"
        return text


def _scipy_twin(family: str, a: dict[str, np.ndarray]):
    """The scipy.stats distribution equal to numpyro's `family(**a)` (tests/test_distributions.py
    compares their densities)."""
    from scipy import stats

    if family == "Normal":
        return stats.norm(a["loc"], a["scale"])
    if family == "StudentT":
        return stats.t(a["df"], a["loc"], a["scale"])
    if family in ("Cauchy", "Laplace", "Logistic"):
        return getattr(stats, family.lower())(a["loc"], a["scale"])
    if family == "HalfNormal":
        return stats.halfnorm(scale=a["scale"])
    if family == "HalfCauchy":
        return stats.halfcauchy(scale=a["scale"])
    if family == "LogNormal":
        return stats.lognorm(a["scale"], scale=np.exp(a["loc"]))
    if family == "Exponential":
        return stats.expon(scale=1 / a["rate"])
    if family == "Gamma":
        return stats.gamma(a["concentration"], scale=1 / a["rate"])
    if family == "InverseGamma":
        return stats.invgamma(a["concentration"], scale=a["rate"])
    if family == "Beta":
        return stats.beta(a["concentration1"], a["concentration0"])
    if family == "Uniform":
        return stats.uniform(a["low"], a["high"] - a["low"])
    raise AssertionError(f"no scipy.stats twin for {family}: add one beside DISTRIBUTIONS' entry")


@lru_cache(maxsize=None)
def _written(text: str) -> PriorDecl:
    """A default prior's text, parsed by the spec language itself."""
    from ..language.parse import parse

    (statement,) = parse(f"p ~ {text}\n", "<default prior>").statements
    return statement


def default_prior(name: str, role: str, response: str, noise_scale: str, scales: Mapping[str, float],
                  term_text: str = "", added_to: float | None = None, scatter: str = "") -> Prior:
    """The default prior of a parameter of this role (see the module's table); `added_to`: the
    number a coefficient's term is added to, if any; `scatter`: a drift's law's `scatter_text`."""
    text = ROLE_DEFAULTS.get((role, noise_scale)) or ROLE_DEFAULTS.get((role, None)) or ROLE_DEFAULTS[("free", None)]
    if role == "drift":
        text = text.format(scatter=scatter)
    if role == "coefficient" and added_to is not None:
        text = f"Normal({math.log(CORRECTION_SHARE * added_to):.6g}, 2)"
    squared = role == "run_scale" or (role == "noise" and noise_scale == "log")
    on = {"coefficient": f"log({term_text})", "noise": f"{name}{'^2' if squared else ''} ({noise_scale} scale)",
          "run_scale": f"{name}^2 ({noise_scale} scale, per run)",
          "drift": f"{name} (per log unit beyond the data)"}.get(role, name)
    return Prior(name, _written(text), "default", on, response, tuple(scales.items()), squared=squared)


def scatter_text(spec: CheckedSpec, law: Law) -> str:
    """How far the fitted runs scatter around `law` on the log scale, in the language (what the
    drift's default prior scales with): its noise scale, over y_ref on the identity scale; under
    `curves by`, a new run's scatter, from the noise and the spread of the runs' offsets."""
    per_y = "" if law.noise.scale == "log" else " / y_ref"
    if spec.has_curves(law):
        return f"sqrt(({law.sigma}{per_y})^2 + ({law.run_scale}{per_y})^2)"
    return f"{law.sigma}{per_y}"


def default_hyperprior(name: str, family: str, argument: str, response: str, scales: Mapping[str, float]) -> Prior:
    """The default prior of a hyperparameter that fills `argument` of a grouped prior."""
    text = HYPER_DEFAULTS.get((family, argument))
    if text is None:
        text = POSITIVE_HYPER_DEFAULT if argument in DISTRIBUTIONS[family].positive else REAL_HYPER_DEFAULT
    return Prior(name, _written(text), "default", name, response, tuple(scales.items()))


def choose_priors(spec: CheckedSpec, roles: Roles, y_ref: Mapping[str, float] | None,
                  y_sd: Mapping[str, float] | None,
                  term_texts: Mapping[str, str]) -> dict[str, Prior]:
    """One Prior per parameter: the declared prior, else the default for its role.
    `y_ref`/`y_sd` (response -> median, sd) are None when no table is known."""
    y_ref = y_ref or {}
    y_sd = y_sd or {}
    # which response each parameter's scale comes from: the first law that reads it
    home: dict[str, str] = {}
    for law in spec.laws:
        for n in names_in(law.expr):
            home.setdefault(n, law.response)
        home.setdefault(law.sigma, law.response)
        home.setdefault(law.drift, law.response)
        home.setdefault(law.run_scale, law.response)
    hyper_use: dict[str, tuple[str, str, str]] = {}  # hyper -> (family, argument, owner)
    for parameter in spec.parameters.values():
        if parameter.prior is None:
            continue
        for argument, expr in bind_arguments(parameter.prior.distribution).items():
            for n in names_in(expr):
                hyper_use.setdefault(n, (parameter.prior.distribution.name, argument, parameter.name))

    choices: dict[str, Prior] = {}
    for name, parameter in spec.parameters.items():
        response = home.get(name) or home.get(hyper_use.get(name, ("", "", ""))[2]) or spec.laws[0].response
        scales = {"y_ref": y_ref[response], "y_sd": y_sd[response]} if response in y_ref else {}
        if parameter.prior is not None:
            choices[name] = Prior(name, parameter.prior, "declared", name, response)
        elif roles.role[name] == "hyper" and name in hyper_use:
            family, argument, _ = hyper_use[name]
            choices[name] = default_hyperprior(name, family, argument, response, scales)
        else:
            law = spec.law_for(response)
            choices[name] = default_prior(name, roles.role[name], response, law.noise.scale, scales,
                                          term_texts.get(name, ""), roles.added_to.get(name), scatter_text(spec, law))
    return choices
