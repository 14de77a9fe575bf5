"""NUTS's starting point and mass matrix (sampler.laplace), and the fit's mass-matrix choice."""
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from infscale_dsl.inference.fit import fit
from infscale_dsl.language import parse, check
from infscale_dsl.inference.pointfit import gradient_and_hessian, newton
from infscale_dsl.inference.sampler import _ess_per_draw, _phase_steps, chain_method, laplace, warm_up_by_phase


@pytest.fixture(autouse=True)
def float64():
    """laplace() runs in float64 inside a fit; here only these tests switch it on."""
    with jax.enable_x64(True):
        yield


MEAN = {"a": jnp.array(0.7), "b": jnp.array([-1.0, 2.5])}
COVARIANCE = np.array([[0.50, 0.20, 0.00],
                       [0.20, 0.30, -0.10],
                       [0.00, -0.10, 2.00]])  # in the order a, b[0], b[1] (sorted site names)


def gaussian_potential(params):
    x = jnp.concatenate([params["a"][None], params["b"]])
    mean = jnp.concatenate([MEAN["a"][None], MEAN["b"]])
    return 0.5 * (x - mean) @ jnp.linalg.solve(COVARIANCE, x - mean)


def test_laplace_of_a_gaussian_is_its_mean_and_covariance():
    point = {"a": jnp.array(3.0), "b": jnp.array([1.0, -4.0])}
    mode, inverse_mass = laplace(gaussian_potential, point)
    np.testing.assert_allclose(mode["a"], MEAN["a"], atol=1e-6)
    np.testing.assert_allclose(mode["b"], MEAN["b"], atol=1e-6)
    np.testing.assert_allclose(inverse_mass, COVARIANCE, atol=1e-8)


def test_a_flat_direction_gets_unit_variance():
    # no curvature along b[1]: the Hessian is singular there
    potential = lambda p: 0.5 * ((p["a"] - 1.0) / 0.1) ** 2 + 0.5 * (p["b"][0] / 0.2) ** 2 + 0.0 * p["b"][1]
    mode, inverse_mass = laplace(potential, {"a": jnp.array(0.0), "b": jnp.array([0.5, 3.0])})
    np.testing.assert_allclose(np.diag(inverse_mass), [0.01, 0.04, 1.0], rtol=1e-6)
    assert float(mode["a"]) == pytest.approx(1.0, abs=1e-6)
    assert float(mode["b"][1]) == pytest.approx(3.0)  # nothing pulls it anywhere


def test_a_potential_that_is_not_finite_keeps_the_point_and_the_identity():
    point = {"a": jnp.array(0.5), "b": jnp.array([0.0, 0.0])}
    mode, inverse_mass = laplace(lambda p: jnp.log(-1.0 - p["a"] ** 2), point)  # NaN everywhere
    np.testing.assert_array_equal(mode["a"], point["a"])
    np.testing.assert_array_equal(inverse_mass, np.eye(3))


def rosenbrock(x):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def test_hessian_from_differences_of_the_gradient_matches_jax_hessian():
    x = jnp.array([-1.2, 1.0])  # off the valley: curvatures of 1e0 to 1e3
    gradient, hessian = gradient_and_hessian(rosenbrock, x)
    np.testing.assert_allclose(gradient, jax.grad(rosenbrock)(x), rtol=1e-12)
    np.testing.assert_allclose(hessian, jax.hessian(rosenbrock)(x), rtol=1e-7, atol=1e-7)


def test_newton_goes_downhill_where_the_objective_bends_the_wrong_way():
    # at (0, 1) Rosenbrock's Hessian is indefinite (curvatures -398 and 200): a plain Newton step
    # there can climb; on absolute curvatures with halving it reaches the minimum at (1, 1)
    start = jnp.array([0.0, 1.0])
    assert np.min(np.linalg.eigvalsh(jax.hessian(rosenbrock)(start))) < 0
    x, value, hessian = newton(rosenbrock, start, max_iter=200)
    np.testing.assert_allclose(x, [1.0, 1.0], atol=1e-6)
    assert float(value) < 1e-12
    np.testing.assert_allclose(hessian, jax.hessian(rosenbrock)(x), rtol=1e-6)


