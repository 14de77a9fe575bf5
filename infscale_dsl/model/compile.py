"""Compile a checked spec and its prepared data into a NumPyro model.

What the compiler does so that NUTS samples well with no tuning by the user:
- a power-law coefficient is sampled as `log_ref`, the log of its term's value at the data's
  typical X (the mean of log X over the fitted rows); the coefficient is then the deterministic
  `c = exp(log_ref - sum_i e_i * mean(log X_i))`. This removes the long curved ridge between
  c and its exponent, the reason raw power laws sample badly;
- bounds truncate the prior (numpyro truncates Normal-like families) or come from the family's
  own support, which numpyro maps to an unconstrained space;
- a parameter that varies by a category (`E[family] ~ LogNormal(mu, tau)`) is non-centred
  (z ~ Normal(0, 1) per level, E = exp(mu + tau z)) where its levels have few rows, and
  centred (E ~ LogNormal(mu, tau) per level) where every level has CENTRED_MIN_ROWS rows or
  more: there the data pin each level down, and non-centring would tie every z to tau;
- each response has its own likelihood over the rows where it is present, Normal or StudentT,
  on the log scale (log y ~ Normal(log law, sigma)) or the identity scale (likelihood.py);
  its drift scale (misfit beyond the data) is drawn from its prior, which no row informs;
- under `curves by run`, each law adds an offset per run, u[run] ~ Normal(0, tau) (curves.py).
`describe()` prints all of it, which is what `infscale-dsl show` shows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

import numpy as np

from . import curves
from ..errors import Diagnostic, SpecError
from .likelihood import Likelihood, with_default_noise
from ..language.ast import CheckedSpec, Law
from ..language.distributions import bind_arguments
from ..language.evaluate import evaluate, names_in
from .priors import Prior, choose_priors
from .roles import OffsetSum, PowerTerm, Roles, find_roles

if TYPE_CHECKING:
    from .data import PreparedData

LOG_REF_SUFFIX = "__log_ref"  # sampling site of a coefficient: log of its term at typical X
LOG_SUM_SUFFIX = "__log_sum"  # sampling site of an offset sum: log of offset + terms at typical X
SHARES_SUFFIX = "__shares"  # sampling site of an offset sum: its terms' log-shares against the offset
GROUP_Z_SUFFIX = "__z"  # standard-normal sampling site of a grouped parameter
CENTRED_MIN_ROWS = 8  # rows in every level above which a grouped parameter is sampled centred


def bucket_size(n_rows: int) -> int:
    """The rows a law's inputs are padded to: the next of 8, 10, 12, 14, 16, 20, 24, 28, 32,
    40, ... (at most 25 % more rows), so that compiled programs serve tables of nearby sizes:
    a run added to a table, or backtests on its subsets, reuse them."""
    if n_rows <= 8:
        return 8
    unit = 2 ** (n_rows.bit_length() - 3)  # n_rows / unit lies in [4, 8)
    return -(-n_rows // unit) * unit


@dataclass
class CompiledModel:
    spec: CheckedSpec
    roles: Roles
    priors: dict[str, Prior]
    log_reference: dict[str, float]  # data name -> mean log value over the fitted rows
    y_ref: dict[str, float]  # response -> median of |y| over its rows (the defaults' scale)
    y_sd: dict[str, float]  # response -> its standard deviation over its rows
    levels: dict[str, tuple[str, ...]]  # category data name -> level labels
    joint: tuple[OffsetSum, ...] = ()  # offset sums sampled jointly (see `joint_sums`)
    centred: tuple[str, ...] = ()  # grouped parameters sampled centred (see the module's notes)
    runs: curves.RunGrouping | None = None  # `curves by`: runs and rows per run of the fitted rows
    n_rows: dict[str, int] = field(default_factory=dict)  # response -> fitted rows

    # ---- evaluation -------------------------------------------------------------------------

    def law_value(self, law: Law, params: Mapping[str, object], values: Mapping[str, object]):
        import jax.numpy as jnp

        return law_value(self.spec, law, params, values, jnp)

    # ---- the NumPyro model (jax and numpyro imported where used: `show` needs neither) ------

    def sample_order(self) -> list[str]:
        """Parameters in an order where each prior's hyperparameters and each coefficient's
        exponents come first."""
        needs: dict[str, set[str]] = {n: set(c.depends_on) for n, c in self.priors.items()}
        for term in self.roles.terms:
            needs[term.coefficient] |= {n for _, e in term.powers for n in names_in(e)}
        order: list[str] = []
        while len(order) < len(needs):
            ready = [n for n in needs if n not in order and needs[n] <= set(order)]
            if not ready:  # check() rejects cycles; this guards hand-built specs
                raise SpecError(Diagnostic("the priors' hyperparameters depend on each other in a cycle"))
            order.extend(ready)
        return order

    @property
    def prior_only(self) -> tuple[str, ...]:
        """Parameters no row informs (the drift scales, likelihood.py): their posterior is their
        prior, so they are drawn from it directly (`draw_prior_only`), not explored by NUTS,
        whose log-scale walk through a HalfNormal's tail mixes slowly for nothing."""
        return tuple(n for n, role in self.roles.role.items() if role == "drift")

    def draw_prior_only(self, rng: np.random.Generator, env: Mapping[str, object],
                        shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        """Draws (shape) of each prior-only parameter, in NumPy (priors.Prior.draw). `env`: the
        data's scales and the posterior draws (shape) that their priors read (a drift's default
        reads its law's noise scale), one prior-only draw per posterior draw."""
        env = {name: np.asarray(value) for name, value in env.items()}
        return {name: self.priors[name].draw(env, rng, shape) for name in self.prior_only}

    @property
    def collapsed(self) -> tuple[str, ...]:
        """Noise scales that NUTS does not sample: integrated out of the likelihood and drawn
        afterwards from their conditional (likelihood.py), for Normal noise on the log scale
        under the default prior."""
        return tuple(law.sigma for law in self.spec.laws
                     if Likelihood.of(law).collapsible and self.priors[law.sigma].source == "default")

    def draw_collapsed_noise(self, rng: np.random.Generator, samples: Mapping[str, np.ndarray],
                             inputs: dict) -> dict[str, np.ndarray]:
        """One draw of each collapsed noise scale per posterior draw: samples hold each
        parameter's draws (S, ...); returns sigma name -> (S,). In NumPy: JAX's gamma sampler
        costs seconds to compile for a draw that takes microseconds."""
        draws = {}
        for law in self.spec.laws:
            if law.sigma not in self.collapsed:
                continue
            params = {n: np.asarray(v)[:, None] if self.spec.parameters[n].group is None else np.asarray(v)
                      for n, v in samples.items() if n in self.spec.parameters}
            rows = self.fitted_rows(inputs, law.response)
            mu = law_value(self.spec, law, params, rows, np)  # (S, n)
            if self.spec.has_curves(law):
                mu = np.asarray(curves.with_run_offsets(self.spec, law, mu, samples, rows))
            draws[law.sigma] = Likelihood.conditional_sigma(rng, Likelihood.of(law).residual(rows[law.response], mu))
        return draws

    def sample_parameters(self, scales: Mapping[str, object], start_mode: bool = False,
                          skip: tuple[str, ...] = ()) -> dict:
        """Sample every parameter but `skip` (inside a numpyro model); returns name -> value.
        `scales` (see `inputs`) seed the environment the priors read, under names with a
        colon, which no parameter can have."""
        import numpyro

        params: dict[str, object] = dict(scales)
        order = self.sample_order()
        # an offset sum is sampled where its last member comes in the order: all its members'
        # hyperparameters and exponents are there by then
        joint_at = {max((s.offset,) + s.coefficients + ((s.factor,) if s.factor else ()), key=order.index): s
                    for s in self.joint}
        in_joint = {n for offset_sum in self.joint for n in (offset_sum.offset,) + offset_sum.coefficients}
        for name in order:
            parameter, choice = self.spec.parameters[name], self.priors[name]
            if name in joint_at:
                params |= self._sample_offset_sum(joint_at[name], params, start_mode)
            if name in self.prior_only or name in in_joint or name in skip or name in params:
                continue  # (in params: a sum's factor, sampled with the sum)
            if parameter.group is not None:
                params[name] = self._sample_grouped(name, params)
            elif self.roles.role[name] == "coefficient":
                params[name] = self._sample_coefficient(name, params, start_mode)
            else:
                params[name] = numpyro.sample(name, choice.build(params))
        if self.spec.curves is not None:
            params |= curves.sample_offsets(self.spec, self.runs, params)
        return params

    def _sample_coefficient(self, name: str, params: dict, start_mode: bool):
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as dist

        term = self.roles.term_for(name)
        choice = self.priors[name]
        site = name + LOG_REF_SUFFIX
        if choice.source == "default":
            log_ref = numpyro.sample(site, choice.build(params))
        elif start_mode:  # any proper prior will do to draw starts
            log_ref = numpyro.sample(site, dist.Normal(jnp.log(params[f"y_ref:{term.response}"]), 3.0))
        else:
            log_ref = numpyro.sample(site, dist.ImproperUniform(dist.constraints.real, (), ()))
        return self._coefficient(name, log_ref, params, declared_prior=not start_mode)

    def _coefficient(self, name: str, log_ref, params: dict, declared_prior: bool, default_prior: bool = False):
        """The coefficient whose term is exp(log_ref) at typical X; with `declared_prior`, a
        declared prior on the coefficient enters as a factor (and with `default_prior`, the
        default one on log_ref, for a site that does not carry it)."""
        import jax.numpy as jnp
        import numpyro

        choice = self.priors[name]
        shift = self._log_shift(name, params)
        value = numpyro.deterministic(name, jnp.exp(log_ref - shift))
        if choice.source == "declared" and declared_prior:
            # the user's prior is on the coefficient; d(value)/d(log_ref) = value
            numpyro.factor(name + "__prior", choice.build(params).log_prob(value) + log_ref - shift)
        elif choice.source == "default" and default_prior:
            numpyro.factor(name + "__prior", choice.build(params).log_prob(log_ref))
        return value

    def _log_shift(self, coefficient: str, params: dict):
        """log(term / coefficient) at typical X: sum_i e_i * mean(log X_i) over its powers."""
        import jax.numpy as jnp

        return sum(evaluate(e, params, jnp) * params[f"log_ref:{base}"] for base, e in self.roles.term_for(coefficient).powers)

    def _sample_offset_sum(self, offset_sum: OffsetSum, params: dict, start_mode: bool) -> dict:
        """E + T_1 + ... + T_k at typical X (T_j = exp(log_ref_j)), sampled as its log, s, and
        the log-shares w_j = log(T_j / E): the data pin s down wherever they are, while E
        traded against a coefficient and its exponent (a curved ridge in E, log_ref) becomes a
        nearly straight one in (w, exponent). The map (s, w) -> (log E, log_ref) has Jacobian 1,
        so the priors of E (times E, for log E) and of the log_refs enter as factors unchanged.
        Where the sum is multiplied by a factor `k + eps * R^alpha` (the seed paper's law), s is
        the log of the product: the sum's log is s - log(k + eps R^alpha at typical R). Runs of
        one shape pin down only the product, and sampling the sum alone would tie it to eps
        along a ridge; the shift has Jacobian 1 too, so every prior is still unchanged."""
        import jax
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as dist

        offset, coefficients = offset_sum.offset, offset_sum.coefficients
        y_ref = params[f"y_ref:{offset_sum.response}"]
        values = {}
        if start_mode:  # proper priors to draw starts from
            log_sum = numpyro.sample(offset + LOG_SUM_SUFFIX, dist.Normal(jnp.log(y_ref), 1.0))
            shares = numpyro.sample(offset + SHARES_SUFFIX, dist.Normal(0.0, 3.0).expand([len(coefficients)]).to_event(1))
        else:
            log_sum = numpyro.sample(offset + LOG_SUM_SUFFIX, dist.ImproperUniform(dist.constraints.real, (), ()))
            shares = numpyro.sample(offset + SHARES_SUFFIX, dist.ImproperUniform(
                dist.constraints.real_vector, (), (len(coefficients),)))
        if offset_sum.factor is not None:
            factor = offset_sum.factor
            if factor not in params:  # last in the sampling order: sampled here, before the sum needs it
                values[factor] = params[factor] = self._sample_coefficient(factor, params, start_mode)
            log_term = jnp.log(params[factor]) + self._log_shift(factor, params)
            log_sum = log_sum - jnp.logaddexp(np.log(self.roles.added_to[factor]), log_term)
        log_parts = log_sum + jax.nn.log_softmax(jnp.concatenate([jnp.zeros(1), shares]))  # (1 + k,)
        values[offset] = numpyro.deterministic(offset, jnp.exp(log_parts[0]))
        if not start_mode:
            numpyro.factor(offset + "__prior", self.priors[offset].build(params).log_prob(values[offset]) + log_parts[0])
        for j, name in enumerate(coefficients):
            values[name] = self._coefficient(name, log_parts[1 + j], params, declared_prior=not start_mode,
                                             default_prior=not start_mode)
        return values

    def _sample_grouped(self, name: str, params: dict):
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as dist

        parameter = self.spec.parameters[name]
        family = parameter.prior.distribution.name
        arguments = {k: evaluate(e, params, jnp) for k, e in bind_arguments(parameter.prior.distribution).items()}
        n_levels = len(self.levels[parameter.group])
        if name in self.centred:
            return numpyro.sample(name, getattr(dist, family)(**arguments).expand([n_levels]).to_event(1))
        z = numpyro.sample(name + GROUP_Z_SUFFIX, dist.Normal(0.0, 1.0).expand([n_levels]).to_event(1))
        centred = arguments["loc"] + arguments["scale"] * z  # (n_levels,)
        return numpyro.deterministic(name, jnp.exp(centred) if family == "LogNormal" else centred)

    def inputs(self, data: PreparedData) -> dict:
        """What the numpyro model reads, as a pytree of arrays, so compiled functions are
        reused for new data of the same shapes:
        laws[response][name]: the values on that law's rows, padded to bucket_size rows
            (n_bucket,) by repeating its first row, so a table a few rows longer or shorter
            reuses the programs compiled for this one;
        masks[response]: bool (n_bucket,), True on the law's own rows (the first n_law_rows);
        scales: y_ref:<response>, y_sd:<response> (defaults' scales), log_ref:<X> (centring)."""
        import jax.numpy as jnp

        laws, masks = {}, {}
        for law in self.spec.laws:
            rows = data.rows[law.response]
            padded = np.concatenate([rows, np.repeat(rows[:1], bucket_size(len(rows)) - len(rows))])
            laws[law.response] = {n: jnp.asarray(np.asarray(v)[padded]) for n, v in data.values.items()}
            masks[law.response] = jnp.asarray(np.arange(len(padded)) < len(rows))
        scales = {f"y_ref:{r}": v for r, v in self.y_ref.items()}
        scales |= {f"y_sd:{r}": v for r, v in self.y_sd.items()}
        scales |= {f"log_ref:{x}": v for x, v in self.log_reference.items()}
        return {"laws": laws, "masks": masks, "scales": {k: jnp.asarray(v) for k, v in scales.items()}}

    @staticmethod
    def fitted_rows(inputs: dict, response: str) -> dict[str, np.ndarray]:
        """The values of `inputs` on the law's own rows, without the padding, as NumPy arrays."""
        mask = np.asarray(inputs["masks"][response])
        return {name: np.asarray(values)[mask] for name, values in inputs["laws"][response].items()}

    def model(self, observed: bool = True, likelihood: bool = True, start_mode: bool = False,
              collapse: bool = False):
        """The numpyro model, a function of `inputs(data)`. `observed=False` leaves responses
        unobserved (predictive draws); `likelihood=False` keeps only the priors; `start_mode`
        swaps improper sampling priors for proper ones so point-fit starts can be drawn;
        `collapse` integrates the `collapsed` noise scales out (what NUTS samples)."""
        import jax.numpy as jnp
        import numpyro

        skip = self.collapsed if collapse else ()

        def numpyro_model(inputs):
            params = self.sample_parameters(inputs["scales"], start_mode, skip)
            if not likelihood:
                return
            for law in self.spec.laws:
                law_rows, mask = inputs["laws"][law.response], inputs["masks"][law.response]
                mu = self.law_value(law, params, law_rows)
                if self.spec.has_curves(law):
                    mu = curves.with_run_offsets(self.spec, law, mu, params, law_rows)
                noise = Likelihood.of(law)
                if law.sigma in skip:
                    # a factor, not an observed site: LOO reads the full model's per-row sites
                    residual = noise.residual(law_rows[law.response], mu, jnp)
                    numpyro.factor(f"{law.sigma}__integrated", noise.marginal_log_density(residual, mask))
                    continue
                y = noise.observed(law_rows[law.response], jnp) if observed else None
                # padding rows (see `inputs`) add nothing to the density
                numpyro.sample(f"obs_{law.response}", noise.distribution(mu, params[law.sigma]).mask(mask), obs=y)
        return numpyro_model

    def structure_key(self, data: PreparedData) -> tuple:
        """Everything compiled code depends on besides `inputs`: the spec, its levels and the
        shapes."""
        return (self.spec.source, tuple(sorted(self.spec.data)), tuple(self.spec.parameters),
                tuple((g, len(v)) for g, v in sorted(self.levels.items())),
                tuple(law.noise for law in self.spec.laws),  # a default noise depends on the table
                tuple((r, bucket_size(len(i))) for r, i in data.rows.items()), self.centred,
                self.runs is not None and self.runs.centred)

    # ---- what `show` prints -----------------------------------------------------------------

    def describe(self) -> str:
        """What `infscale-dsl show` prints: the noise, every prior and how each parameter is sampled."""
        from .describe import describe

        return describe(self)


def law_value(spec: CheckedSpec, law: Law, params: Mapping[str, object],
              values: Mapping[str, object], xp):
    """The law's value for every row of `values` (numpy or jax.numpy as `xp`). Grouped
    parameters are indexed by the rows' category codes; params may carry a leading draws
    axis: scalars (S, 1), grouped (S, n_levels), giving (S, n_rows)."""
    env: dict[str, object] = dict(spec.constants)
    for name in names_in(law.expr):
        if name in values:
            env[name] = values[name]
    for name, parameter in spec.parameters.items():
        if name not in params:
            continue
        value = params[name]
        if parameter.group is not None:
            value = xp.take(value, xp.asarray(values[parameter.group]).astype(int), axis=-1)
        env[name] = value
    return evaluate(law.expr, env, xp)


def compile_spec(spec: CheckedSpec, data: PreparedData | None) -> CompiledModel:
    """Roles, priors, centring references and the default noise for `spec` on the rows of `data`.
    Without data (for `show`) the priors' scales and the references stay symbolic, and an
    undeclared noise stays Normal on log."""
    n_rows = {} if data is None else {r: len(i) for r, i in data.rows.items()}
    spec = with_default_noise(spec, n_rows)
    roles = find_roles(spec)
    if data is None:
        priors = choose_priors(spec, roles, None, None, {t.coefficient: t.text for t in roles.terms})
        return CompiledModel(spec, roles, priors, {}, {}, {}, {}, joint_sums(spec, roles, priors))
    y_ref, y_sd = {}, {}
    for law in spec.laws:
        y = np.asarray(data.values[law.response])[data.rows[law.response]]
        y = y[np.isfinite(y)]
        typical = float(np.median(np.abs(y))) if y.size else 1.0
        y_ref[law.response] = typical if typical > 0 else 1.0
        y_sd[law.response] = float(np.std(y)) if y.size > 1 else y_ref[law.response]
    log_reference = {}
    for term in roles.terms:
        for base, _ in term.powers:
            rows = data.rows[term.response]
            log_reference[base] = float(np.mean(np.log(np.asarray(data.values[base])[rows])))
    term_texts = {t.coefficient: _term_at(t, log_reference) for t in roles.terms}
    priors = choose_priors(spec, roles, y_ref, y_sd, term_texts)
    return CompiledModel(spec, roles, priors, log_reference, y_ref, y_sd, dict(data.levels),
                         joint_sums(spec, roles, priors), _well_observed_groups(spec, data),
                         curves.grouping(spec, data.levels, data.values, data.rows), n_rows)


def _term_at(term: PowerTerm, log_reference: Mapping[str, float]) -> str:
    """A power term at the data's typical values: `A/N^alpha at N = 1.2e+09`."""
    bases = dict.fromkeys(base for base, _ in term.powers)
    return f"{term.text} at " + ", ".join(f"{base} = {np.exp(log_reference[base]):.3g}" for base in bases)


def _well_observed_groups(spec: CheckedSpec, data: PreparedData) -> tuple[str, ...]:
    """Grouped parameters with at least CENTRED_MIN_ROWS rows in each level, in every law that reads them."""
    centred = []
    for name, parameter in spec.parameters.items():
        if parameter.group is None:
            continue
        n_levels = len(data.levels[parameter.group])
        counts = [np.bincount(np.asarray(data.values[parameter.group])[data.rows[law.response]], minlength=n_levels)
                  for law in spec.laws if name in names_in(law.expr)]
        if counts and all(c.min() >= CENTRED_MIN_ROWS for c in counts):
            centred.append(name)
    return tuple(centred)


def joint_sums(spec: CheckedSpec, roles: Roles, priors: Mapping[str, Prior]) -> tuple[OffsetSum, ...]:
    """The offset sums to sample jointly: those whose offset is positive by its prior (E and
    the terms then split a positive total) and whose members no other prior reads."""
    read_by_priors = {n for choice in priors.values() for n in choice.depends_on}
    return tuple(offset_sum for offset_sum in roles.sums
                 if priors[offset_sum.offset].positive
                 and not read_by_priors & {offset_sum.offset, *offset_sum.coefficients})
