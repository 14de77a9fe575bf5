"""Name resolution, tied names, defaults and ordering of the checked spec; every shipped model
loads with and without its table; the `check` command."""
from pathlib import Path

import pytest

from infscale_dsl.cli import main
from infscale_dsl.model.data import prepare
from infscale_dsl.errors import LawError
from infscale_dsl.language import check, load_spec, parse
from infscale_dsl.language.ast import Binary, DataDecl, Name, Noise, Number
from infscale_dsl.tables import read_table

MODELS = Path(__file__).resolve().parents[1] / "models"
MODEL_TABLES = {  # model -> table in ../shared/data
    "chinchilla.law": "chinchilla_epoch.csv",
    "kaplan.law": "chinchilla_epoch.csv",
    "bian2025.law": "bian2025_models.csv",
    "bian2025_eta.law": "bian2025_models.csv",
    "chinchilla_tied.law": "bian2025_models.csv",
}


def test_the_one_line_spec():
    spec = load_spec("loss ~ A/N^a + B/D^b + E")
    assert list(spec.parameters) == ["A", "N", "a", "B", "D", "b", "E", "sigma_loss", "drift_loss"]
    assert set(spec.data) == {"loss"}
    assert spec.laws[0].noise == Noise("Normal", "log", default=True)  # the table decides (likelihood.py)


def test_columns_make_undeclared_names_data():
    spec = load_spec("loss ~ A/N^a + B/D^b + E", columns=["N", "D", "loss"])
    assert list(spec.parameters) == ["A", "a", "B", "b", "E", "sigma_loss", "drift_loss"]
    # N and D are power bases with parameter exponents, loss has log-scale noise: all positive
    assert spec.data == {name: DataDecl(name, name, "positive") for name in ("loss", "N", "D")}


def test_domains_are_inferred_only_where_positivity_is_needed():
    spec = load_spec("y ~ a + b*x^2 + c*log(z) + d*w\ny noise Normal on identity",
                     columns=["x", "y", "z", "w"])
    assert {n: d.domain for n, d in spec.data.items()} == {"y": "real", "x": "real", "z": "positive", "w": "real"}


def test_tied_names_are_one_parameter():
    spec = load_spec("loss ~ E + A/N^alpha + B/D^alpha", columns=["N", "D", "loss"])
    assert list(spec.parameters) == ["E", "A", "alpha", "B", "sigma_loss", "drift_loss"]


def test_priors_groups_and_hyperparameters():
    spec = load_spec("""
data family : category
E[family] ~ LogNormal(mu_E, tau_E)
tau_E ~ HalfNormal(0.5)
sigma_loss ~ HalfNormal(0.1)
loss ~ E + A/N^a
""", columns=["family", "N", "loss"])
    assert list(spec.parameters) == ["E", "mu_E", "tau_E", "A", "a", "sigma_loss", "drift_loss"]
    assert spec.parameters["E"].group == "family"
    assert spec.parameters["tau_E"].prior.distribution.name == "HalfNormal"
    assert spec.parameters["mu_E"].prior is None  # the compiler picks a default
    assert spec.parameters["sigma_loss"].prior is not None


def test_derived_variables_in_dependency_order_and_constants():
    spec = load_spec("""
S = R * 2
R = d_model / n_layers
eta = 1.25
two_eta = 2 * eta
loss ~ E * S^eta + two_eta
""")
    assert [d.name for d in spec.derived] == ["R", "S"]
    assert spec.constants == {"eta": 1.25, "two_eta": 2.5}
    assert set(spec.data) == {"d_model", "n_layers", "loss"}
    assert list(spec.parameters) == ["E", "sigma_loss", "drift_loss"]


def test_several_laws_and_noise_models():
    spec = load_spec("""
loss ~ E + A/N^a
latency ~ c0 + c1 * n_layers
loss noise StudentT(nu=5) on log
latency noise StudentT on identity
""", columns=["loss", "latency", "N", "n_layers"])
    assert [law.response for law in spec.laws] == ["loss", "latency"]
    assert spec.law_for("loss").noise == Noise("StudentT", "log", 5.0)
    assert spec.law_for("latency").noise == Noise("StudentT", "identity", 4.0)
    assert list(spec.parameters)[-4:] == ["sigma_loss", "sigma_latency", "drift_loss", "drift_latency"]
    assert spec.law_for("latency").sigma == "sigma_latency"


