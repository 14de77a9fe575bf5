"""`check` accepts exactly what `show` and `fit` accept: every rule about a spec lives in
language/check.py and is reported there with a line and a caret, never later by the compiler."""
import pytest
from hypothesis import HealthCheck, given, settings
from spec_strategies import COLUMNS, specs

import jax
import numpyro

from infscale_dsl.cli import main
from infscale_dsl.model.compile import compile_spec
from infscale_dsl.errors import LawError
from infscale_dsl.language.distributions import DISTRIBUTIONS
from infscale_dsl.language import load_spec

GROUPED_GAMMA = "data family : category\nE[family] ~ Gamma(2, 1)\nloss ~ E + A/N^a\n"

# specs the compiler or the prior builder used to reject after `check` had passed them
REJECTED_LATE = [
    (GROUPED_GAMMA, 2, "grouped parameter 'E' needs a Normal or LogNormal"),
    ("data family : category\nE[family] ~ Normal(0, 1) in [0, 2]\nloss ~ E + A/N^a", 2, "grouped parameter"),
    ("alpha ~ LogNormal(0, 1) in [0, 2]\nloss ~ A/N^alpha", 1, "LogNormal cannot be bounded"),
    ("alpha ~ HalfNormal(-1)\nloss ~ A/N^alpha", 1, "scale = -1 must be positive"),
    ("alpha ~ Uniform(1, 0)\nloss ~ A/N^alpha", 1, "is empty"),
]


@pytest.mark.parametrize("source, line, message", REJECTED_LATE)
def test_check_rejects_with_a_caret(source, line, message):
    with pytest.raises(LawError) as error:
        load_spec(source, columns=["N", "loss", "family"])
    (diagnostic,) = error.value.diagnostics
    assert diagnostic.line == line and message in diagnostic.message
    assert diagnostic.source_line and diagnostic.hint


def test_check_show_and_fit_agree_on_a_grouped_gamma_prior(tmp_path, capsys):
    spec, table = tmp_path / "grouped.law", tmp_path / "t.csv"
    spec.write_text(GROUPED_GAMMA)
    table.write_text("N,loss,family\n1e8,3.1,a\n2e8,3.0,b\n4e8,2.9,a\n8e8,2.8,b\n")
    outputs = []
    fit = ["fit", str(spec), str(table), "-o", str(tmp_path / "fit")]
    for command in (["check", str(spec), str(table)], ["show", str(spec)], fit):
        assert main(command) == 2, command
        outputs.append(capsys.readouterr().err)
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0].startswith(f"{spec}:2:13: error: grouped parameter 'E'")
    assert not (tmp_path / "fit").exists()


@settings(max_examples=150, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(specs(sound=True))
def test_every_spec_that_checks_compiles_and_builds_its_priors(source):
    try:
        spec = load_spec(source, columns=COLUMNS)
    except LawError:
        return
    model = compile_spec(spec, None)  # what `show` does; raises nothing for a checked spec
    assert set(model.sample_order()) == set(spec.parameters)  # its cycle guard never fires
    with numpyro.validation_enabled():  # numpyro checks arguments against arg_constraints
        for name, parameter in spec.parameters.items():
            if parameter.prior is not None and not model.priors[name].depends_on:
                model.priors[name].build({})


@pytest.mark.parametrize("family", sorted(DISTRIBUTIONS))
def test_a_hyperparameter_in_any_family_gets_a_default_prior_on_its_support(family):
    """`A ~ Exponential(mu)` with `mu` undeclared: mu gets a default that numpyro accepts for
    that argument (a KeyError here once crashed `show` and `fit` on a spec `check` passed)."""
    info = DISTRIBUTIONS[family]
    arguments = ", ".join(f"h{i}" if i == 0 else ("h_hi" if family == "Uniform" else "1")
                          for i, _ in enumerate(info.params))
    source = f"A ~ {family}({arguments})\nloss ~ A / N^0.3 + 1\n"
    spec = load_spec(source, columns=COLUMNS)
    model = compile_spec(spec, None)
    hyper = [name for name in ("h0", "h_hi") if name in spec.parameters]
    with numpyro.validation_enabled():
        for name in hyper:
            scales = {"y_ref:loss": 3.0, "y_sd:loss": 0.3}  # a table's median loss and spread
            value = model.priors[name].build(scales).sample(jax.random.PRNGKey(0), (200,))
            if info.params[0] in info.positive:
                assert float(value.min()) > 0, (family, name, model.priors[name].text)
