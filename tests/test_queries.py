"""The questions about a spec (CheckedSpec's queries) and the helpers that several modules share:
each answered in one place, so these tests pin the one answer every user gets."""
import numpy as np
import pandas as pd

from infscale_dsl.language import load_spec
from infscale_dsl.report.law_function import LawFunction, variable_values

SPEC = "R = d_model / n_layers\nloss ~ (E + A/N^a + B/D^a) * (1 + eps * R^a)"
COLUMNS = ["N", "D", "d_model", "n_layers", "loss"]
TABLE = pd.DataFrame({"N": [1e7, 1e8], "D": [1e9, 1e10], "d_model": [256.0, 512.0],
                      "n_layers": [4.0, 16.0], "loss": [3.1, 2.7]})


def spec():
    return load_spec(SPEC, columns=COLUMNS)


def test_a_law_reads_the_data_behind_its_derived_variables():
    checked = spec()
    law = checked.laws[0]
    assert checked.law_data(law) == ["N", "D", "d_model", "n_layers", "R"]  # R after what it reads
    assert checked.law_inputs(law) == ("N", "D", "R")  # what the law's expression names itself
    assert set(checked.reads(law.expr)) == {"E", "A", "N", "a", "B", "D", "eps", "R", "d_model", "n_layers"}


def test_a_law_uses_its_parameters_then_its_noise_scale():
    checked = spec()
    assert checked.law_parameters(checked.laws[0]) == ["E", "A", "a", "B", "eps", "sigma_loss"]


def test_a_law_uses_the_parameters_of_its_priors():
    checked = load_spec("data family : category\nE[family] ~ LogNormal(mu, tau)\nloss ~ E + A/N^a",
                        columns=["N", "loss", "family"])
    law = checked.laws[0]
    assert checked.law_parameters(law) == ["E", "mu", "tau", "A", "a", "sigma_loss"]
    assert checked.law_data(law) == ["N", "family"]  # the group of E too


def test_derived_variables_by_name_and_what_reads_only_data():
    checked = spec()
    assert list(checked.derived_by_name) == ["R"]
    assert checked.reads_data_only(checked.derived_by_name["R"].expr)
    assert not checked.reads_data_only(checked.laws[0].expr)  # it reads parameters


def test_derived_variables_evaluate_on_a_small_table():
    checked = spec()
    values = {name: TABLE[name].to_numpy() for name in ("d_model", "n_layers")}
    np.testing.assert_allclose(checked.derived_values(values, np)["R"], [64.0, 32.0])
    assert checked.derived_values({"d_model": values["d_model"]}, np) == {}  # n_layers missing: left out
    np.testing.assert_allclose(variable_values(checked, TABLE)["R"], [64.0, 32.0])


def test_the_law_function_evaluates_through_the_derived_variables():
    checked = spec()
    draws = {"E": [1.0], "A": [1e3], "B": [1e3], "a": [0.3], "eps": [0.01]}
    law = LawFunction(checked, draws, "loss")
    assert law.data_names == ["d_model", "n_layers", "N", "D"]
    n, d, r = TABLE["N"].to_numpy(), TABLE["D"].to_numpy(), np.array([64.0, 32.0])
    expected = (1 + 1e3 / n ** 0.3 + 1e3 / d ** 0.3) * (1 + 0.01 * r ** 0.3)
    np.testing.assert_allclose(law({name: TABLE[name].to_numpy() for name in law.data_names})[0], expected)