def test_a_prior_makes_a_near_column_name_a_parameter():
    spec = load_spec("n_layer ~ Normal(0, 1)\ny ~ n_layer * n_layers", columns=["n_layers", "y"])
    assert "n_layer" in spec.parameters and "n_layers" in spec.data


def test_check_takes_a_parsed_spec():
    spec = check(parse("loss ~ A/N^a", filename="f.law"), columns=["loss", "N"])
    assert spec.filename == "f.law"
    assert spec.laws[0].expr == Binary("/", Name("A"), Binary("^", Name("N"), Name("a")))


@pytest.mark.parametrize("model", sorted(p.name for p in MODELS.glob("*.law")))
def test_every_model_loads_without_a_table(model):
    spec = load_spec(MODELS / model)
    assert spec.filename.endswith(model) and spec.laws
    assert all(decl.span is not None for decl in spec.data.values())  # models declare their data
    assert load_spec(str(MODELS / model)) == spec  # a path given as a string is read too


@pytest.mark.parametrize("model, table", sorted(MODEL_TABLES.items()))
def test_every_model_prepares_its_reference_table(model, table, shared_data):
    frame = read_table(shared_data / table)
    spec = load_spec(MODELS / model, columns=frame.columns)
    prepared = prepare(spec, frame)
    assert prepared.rows["loss"].size == len(frame) and prepared.left_out["loss"] == 0


def test_bian2025_model_reads_the_paper_columns(shared_data):
    frame = read_table(shared_data / "bian2025_models.csv")
    spec = load_spec(MODELS / "bian2025.law", columns=frame.columns)
    assert spec.data["N"].column == "params_N" and spec.data["D"].column == "tokens_D"
    assert list(spec.parameters) == ["E", "A", "alpha", "B", "eps", "sigma_loss", "drift_loss"]
    prepared = prepare(spec, frame)
    assert prepared.values["R"] == pytest.approx(frame["aspect_ratio_R"].to_numpy(), rel=1e-4)


def test_check_command(shared_data, capsys):
    code = main(["check", str(MODELS / "bian2025.law"), str(shared_data / "bian2025_models.csv")])
    assert code == 0
    assert capsys.readouterr().out == (f"ok: {MODELS / 'bian2025.law'}: 1 law, 7 parameters; loss: 76 rows\n"
                                       "  parameters: E, A, alpha, B, eps, sigma_loss, drift_loss\n")


def test_check_command_counts_the_runs_of_a_curve_table(tmp_path, capsys):
    (tmp_path / "curves.law").write_text("curves by run\nloss ~ E + A/N^alpha + B/D^beta\n")
    table = MODELS.parent / "examples" / "data" / "cpu_small_runs_curves.parquet"
    assert main(["check", str(tmp_path / "curves.law"), str(table)]) == 0
    assert "1 law, 8 parameters; loss: 48 rows in 12 runs (curves by run)\n" in capsys.readouterr().out


def test_check_command_reports_bad_input(tmp_path, capsys):
    table = tmp_path / "t.csv"
    table.write_text("N,loss\n1,2\n")
    spec = tmp_path / "s.law"
    spec.write_text("loss ~ A/n^a\n")
    assert main(["check", str(spec), str(table)]) == 2
    assert "unknown name 'n'" in capsys.readouterr().err


def test_similar_names_that_are_all_used_are_separate_parameters():
    spec = load_spec("alpha_N ~ Normal(0.3, 0.1)\nloss ~ E + A/N^alpha_N + B/D^alpha_D", columns=["N", "D", "loss"])
    assert {"alpha_N", "alpha_D"} <= set(spec.parameters)


def test_a_missing_spec_file_is_reported_as_such(tmp_path):
    with pytest.raises(LawError, match="spec file not found"):
        load_spec(str(tmp_path / "nothere.law"))


