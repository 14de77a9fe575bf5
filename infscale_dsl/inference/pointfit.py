"""Robust point fit from many starts, vectorised in JAX (`--method map`).

The objective is the one Hoffmann et al. and Besiroglu et al. minimise for Chinchilla: the sum
of Huber losses (delta 1e-3) of the residuals log y - log law (or a Student-t loss; on the
identity scale the residual is (y - law) / y_ref). Priors enter only through their supports
(bounds), so the optimum is comparable with published fits.

Running L-BFGS from every start is what makes the classical recipe slow (4500 scipy runs).
Here the objective is evaluated on all starts at once (one vmapped call: milliseconds), and
only the best few dozen are refined, with optax L-BFGS vmapped over starts inside one jitted
while-loop. Starts are drawn from the priors, in the model's unconstrained space. The
compiled functions take the data as arguments and are kept per model structure, so a second
fit of the same spec to data of the same shapes compiles nothing.

The sampler's Laplace step finds the posterior mode with `newton` (Newton's method on a Hessian
from differences of the gradient), which compiles to a smaller program than L-BFGS.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu
from numpyro import handlers
from numpyro.infer import Predictive
from numpyro.infer.util import constrain_fn, initialize_model, unconstrain_fn

from ..model import curves
from ..model.compile import CompiledModel, law_value
from ..model.data import PreparedData
from ..model.likelihood import Likelihood
from .programs import RecentPrograms, StoredProgram

_COMPILED = RecentPrograms(8)  # structure key and settings -> compiled functions


@dataclass
class PointFit:
    params: dict[str, np.ndarray]  # sampling sites and deterministics, constrained
    unconstrained: dict[str, np.ndarray]  # the sampling sites in the unconstrained space
    objective: float


@dataclass
class _Functions:
    # (key, inputs) -> (the best point, unconstrained; the same constrained, with the
    # deterministics; its objective): starts drawn, scored, the best refined, in one program
    search: object


def robust_loss(residual, kind: str, delta: float):
    if kind == "huber":
        return optax.huber_loss(residual, delta=delta)
    # Student-t (nu = 4) negative log density up to a constant, with scale delta
    return 2.5 * jnp.log1p((residual / delta) ** 2 / 4.0)


def point_fit(compiled: CompiledModel, data: PreparedData, *, seed: int = 0,
              n_starts: int = 4096, n_refine: int = 16, loss: str = "huber",
              delta: float = 1e-3, max_iter: int = 200) -> PointFit:
    inputs = compiled.inputs(data)
    key = (compiled.structure_key(data), n_starts, n_refine, loss, delta, max_iter)
    functions = _COMPILED.get(key, lambda: _build(compiled, key, n_starts, n_refine, loss, delta, max_iter))

    point, constrained, value = functions.search(jax.random.PRNGKey(seed), inputs)
    params = {k: np.asarray(v) for k, v in constrained.items() if ":" not in k}
    _set_noise_scales(compiled, params, inputs)
    return PointFit(params, {k: np.asarray(v) for k, v in point.items()}, float(value))


def _build(compiled: CompiledModel, key: tuple, n_starts: int, n_refine: int, loss: str,
           delta: float, max_iter: int) -> _Functions:
    # noise scales that NUTS integrates out are set from the residuals after, not searched
    start_model = compiled.model(likelihood=False, start_mode=True, collapse=True)

    def draw_starts(key, inputs):
        # runs only while the program is traced: a program read from disk traces no model
        trace = handlers.trace(handlers.seed(start_model, key)).get_trace(inputs)
        sites = [name for name, site in trace.items() if site["type"] == "sample"]
        draws = Predictive(start_model, num_samples=n_starts, return_sites=sites)(key, inputs)
        # the model's own bijections (as NUTS uses) take each draw to the unconstrained space
        return jax.vmap(lambda one: unconstrain_fn(start_model, (inputs,), {}, one))(draws)

    def constrain(unconstrained, inputs):
        return constrain_fn(start_model, (inputs,), {}, unconstrained, return_deterministic=True)

    def objective(unconstrained, inputs):
        params = constrain(unconstrained, inputs)
        total = 0.0
        for law in compiled.spec.laws:
            rows = inputs["laws"][law.response]
            mu = compiled.law_value(law, params, rows)
            residual = Likelihood.of(law).residual(rows[law.response], mu, jnp)
            if law.noise.scale == "identity":
                residual = residual / inputs["scales"][f"y_ref:{law.response}"]
            mask = inputs["masks"][law.response]  # padding rows (compile.bucket_size) weigh nothing
            total = total + jnp.sum(jnp.where(mask, robust_loss(residual, loss, delta), 0.0))
        return jnp.where(jnp.isfinite(total), total, jnp.inf)

    def search(key, inputs):
        starts = draw_starts(key, inputs)  # each site (n_starts, ...)
        values = jax.vmap(objective, in_axes=(0, None))(starts, inputs)  # (n_starts,)
        best = jnp.argsort(values)[:n_refine]
        refine = jax.vmap(lambda x0: lbfgs(lambda x: objective(x, inputs), x0, max_iter))
        refined, final_values = refine(jax.tree.map(lambda x: x[best], starts))  # (n_refine, ...)
        winner = jnp.nanargmin(final_values)
        point = jax.tree.map(lambda x: x[winner], refined)
        return point, constrain(point, inputs), final_values[winner]

    return _Functions(search=StoredProgram(("point fit",) + key, jax.jit(search)))


def initialize_traced(model, inputs: dict, **options):
    """numpyro's `initialize_model(model, model_args=(inputs,), **options)`, run on abstract
    values (jax.eval_shape), so that nothing compiles. Run as it is, it evaluates the model, its
    potential and the gradient at the start op by op, and outside `jax.jit` each op is a
    program of its own: ~160 of the 275 a warm Chinchilla fit from the shell read back from the
    disk cache, 2.5 s. The model trace holds abstract values (its names and types are what
    callers read), and the potential and postprocess functions, built with `dynamic_args=True`,
    read the model arguments they are given. Where the model ties a value of the trace into
    them (a tracer would leak), it runs as numpyro runs it."""
    found = {}

    def initialize(inputs):
        found["info"] = initialize_model(jax.random.PRNGKey(0), model, model_args=(inputs,), **options)
        return found["info"].param_info.z

    try:
        z = jax.eval_shape(initialize, inputs)
        if options.get("dynamic_args"):  # the functions must not hold values of that trace
            jax.eval_shape(lambda inputs, z: found["info"].potential_fn(inputs)(z), inputs, z)
    except jax.errors.UnexpectedTracerError:
        return initialize_model(jax.random.PRNGKey(0), model, model_args=(inputs,), **options)
    return found["info"]


def lbfgs(objective, x0, max_iter: int):
    """L-BFGS (optax, zoom line search) until the gradient vanishes or max_iter steps."""
    solver = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(objective)

    def step(carry):
        x, state = carry
        value, grad = value_and_grad(x, state=state)
        updates, state = solver.update(grad, state, x, value=value, grad=grad, value_fn=objective)
        return optax.apply_updates(x, updates), state

    def keep_going(carry):
        _, state = carry
        count = otu.tree_get(state, "count")
        norm = otu.tree_norm(otu.tree_get(state, "grad"))
        return (count == 0) | ((count < max_iter) & (norm >= 1e-9) & jnp.isfinite(norm))

    x, _ = jax.lax.while_loop(keep_going, step, (x0, solver.init(x0)))
    return x, objective(x)


def newton(objective, x0: jax.Array, max_iter: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The minimum of `objective` near x0 (d,), its value and the Hessian there (d, d).

    Newton's method on the Hessian's absolute curvatures (so that a step goes downhill where the
    objective bends the wrong way), halving each step until the objective falls; it stops when
    a step lowers it by no more than round-off, or after max_iter steps. Chosen for the compiler
    rather than the optimiser: with the Hessian from differences of the gradient, its program
    compiles in a third of the time of optax's L-BFGS with a zoom line search followed by
    jax.hessian (1.4 s against 4.5 s on Chinchilla's potential; the same mode to 1e-9 and
    Hessian to 1e-6), and a structure's first fit compiles it."""
    def step(carry):
        x, value, gradient, hessian, count, _ = carry
        curvatures, vectors = jnp.linalg.eigh(hessian)
        direction = -(vectors / jnp.maximum(jnp.abs(curvatures), 1e-6)) @ (vectors.T @ gradient)

        def halve(search):
            length, _ = search
            return length / 2, objective(x + length / 2 * direction)

        # from a full step down; `not <=` also goes on past a NaN value
        length, new_value = jax.lax.while_loop(lambda search: ~(search[1] <= value) & (search[0] > 1e-8),
                                               halve, (jnp.asarray(2.0, x.dtype), jnp.asarray(jnp.inf, x.dtype)))
        lowered = new_value <= value
        x = jnp.where(lowered, x + length * direction, x)
        gradient, hessian = gradient_and_hessian(objective, x)
        moved = lowered & (value - new_value > 1e-12 * (1 + jnp.abs(value)))
        return x, jnp.where(lowered, new_value, value), gradient, hessian, count + 1, moved

    def keep_going(carry):
        _, value, _, _, count, moved = carry
        return moved & (count < max_iter) & jnp.isfinite(value)

    gradient, hessian = gradient_and_hessian(objective, x0)
    x, value, _, hessian, _, _ = jax.lax.while_loop(keep_going, step, (x0, objective(x0), gradient, hessian, 0, True))
    return x, value, hessian


