"""How the compiler reparametrises a law for NUTS (compile.py, likelihood.py, sampler.py):
each change must leave the posterior the user asked for unchanged, and say so in `show`."""
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
import pytest
from numpyro.infer import MCMC, NUTS
from scipy import stats

from infscale_dsl.model.compile import compile_spec
from infscale_dsl.model.data import prepare
from infscale_dsl.inference.fit import fit
from infscale_dsl.language import load_spec
from infscale_dsl.model.likelihood import NOISE_RATE, NOISE_SHAPE
from infscale_dsl.model.roles import find_roles

CHINCHILLA = "loss ~ E + A/N^alpha + B/D^beta\n"
GADRE = "C = 6 * N * D\nM = D / N\nloss ~ E + (a * M^eta + b / M^eta) / C^eta\n"


@pytest.fixture(scope="module")
def chinchilla_runs():
    """40 runs of Besiroglu et al.'s Chinchilla fit with 1 % log-normal noise (seed 0)."""
    rng = np.random.default_rng(0)
    n, d = 10 ** rng.uniform(7.5, 9.5, 40), 10 ** rng.uniform(9, 11, 40)
    loss = (1.82 + 482 / n**0.3478 + 2085 / d**0.3658) * np.exp(0.01 * rng.standard_normal(40))
    return pd.DataFrame({"N": n, "D": d, "loss": loss})


def run_nuts(model, inputs, seed=0, samples=1500):
    mcmc = MCMC(NUTS(model, target_accept_prob=0.95), num_warmup=800, num_samples=samples,
                num_chains=1, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(seed), inputs)
    return {k: np.asarray(v) for k, v in mcmc.get_samples().items()}


def test_data_powers_around_a_sum_belong_to_each_of_its_terms():
    spec = load_spec(GADRE, columns=["N", "D", "loss"])
    roles = find_roles(spec)
    terms = {t.coefficient: t for t in roles.terms}
    # Gadre's `(a M^eta + b M^-eta) C^-eta`: each coefficient is centred on its whole term
    assert [base for base, _ in terms["a"].powers] == ["M", "C"]
    assert [base for base, _ in terms["b"].powers] == ["M", "C"]
    assert terms["a"].text == "a*M^eta/C^eta"
    # and E with both terms makes one offset sum
    assert [(s.offset, s.coefficients) for s in roles.sums] == [("E", ("a", "b"))]


def test_the_joint_offset_sum_keeps_the_priors(chinchilla_runs):
    """Sampling E, A, B as a log-sum and log-shares must leave their priors as `show` prints
    them: E ~ Gamma(2, 2 / y_ref) and log(A/N^alpha at typical N) ~ Normal(log y_ref, 3)."""
    spec = load_spec(CHINCHILLA, columns=chinchilla_runs.columns)
    compiled = compile_spec(spec, prepare(spec, chinchilla_runs))
    assert compiled.joint and compiled.joint[0].offset == "E"
    assert "E__log_sum" in compiled.describe()
    with jax.enable_x64(True):
        draws = run_nuts(compiled.model(likelihood=False, collapse=True), compiled.inputs(
            prepare(spec, chinchilla_runs)))
    y_ref = compiled.y_ref["loss"]
    # E's prior: a KS test against Gamma(2, rate 2 / y_ref) on thinned (nearly independent) draws
    assert stats.kstest(draws["E"][::5], stats.gamma(2.0, scale=y_ref / 2.0).cdf).pvalue > 0.01
    log_term = np.log(draws["A"]) - draws["alpha"] * compiled.log_reference["N"]
    assert stats.kstest(log_term[::5], stats.norm(np.log(y_ref), 3.0).cdf).pvalue > 0.01


@pytest.mark.slow
def test_integrating_sigma_out_gives_the_posterior_of_sampling_it():
    """`loss ~ E` on 6 runs: the fit (sigma integrated out, then drawn from its conditional)
    against a hand-written NumPyro model that samples sigma^2 ~ InverseGamma beside E."""
    rng = np.random.default_rng(3)
    table = pd.DataFrame({"loss": 2.5 * np.exp(0.02 * rng.standard_normal(6))})
    spec = load_spec("loss ~ E\n", columns=table.columns)
    result = fit(spec, table, seed=1, draws=1000, max_draws=1000)
    assert "integrated out" in compile_spec(spec, prepare(spec, table)).describe()
    y_ref = float(np.median(table.loss))

    def reference(y):
        e = numpyro.sample("E", dist.Gamma(2.0, 2.0 / y_ref))
        variance = numpyro.sample("variance", dist.InverseGamma(NOISE_SHAPE, NOISE_RATE))
        numpyro.sample("y", dist.Normal(jnp.log(e), jnp.sqrt(variance)), obs=jnp.log(y))

    with jax.enable_x64(True):
        expected = run_nuts(reference, jnp.asarray(table.loss.to_numpy()), samples=4000)
    got = result.draws
    # quantiles within Monte Carlo error of 4000 and 4000 draws: 2 % of the posterior's spread
    for q in (0.1, 0.5, 0.9):
        spread_e = np.std(expected["E"])
        assert np.quantile(got["E"], q) == pytest.approx(np.quantile(expected["E"], q), abs=0.1 * spread_e)
        sigma = np.sqrt(expected["variance"])
        assert np.quantile(got["sigma_loss"], q) == pytest.approx(np.quantile(sigma, q), abs=0.1 * np.std(sigma))


