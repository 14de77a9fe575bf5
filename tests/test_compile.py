"""What the compiler reads from a law: roles and default priors (spec errors are check's alone,
see test_check_agreement.py)."""
import numpy as np
import pandas as pd
import pytest

from infscale_dsl.cli import main
from infscale_dsl.model.compile import compile_spec
from infscale_dsl.model.data import prepare
from infscale_dsl.language import load_spec

SEED_LAW = "R = d_model / n_layers\nloss ~ (E + A/N^alpha + B/D^alpha) * (1 + eps * R^alpha)\n"
COLUMNS = ["N", "D", "d_model", "n_layers", "loss", "family"]


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"N": 10 ** rng.uniform(7, 9, 30), "D": 10 ** rng.uniform(9, 11, 30),
                         "d_model": 256.0, "n_layers": 8.0, "loss": rng.uniform(2.5, 3.5, 30),
                         "family": ["a", "b", "c"] * 10})


def test_roles_of_the_seed_law(table):
    spec = load_spec(SEED_LAW, columns=COLUMNS)
    compiled = compile_spec(spec, prepare(spec, table))
    assert compiled.roles.role == {"E": "offset", "A": "coefficient", "alpha": "exponent",
                                   "B": "coefficient", "eps": "coefficient", "sigma_loss": "noise",
                                   "drift_loss": "drift"}
    # each coefficient is centred at the mean log of its base over the fitted rows
    assert compiled.log_reference["N"] == pytest.approx(np.log(table.N).mean())
    assert compiled.log_reference["R"] == pytest.approx(np.log(32.0))
    # default priors read the response's scale: the offset's Gamma(2, rate) has its median as mean
    assert compiled.priors["E"].text == f"Gamma(2, {2 / table.loss.median():.4g})"
    # a term added to a number is a correction to it: median 5 % of the number (here 1)
    assert compiled.priors["eps"].text == f"Normal({np.log(0.05):.6g}, 2)"
    assert compiled.priors["eps"].on.startswith("log(eps*R^alpha")


def test_a_coefficient_used_twice_is_not_reparametrised():
    spec = load_spec("loss ~ A/N^a + A/D^a + E", columns=COLUMNS)
    compiled = compile_spec(spec, None)
    assert compiled.roles.role["A"] == "free" and compiled.roles.terms == ()


def test_show_without_a_table_prints_symbolic_scales(tmp_path, capsys):
    (tmp_path / "law.law").write_text("data N : positive\ndata loss : positive\nloss ~ A/N^a + E\n")
    assert main(["show", str(tmp_path / "law.law")]) == 0
    out = capsys.readouterr().out
    assert "Normal(log(y_ref), 3)" in out and "Gamma(2, 2/y_ref)" in out


def test_a_factor_of_a_power_of_a_non_data_base_is_a_positive_scale():
    # the data-constrained law (Muennighoff et al. 2023): B multiplies a power of an expression
    source = ("loss ~ E + A/N^alpha + B / (U + U * RD * (1 - exp((1 - D / U) / RD)))^beta\n")
    spec = load_spec(source, columns=["N", "D", "U", "loss"])
    compiled = compile_spec(spec, None)
    assert compiled.roles.role["B"] == "scale" and compiled.roles.role["RD"] == "free"
    assert compiled.roles.role["A"] == "coefficient"
    assert compiled.priors["B"].text == "LogNormal(log(y_ref), 5)"


@pytest.mark.parametrize("rows, family", [(49, "Normal"), (50, "StudentT")])
def test_a_law_without_declared_noise_gets_studentt_from_ten_rows_per_parameter(rows, family, capsys):
    # the seed law has 5 parameters (E, A, alpha, B, eps): StudentT(nu=4) from 50 fitted rows
    rng = np.random.default_rng(1)
    many = pd.DataFrame({"N": 10 ** rng.uniform(7, 9, rows), "D": 10 ** rng.uniform(9, 11, rows),
                         "d_model": 256.0, "n_layers": 8.0, "loss": rng.uniform(2.5, 3.5, rows)})
    spec = load_spec(SEED_LAW, columns=COLUMNS)
    compiled = compile_spec(spec, prepare(spec, many))
    assert compiled.spec.laws[0].noise.family == family
    assert compiled.spec.laws[0].noise.nu == (4.0 if family == "StudentT" else None)
    assert f"noise {family}" in compiled.describe()
    assert f"(default: {rows} rows for 5 parameters;" in compiled.describe()
    # sigma is integrated out under the default Normal only
    assert compiled.collapsed == (("sigma_loss",) if family == "Normal" else ())
    # declared noise is kept whatever the table
    declared = load_spec(SEED_LAW + "loss noise Normal on log\n", columns=COLUMNS)
    kept = compile_spec(declared, prepare(declared, many))
    assert kept.spec.laws[0].noise.family == "Normal" and "noise Normal on log (declared)" in kept.describe()


