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