def test_a_spec_that_is_not_utf8_names_the_byte_and_its_line(tmp_path):
    path = tmp_path / "latin1.law"
    path.write_bytes("alpha ~ Normal(0, 1)\nloss ~ A/N^alpha  # café\n".encode("latin-1"))
    with pytest.raises(LawError) as error:
        load_spec(path)
    (diagnostic,) = error.value.diagnostics
    assert (diagnostic.line, diagnostic.column) == (2, 24)
    assert "byte 44 of the file (0xe9)" in diagnostic.message and "UTF-8" in diagnostic.hint
    assert diagnostic.source_line.startswith("loss ~ A/N^alpha  # caf")


def test_constants_are_computed_and_prior_arguments_folded():
    spec = load_spec("eta = 1.25\nscale = 2 * eta\nalpha ~ HalfNormal(scale - 2)\nloss ~ A/N^alpha * eta")
    assert spec.constants == {"eta": 1.25, "scale": 2.5}
    assert spec.parameters["alpha"].prior.distribution.args == (Number(0.5),)


def test_a_utf8_byte_order_mark_is_allowed(tmp_path):
    path = tmp_path / "bom.law"
    path.write_bytes(b"\xef\xbb\xbfloss ~ A/N^a\n")
    assert load_spec(path).laws[0].response == "loss"


# --- learning curves: `curves by run` ------------------------------------------------------------

CURVE_COLUMNS = ["run", "N", "D", "loss", "family", "latency", "n_layers"]


def test_curves_by_adds_a_run_scale_per_law_and_keeps_the_run_column_out_of_the_data():
    spec = load_spec("curves by run\nloss ~ E + A/N^alpha + B/D^beta", columns=CURVE_COLUMNS)
    assert spec.curves.column == "run" and "run" not in spec.data
    assert list(spec.parameters)[-3:] == ["sigma_loss", "drift_loss", "tau_loss"]
    assert spec.laws[0].run_scale == "tau_loss"
    declared = load_spec("curves by run\ntau_loss ~ HalfNormal(0.05)\nloss ~ E + A/N^a", columns=CURVE_COLUMNS)
    assert declared.parameters["tau_loss"].prior.distribution.name == "HalfNormal"
    assert load_spec("loss ~ E + A/N^a", columns=CURVE_COLUMNS).curves is None


def test_response_curves_by_makes_only_that_laws_rows_curves():
    # a loss law on checkpoints and a latency law on rows that are not runs' checkpoints
    spec = load_spec("loss curves by run\nloss ~ E + A/N^a\nlatency ~ c0 + c1 * n_layers", columns=CURVE_COLUMNS)
    assert [law.response for law in spec.curve_laws] == ["loss"]
    assert "tau_loss" in spec.parameters and "tau_latency" not in spec.parameters
    assert spec.curves_text() == "loss curves by run"
    both = load_spec("loss curves by run\nlatency curves by run\nloss ~ E + A/N^a\nlatency ~ c0 + c1 * n_layers",
                     columns=CURVE_COLUMNS)
    assert [law.response for law in both.curve_laws] == ["loss", "latency"]
    every = load_spec("curves by run\nloss ~ E + A/N^a\nlatency ~ c0 + c1 * n_layers", columns=CURVE_COLUMNS)
    assert len(every.curve_laws) == 2 and every.curves_text() == "curves by run"