def test_show_without_a_table_says_the_table_decides_the_noise(tmp_path, capsys):
    (tmp_path / "law.law").write_text("data N : positive\ndata loss : positive\nloss ~ A/N^a + E\n")
    assert main(["show", str(tmp_path / "law.law")]) == 0
    out = capsys.readouterr().out
    assert "noise Normal on log (default without a table: StudentT(nu=4) on log with 10 or more" in out


@pytest.mark.parametrize("noise", ["", "loss noise StudentT(nu=4) on log\n", "loss noise Normal on identity\n"])
def test_padding_rows_add_nothing_to_the_density(table, noise):
    """A law's rows are padded to compile.bucket_size so nearby table sizes share compiled
    programs: on 9 rows (padded to 10) the model's log density, with sigma integrated out or
    sampled, and the point fit's residuals, equal those of the 9 rows alone."""
    import jax
    from numpyro import handlers
    from numpyro.infer.util import log_density

    from infscale_dsl.model.compile import bucket_size

    assert [bucket_size(n) for n in (1, 8, 9, 12, 17, 240, 1000)] == [8, 8, 10, 12, 20, 256, 1024]
    assert all(n <= bucket_size(n) <= max(8, 1.25 * n) for n in range(1, 3000))
    spec = load_spec(SEED_LAW + noise, columns=COLUMNS)
    data = prepare(spec, table.iloc[:9])
    compiled = compile_spec(spec, data)
    with jax.enable_x64(True):  # as fit.py builds them
        padded = compiled.inputs(data)
    assert padded["laws"]["loss"]["N"].shape == (10,) and int(padded["masks"]["loss"].sum()) == 9
    alone = jax.tree.map(lambda x: x, padded)
    alone["laws"]["loss"] = {n: v[:9] for n, v in padded["laws"]["loss"].items()}
    alone["masks"]["loss"] = padded["masks"]["loss"][:9]
    collapse = not noise  # the default here (Normal on log, few rows) integrates sigma out
    assert compiled.collapsed == (("sigma_loss",) if collapse else ())
    model = compiled.model(collapse=collapse, start_mode=True)  # proper priors: a draw to score
    with jax.enable_x64(True):
        trace = handlers.trace(handlers.seed(model, 0)).get_trace(padded)
        params = {name: site["value"] for name, site in trace.items()
                  if site["type"] == "sample" and not site["is_observed"]}
        density = [float(log_density(model, (inputs,), {}, params)[0]) for inputs in (padded, alone)]
    np.testing.assert_allclose(density[0], density[1], rtol=1e-12)
    assert np.isfinite(density[0])
    np.testing.assert_array_equal(compiled.fitted_rows(padded, "loss")["loss"], table["loss"].to_numpy()[:9])


def test_prior_draws_of_a_grouped_parameter_read_each_draw_of_its_hyperparameters():
    """posterior.nc's prior group (draw_prior, in NumPy): E[dataset] ~ LogNormal(mu_E, tau_E)
    gets one draw per level and prior draw, each from that draw's mu_E and tau_E."""
    from scipy import stats

    from infscale_dsl.posterior.result import draw_prior

    spec = load_spec("models/chinchilla_grouped.law")
    rng = np.random.default_rng(0)
    runs = pd.DataFrame({"N": 10 ** rng.uniform(7, 9, 30), "D": 10 ** rng.uniform(9, 11, 30),
                         "dataset": ["web", "code", "books"] * 10, "loss": rng.uniform(2.5, 3.5, 30)})
    data = prepare(spec, runs)
    compiled = compile_spec(spec, data)
    draws = draw_prior(compiled, compiled.inputs(data)["scales"], np.random.default_rng(1), 4000)
    assert draws["E"].shape == (4000, 3) and draws["mu_E"].shape == (4000,)
    z = (np.log(draws["E"]) - draws["mu_E"][:, None]) / draws["tau_E"][:, None]  # standard normal
    assert stats.kstest(z.ravel(), "norm").pvalue > 0.01
    assert abs(np.corrcoef(z[:, 0], draws["mu_E"])[0, 1]) < 0.05  # the levels are drawn apart
    assert np.median(draws["mu_E"]) == pytest.approx(0.6, abs=0.02)  # mu_E ~ Normal(0.6, 0.3)