def test_one_program_warms_up_as_numpyro_does_in_each_phase():
    # the phase is an argument of one compiled program; each phase's draws, step size and metric
    # must be those of numpyro's own kernel set up for that phase alone
    from numpyro.infer.hmc import hmc

    scales = jnp.array([1.0, 3.0])
    potential = lambda z: 0.5 * jnp.sum(((z["x"] - 1.0) / scales) ** 2)
    phases = ((False, 20), (True, 40))

    def run(phase, own_adapter: bool):
        init_kernel, sample_kernel = hmc(potential_fn=potential, algo="NUTS")
        start = {"x": jnp.zeros(2)}
        if own_adapter:
            adapt, steps = phases[phase]
            state = init_kernel(start, num_warmup=steps, adapt_mass_matrix=adapt, dense_mass=True,
                                rng_key=jax.random.PRNGKey(1))
        else:
            with warm_up_by_phase(phases, phase):
                state = init_kernel(start, num_warmup=_phase_steps(phases, phase), dense_mass=True,
                                    rng_key=jax.random.PRNGKey(1))
        state, draws = jax.lax.scan(lambda s, _: (lambda s: (s, s.z["x"]))(sample_kernel(s)), state, None,
                                    length=50)
        return draws, state.adapt_state.step_size, state.adapt_state.inverse_mass_matrix

    shared = jax.jit(lambda phase: run(phase, own_adapter=False))
    for phase in range(len(phases)):
        own = jax.jit(lambda: run(phase, own_adapter=True))()
        for mine, numpyros in zip(shared(np.int32(phase)), own):
            np.testing.assert_allclose(mine, numpyros, rtol=1e-12)
    metric = lambda phase: shared(np.int32(phase))[2]
    np.testing.assert_array_equal(metric(0), np.eye(2))  # the first phase keeps its metric
    assert not np.allclose(metric(1), np.eye(2))  # the second re-estimates it


SPEC = """data N : positive
data loss : positive
loss ~ A / N^a + E
"""


@pytest.fixture(scope="module")
def runs():
    """60 runs from loss = 300 N^-0.3 + 1.8 with 1 % log-normal noise (seed 1)."""
    rng = np.random.default_rng(1)
    n = np.geomspace(1e7, 1e10, 60)
    return pd.DataFrame({"N": n, "loss": (300 * n**-0.3 + 1.8) * np.exp(0.01 * rng.standard_normal(60))})


@pytest.mark.slow
def test_auto_keeps_the_laplace_metric_when_the_fit_passes(runs):
    spec = check(parse(SPEC, "power.law"), runs.columns)
    result = fit(spec, runs, seed=0)  # the defaults: 4 chains x 500 draws after 500 warm-up
    assert result.diagnostics["ok"], result.diagnostics["problems"]
    assert result.sampler["mass"] == "laplace", result.sampler
    assert "metric kept" in result.sampler["mass_note"]
    medians = result.summary()["median"]
    assert medians["a"] == pytest.approx(0.3, abs=0.05) and medians["E"] == pytest.approx(1.8, abs=0.1)


def test_mixing_in_the_first_quarter_of_warm_up_is_measured_per_draw():
    rng = np.random.default_rng(0)
    independent = rng.standard_normal((4, 200, 2))  # (chains, draws, d)
    assert _ess_per_draw(independent) > 0.7  # the smaller of two noisy estimates near 1
    sticky = np.repeat(independent[:, :20], 10, axis=1)  # each value held for 10 draws
    assert _ess_per_draw(sticky) < 0.2


@pytest.mark.slow
def test_adapt_re_estimates_the_metric_in_one_run(runs):
    spec = check(parse(SPEC, "power.law"), runs.columns)
    result = fit(spec, runs, warmup=300, draws=300, max_draws=300, seed=0, mass="adapt")
    assert result.sampler["mass"] == "adapt"
    assert result.idata.posterior.sizes["draw"] == 300
    # 4 chains on the tests' 2 CPU devices: vectorized, and the fit's sampler record says why
    assert result.sampler["chain_method"] == ("parallel" if jax.local_device_count() >= 4 else "vectorized")
    assert (result.sampler["chain_method"], result.sampler["chain_method_fallback"]) == chain_method(4)


def test_chains_beyond_the_devices_run_vectorized_and_say_how_to_run_them_in_parallel():
    devices = jax.local_device_count()
    assert chain_method(devices) == ("parallel", None)
    method, fallback = chain_method(devices + 1)
    assert method == "vectorized"
    assert fallback == (f"only {devices} cpu device(s) for {devices + 1} chains: set "
                        f"XLA_FLAGS=--xla_force_host_platform_device_count={devices + 1} before JAX starts")