# (spec, [(line, column, message substring), ...]): every diagnostic of the file, in order
BAD_CURVES = [
    ("curves by rn\nloss ~ E + A/N^a", [(1, 11, "'rn' is not a column of the table")]),
    ("curves by run\ncurves by family\nloss ~ E + A/N^a", [(2, 1, "a second 'curves by' (first on line 1)")]),
    ("data run : positive\ncurves by run\nloss ~ E + A/N^a",
     [(1, 1, "'run' is declared positive data, but `curves by run` reads it as run ids")]),
    ("data run : category\ncurves by run\nloss ~ E + A/N^a",
     [(1, 1, "'run' is declared category data, but `curves by run`")]),
    ("curves by N\nloss ~ E + A/N^a", [(2, 14, "'N' is read as a number here, but `curves by N`")]),
    ("curves by D\nS = D * 2\nloss ~ E + A/N^a + B/S^b", [(2, 5, "'D' is read as a number here")]),
    ("curves by loss\nloss ~ E + A/N^a", [(2, 1, "'loss' is a response, but `curves by loss`")]),
    ("curves by family\ndata family : category\nE[family] ~ LogNormal(0, 1)\nloss ~ E + A/N^a",
     [(2, 1, "'family' is declared category data"), (3, 3, "'E' varies by 'family', the runs of `curves by family`")]),
    ("tau_loss ~ HalfNormal(0.05)\nloss ~ E + A/N^a", [(1, 1, "prior for 'tau_loss', which no law uses")]),
    ("los curves by run\nloss ~ E + A/N^a", [(1, 1, "'los curves by run', but 'los' has no law")]),
    ("curves by run\nloss curves by run\nloss ~ E + A/N^a",
     [(2, 1, "a second 'curves by' (the first applies to every law) (first on line 1)")]),
    ("loss curves by run\nloss curves by run\nloss ~ E + A/N^a", [(2, 1, "a second 'curves by' for 'loss'")]),
    ("loss curves by run\nlatency curves by family\nloss ~ E + A/N^a\nlatency ~ c0 + c1 * n_layers",
     [(2, 19, "runs named by 'family' here, by 'run' on line 1")]),
    ("loss curves by run\ntau_latency ~ HalfNormal(0.1)\nloss ~ E + A/N^a\nlatency ~ c0 + c1 * n_layers",
     [(2, 1, "prior for 'tau_latency', which no law uses")]),
]


@pytest.mark.parametrize("source, expected", BAD_CURVES)
def test_bad_curves_declarations_are_located(source, expected):
    with pytest.raises(LawError) as error:
        load_spec(source, columns=CURVE_COLUMNS)
    found = [(d.line, d.column, d.message) for d in error.value.diagnostics]
    assert len(found) == len(expected), found
    for (line, column, message), (want_line, want_column, want) in zip(found, expected):
        assert (line, column) == (want_line, want_column) and want in message, found


def test_a_prior_on_tau_without_curves_says_what_tau_is_for():
    with pytest.raises(LawError) as error:
        load_spec("tau_loss ~ HalfNormal(0.05)\nloss ~ E + A/N^a", columns=CURVE_COLUMNS)
    assert "declare the column of run ids first, e.g. `curves by run`" in error.value.diagnostics[0].hint


@pytest.mark.parametrize("runs, message", [
    (None, "column 'run' of `curves by run` is not in the table"),
    ([0.5, 0.5, 1.5, 1.5], "column 'run' holds fractional numbers, not run ids"),
    (["a", None, "b", "b"], "column 'run' has no run id on some rows"),
])
def test_bad_run_columns_name_the_column_and_rows(runs, message):
    import pandas as pd

    table = pd.DataFrame({"N": [1e6, 1e6, 1e7, 1e7], "D": [1e8, 2e8, 1e8, 2e8], "loss": [3.0, 2.9, 2.8, 2.7]})
    if runs is not None:
        table["run"] = runs
    spec = load_spec("curves by run\nloss ~ E + A/N^a", columns=["run", "N", "D", "loss"])
    with pytest.raises(LawError, match=message) as error:
        prepare(spec, table)
    assert error.value.diagnostics[0].table_column == "run"


def test_whole_numbers_are_run_ids():
    import pandas as pd

    table = pd.DataFrame({"run": [7.0, 7.0, 3.0, 3.0], "N": [1e6, 1e6, 1e7, 1e7], "D": [1e8, 2e8, 1e8, 2e8],
                          "loss": [3.0, 2.9, 2.8, 2.7]})
    spec = load_spec("curves by run\nloss ~ E + A/N^a", columns=table.columns)
    prepared = prepare(spec, table)
    assert prepared.levels["run"] == ("3", "7") and prepared.values["run"].tolist() == [1, 1, 0, 0]


@pytest.mark.parametrize("law", ["loss ~ N", "loss ~ 3.0", "R = N / D\nloss ~ 2 * R"])
def test_a_law_with_nothing_to_fit_is_a_spec_error(law):
    # with no parameter, NUTS has nothing to move and its gate reported divergences and ESS nan
    with pytest.raises(LawError, match="the law for 'loss' has no parameter to fit: it reads only data and constants"):
        check(parse(law + "\n", "nothing.law"), ["N", "D", "loss"])