def gradient_and_hessian(objective, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The gradient (d,) of `objective` at x and its Hessian (d, d) by central differences of
    the gradient: 2d + 1 gradients in one vectorised call. A program a fraction the size of
    jax.hessian's (forward over reverse), for a metric that needs no more than 6 digits."""
    d = x.size
    # the step that balances central differences' error (step^2) against round-off (eps / step)
    step = jnp.finfo(x.dtype).eps ** (1 / 3) * jnp.maximum(1.0, jnp.abs(x))  # (d,)
    shifts = jnp.concatenate([jnp.zeros((1, d), x.dtype), jnp.diag(step), -jnp.diag(step)])  # (2d + 1, d)
    points = x + shifts
    gradients = jax.vmap(jax.grad(objective))(points)  # (2d + 1, d)
    spans = jnp.diagonal(points[1:d + 1] - points[d + 1:])  # (d,): the steps as the floats took them
    hessian = (gradients[1:d + 1] - gradients[d + 1:]) / spans[:, None]
    return gradients[0], 0.5 * (hessian + hessian.T)


def _set_noise_scales(compiled: CompiledModel, params: dict, inputs: dict) -> None:
    """The point fit does not fit noise scales; set each from its residuals (robust SD), then
    each drift scale, which no row informs, to its prior's median given them. Under `curves by`, the runs'
    offsets come from the runs' mean residuals, and sigma from the rest (curves.py)."""
    for law in compiled.spec.laws:
        rows = compiled.fitted_rows(inputs, law.response)
        with np.errstate(all="ignore"):  # in NumPy: op by op in JAX, each op is a program of its own
            mu = np.asarray(law_value(compiled.spec, law, params, rows, np))
        residual = Likelihood.of(law).residual(rows[law.response], mu)
        if compiled.spec.has_curves(law):
            column = compiled.spec.curves.column
            sigma, tau, offsets = curves.point_scales(residual, rows[column], len(compiled.levels[column]))
            params[law.sigma], params[law.run_scale] = np.asarray(sigma), np.asarray(tau)
            params[curves.offsets_site(law)] = offsets
            if not compiled.runs.centred:
                params[curves.z_site(law)] = offsets / tau
            continue
        mad = 1.4826 * np.median(np.abs(residual - np.median(residual)))
        params[law.sigma] = np.asarray(mad if mad > 0 else np.std(residual) + 1e-12)
    # the drift's default prior reads the noise scales just set
    env = {name: np.asarray(value) for name, value in (inputs["scales"] | params).items()}
    params.update({name: compiled.priors[name].median(env) for name in compiled.prior_only})