@pytest.mark.slow
def test_draws_continue_until_the_gate_is_met(chinchilla_runs):
    spec = load_spec(CHINCHILLA, columns=chinchilla_runs.columns)
    # 4 x 50 draws cannot reach the gate's bulk ESS of 400: blocks of 50 follow, up to 400
    result = fit(spec, chinchilla_runs, seed=0, warmup=300, draws=50, max_draws=400)
    drawn = result.idata.posterior.sizes["draw"]
    assert 50 < drawn <= 400 and drawn % 50 == 0
    assert result.sampler["draws"] == drawn and result.sampler["min_draws"] == 50
    assert f"{drawn} draws per chain" in result.sampler["mass_note"]
    # max_draws = draws: exactly that many
    exact = fit(spec, chinchilla_runs, seed=0, warmup=300, draws=50, max_draws=50)
    assert exact.idata.posterior.sizes["draw"] == 50
    assert result.sampler["gradients"] > exact.sampler["gradients"] > 0


def test_grouped_parameters_are_centred_where_every_level_has_many_rows(chinchilla_runs):
    spec = load_spec("data family : category\nE[family] ~ LogNormal(mu_E, tau_E)\n" + CHINCHILLA,
                     columns=list(chinchilla_runs.columns) + ["family"])
    many = chinchilla_runs.assign(family=["a", "b"] * 20)  # 20 rows per level
    few = many.assign(family=["a"] * 35 + ["b"] * 5)  # 5 rows in level b
    assert compile_spec(spec, prepare(spec, many)).centred == ("E",)
    assert "centred: at least 8 rows" in compile_spec(spec, prepare(spec, many)).describe()
    assert compile_spec(spec, prepare(spec, few)).centred == ()
    assert "E__z ~ Normal(0, 1)" in compile_spec(spec, prepare(spec, few)).describe()


SEED_LAW = "R = d_model / n_layers\nloss ~ (E + A/N^alpha + B/D^alpha) * (1 + eps * R^alpha)\n"


@pytest.fixture(scope="module")
def one_shape_runs():
    """6 runs of the seed paper's law, all of one shape (R = 64), as in its few-run ablation:
    the data pin down the sum times the shape factor, not either alone."""
    n = np.geomspace(8e7, 3e8, 6)
    d = 20 * n * np.array([1, 1, 1, 1, 1, 8])
    loss = (1.5 + 400 / n**0.3 + 1800 / d**0.3) * (1 + 0.02 * 64**0.3)
    return pd.DataFrame({"N": n, "D": d, "d_model": 1024.0, "n_layers": 16.0, "loss": loss})


def test_a_sum_times_a_shape_factor_is_sampled_as_their_product(one_shape_runs):
    """The sum's joint site is the log of the whole law at typical X (sum times factor), so
    runs of one shape, which fix only the product, leave no ridge between E, A, B and eps;
    a prior-only run checks that every prior is as `show` prints it."""
    spec = load_spec(SEED_LAW, columns=one_shape_runs.columns)
    compiled = compile_spec(spec, prepare(spec, one_shape_runs))
    assert [(s.offset, s.factor) for s in compiled.joint] == [("E", "eps")]
    assert "times 1 + eps*R^alpha" in compiled.describe()
    with jax.enable_x64(True):
        draws = run_nuts(compiled.model(likelihood=False, collapse=True), compiled.inputs(
            prepare(spec, one_shape_runs)), samples=2000)
    y_ref = compiled.y_ref["loss"]
    assert stats.kstest(draws["E"][::5], stats.gamma(2.0, scale=y_ref / 2.0).cdf).pvalue > 0.01
    log_term = np.log(draws["A"]) - draws["alpha"] * compiled.log_reference["N"]
    assert stats.kstest(log_term[::5], stats.norm(np.log(y_ref), 3.0).cdf).pvalue > 0.01
    eps_term = np.log(draws["eps"]) + draws["alpha"] * compiled.log_reference["R"]
    prior = compiled.priors["eps"].build({"y_ref:loss": y_ref})
    assert stats.kstest(eps_term[::5], stats.norm(float(prior.loc), float(prior.scale)).cdf).pvalue > 0.01


def test_a_sum_times_something_else_keeps_the_plain_joint_sum():
    # the factor first is the same law
    flipped = find_roles(load_spec("loss ~ (1 + eps * R^alpha) * (E + A/N^alpha + B/D^alpha)\n",
                                   columns=["N", "D", "R", "loss"]))
    assert [(s.offset, s.factor) for s in flipped.sums] == [("E", "eps")]
    # a factor with two terms, or a sum times data, is not the shape factor
    for law in ("loss ~ (E + A/N^alpha) * (1 + eps * R^alpha + c * N^beta)\n", "loss ~ (E + A/N^alpha) * R\n"):
        roles = find_roles(load_spec(law, columns=["N", "R", "loss"]))
        assert [s.factor for s in roles.sums] == [None]
