"""The distribution table of language/distributions.py says what numpyro says: argument names
and order, which arguments must be positive, which families can be truncated."""
import inspect

import numpyro
import numpyro.distributions as dist
import pytest

from infscale_dsl.language.distributions import DISTRIBUTIONS, TRUNCATABLE, value_problems


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_arguments_and_constraints_match_numpyro(name):
    info, family = DISTRIBUTIONS[name], getattr(dist, name)
    params = [p for p in inspect.signature(family.__init__).parameters if p not in ("self", "validate_args")]
    assert tuple(params) == info.params
    positive = {key for key, c in family.arg_constraints.items() if isinstance(c, type(dist.constraints.positive))}
    assert positive == set(info.positive)


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_truncatable_families_are_those_numpyro_truncates(name):
    base = getattr(dist, name)(*[0.5 if p == "low" else 1.0 for p in DISTRIBUTIONS[name].params])
    if name in TRUNCATABLE:
        dist.TruncatedDistribution(base, low=0.0, high=1.0)
    else:
        with pytest.raises((ValueError, AssertionError)):  # numpyro asserts the family
            dist.TruncatedDistribution(base, low=0.0, high=1.0)


@pytest.mark.parametrize("name", sorted(set(DISTRIBUTIONS) - {"Uniform"}))
def test_a_value_check_flags_what_numpyro_rejects(name):
    info, family = DISTRIBUTIONS[name], getattr(dist, name)
    good = dict.fromkeys(info.params, 1.0)
    assert value_problems(name, good) == []
    for key in info.positive:
        bad = good | {key: -1.0}
        assert [p for p, _, _ in value_problems(name, bad)] == [key]
        with numpyro.validation_enabled(), pytest.raises(ValueError):
            family(**bad)


def test_uniform_needs_low_below_high():
    assert [p for p, _, _ in value_problems("Uniform", {"low": 1.0, "high": 0.0})] == ["high"]
    assert value_problems("Uniform", {"low": 0.0, "high": 1.0}) == []


# arguments away from 1 so a swapped rate/scale or loc/scale would show
ARGUMENTS = {"loc": 0.3, "scale": 1.7, "df": 3.0, "rate": 2.5, "concentration": 2.2,
             "concentration1": 2.0, "concentration0": 3.5, "low": -0.5, "high": 2.0}


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_prior_draws_in_numpy_follow_numpyros_density(name):
    """Prior draws outside the sampler come from scipy.stats (priors.Prior.draw): each family's
    twin must have numpyro's density, and its draws numpyro's quantiles."""
    import jax.numpy as jnp
    import numpy as np
    from scipy import stats

    from infscale_dsl.model.priors import Prior, _scipy_twin
    from infscale_dsl.language.parse import parse

    import jax

    values = {p: ARGUMENTS[p] for p in DISTRIBUTIONS[name].params}
    twin = _scipy_twin(name, {k: np.asarray(v) for k, v in values.items()})
    with jax.enable_x64(True):  # as fits run
        reference = getattr(dist, name)(**values)
        x = np.asarray(reference.sample(jax.random.PRNGKey(0), (50,)))
        np.testing.assert_allclose(twin.logpdf(x), np.asarray(reference.log_prob(jnp.asarray(x))), rtol=1e-9, atol=1e-12)

    written = ", ".join(f"{v}" for v in values.values())
    (decl,) = parse(f"p ~ {name}({written})\n", "<test>").statements
    draws = Prior("p", decl, "declared", "p", "loss").draw({}, np.random.default_rng(0), (4000,))
    assert stats.kstest(draws, twin.cdf).pvalue > 0.01  # fixed seed: passes or fails for good


def test_truncated_and_squared_prior_draws_match_numpyro():
    """Bounded priors (`in [0, 3]`; bounds 20 sd out in either tail, where the CDF rounds to 0 or
    1) and one over sigma^2 (the default noise prior) drawn in NumPy against numpyro's own
    distributions, by a two-sample KS test on 4000 draws each."""
    import jax
    import numpy as np
    from scipy import stats

    from infscale_dsl.model.priors import Prior
    from infscale_dsl.language.parse import parse

    for text, squared in (("Normal(0.5, 0.5) in [0, 3]", False), ("Normal(0.5, 0.01) in [0.7, 3]", False),
                          ("Normal(0.5, 0.01) in [-3, 0.3]", False), ("InverseGamma(1, 0.000156)", True)):
        (decl,) = parse(f"p ~ {text}\n", "<test>").statements
        prior = Prior("p", decl, "declared", "p", "loss", squared=squared)
        ours = prior.draw({}, np.random.default_rng(1), (4000,))
        assert np.all(np.isfinite(ours)), text
        with jax.enable_x64(True):  # as fits run
            theirs = np.asarray(prior.build({}).sample(jax.random.PRNGKey(1), (4000,)))
        assert stats.ks_2samp(ours, theirs).pvalue > 0.01, text
        np.testing.assert_allclose(prior.median({}), np.median(theirs), rtol=0.05)
    assert 0 <= ours.min()  # a root of draws of sigma^2