def test_unknown_mass_matrix_and_negative_seed_are_refused(runs):
    spec = check(parse(SPEC, "power.law"), runs.columns)
    with pytest.raises(ValueError, match="mass must be one of"):
        fit(spec, runs, mass="diagonal")
    with pytest.raises(ValueError, match="seed must be a whole number >= 0, not -1"):
        fit(spec, runs, seed=-1)  # numpy's own error would name no option


@pytest.mark.slow
def test_a_declared_prior_on_a_coefficient_is_not_read_as_data(runs):
    # the prior on A enters the model as a factor site; the log-likelihood keeps only the law's rows
    source = SPEC.replace("loss ~", "A ~ LogNormal(5, 3)\nloss ~")
    result = fit(check(parse(source, "power.law"), runs.columns), runs, chains=2, warmup=20, draws=20, max_draws=20)
    assert list(result.idata.log_likelihood.data_vars) == ["loss"]
    assert result.idata.log_likelihood["loss"].shape == (2, 20, 60)


def test_a_second_fit_of_the_same_structure_lowers_and_compiles_nothing(runs, capsys):
    """Compiled programs are kept per model structure, with the data as arguments: a second fit
    of the same spec to a table of the same size bucket (57 rows after 60: both padded to 64)
    reuses them and lowers none (a lowering is what a program costs before XLA or the disk cache
    sees it), with a progress bar or without: the bar moves between compiled chunks of NUTS
    steps, not inside them.
    numpyro's model set-up runs traced, and the prior draws are one program each: run op by op,
    each op was a program of its own, ~250 per fit read back from the disk cache in a new process."""
    spec = check(parse("loss ~ E + A/N^alpha"), columns=runs.columns)
    settings = dict(chains=2, warmup=60, draws=60, max_draws=60, mass="adapt")
    fit(spec, runs, seed=0, **settings)
    lowered = []

    def listen(event, duration, **kwargs):
        if event == "/jax/core/compile/jaxpr_to_mlir_module_duration":
            lowered.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        other = runs.assign(loss=runs["loss"] * 1.01).iloc[:57]  # other values, 3 rows fewer
        capsys.readouterr()
        result = fit(spec, other, seed=1, progress=True, **settings)
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert lowered == []
    err = capsys.readouterr().err
    assert "240/240" in err  # 2 chains x (60 warm-up + 60 draws), to the end
    assert "compiling the model" not in err  # it would say so only where a program is compiled
    # the padding rows are nowhere in what the fit returns
    assert result.idata.log_likelihood["loss"].shape == (2, 60, 57)
    np.testing.assert_allclose(result.idata.observed_data["loss"].values, other["loss"].to_numpy())


def test_more_draws_follow_while_a_noise_scale_integrated_out_mixes_badly(runs, monkeypatch):
    # NUTS never samples a collapsed sigma, but the gate judges its draws: the test of "enough
    # draws" must read them as the fit will draw them, not only the law's parameters
    from infscale_dsl.inference.fit import _gate_met
    from infscale_dsl.model.compile import compile_spec
    from infscale_dsl.model.data import prepare

    table = runs.iloc[::3]  # 20 rows for 3 parameters: Normal noise on log, sigma integrated out
    spec = check(parse(SPEC), columns=table.columns)
    data = prepare(spec, table)
    compiled = compile_spec(spec, data)
    assert compiled.collapsed == ("sigma_loss",)
    rng = np.random.default_rng(0)
    samples = {"A": 300 * np.exp(0.01 * rng.standard_normal((4, 500))),  # (chains, draws), well mixed
               "a": 0.3 + 0.001 * rng.standard_normal((4, 500)),
               "E": 1.8 + 0.001 * rng.standard_normal((4, 500))}
    enough = _gate_met(compiled, compiled.inputs(data), seed=0)
    assert enough(samples)
    # the same law draws, with noise draws whose chains disagree (S,) in chain-major order
    draw = compiled.draw_collapsed_noise
    monkeypatch.setattr(compiled, "draw_collapsed_noise", lambda *a: {
        name: v * np.repeat([1.0, 1.0, 1.0, 1.5], 500) for name, v in draw(*a).items()})
    assert not enough(samples)

