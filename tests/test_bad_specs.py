"""Bad specs: each gives a SpecError whose diagnostics point at the right place and say what is
wrong. Checked against the columns of a small table, as the `check` command does."""
import pytest

from infscale_dsl.errors import SpecError
from infscale_dsl.language import load_spec

COLUMNS = ["N", "D", "loss", "n_layers", "d_model", "family"]

# (spec, [(line, column, message substring), ...]): every diagnostic of the file, in order
BAD_SPECS = [
    # syntax
    ("loss ~ A/N**a + E", [(1, 11, "'**' is not an operator")]),
    ("loss ~ A/N^a + B D^b", [(1, 18, "missing operator before 'D'")]),
    ("loss ~ 2 N", [(1, 10, "missing operator before 'N'")]),
    ("loss ~ (A/N^a + E", [(1, 8, "unclosed '('")]),
    ("loss ~ (A/N^a + E\nalpha ~ Normal(0, 1)", [(1, 8, "unclosed '('")]),
    ("alpha ~ Normal(0.5, 0.2 in [0, 2]\nloss ~ A/N^alpha", [(1, 15, "unclosed '('")]),
    ("loss ~ A/N^a + E)", [(1, 17, "unmatched ')'")]),
    ("loss ~ A/N^a $ E", [(1, 14, "unexpected character '$'")]),
    ("loss ~ A/N^a; E", [(1, 13, "unexpected character ';'")]),
    ("data N ~ params_N : positive", [(1, 8, "'~' where '=' was expected")]),
    ("E[family] = LogNormal(0, 1)", [(1, 11, "'=' where '~' was expected")]),
    ("loss ~ A/N^\n", [(1, 12, "incomplete expression")]),
    ("alpha ~ Normal(0, 1) in [0 2]\nloss ~ A/N^alpha", [(1, 28, "unexpected '2'")]),
    ("loss ~ A/N^a in [0, 1]", [(1, 1, "bounds 'in [...]' on the law")]),
    ("alpha ~ Normal(0, 1) in [low, 1]\nloss ~ A/N^alpha", [(1, 26, "bound 'low' is not a number")]),
    ("loss ~ A/N^a + Normal(0, 1)", [(1, 16, "distribution Normal(...) inside an expression")]),
    ("alpha = Normal(0, 1)\nloss ~ A/N^alpha", [(1, 1, "'=' gives 'alpha' a distribution")]),
    ("loss ~ log(N, base=10)", [(1, 15, "takes no keyword arguments")]),
    # names
    ("loss ~ A/n_layer^a + E", [(1, 10, "unknown name 'n_layer'")]),
    ("loss ~ A/n^a + E", [(1, 10, "unknown name 'n'")]),
    ("R = d_modl / n_layers\nloss ~ E * R^a", [(1, 5, "'d_modl' is not a column")]),
    ("latency ~ c0 + c1*n_layers", [(1, 1, "'latency' is not a column")]),
    ("data N = params_N : positive\nloss ~ A/N^a", [(1, 10, "'params_N' is not a column")]),
    # functions and distributions
    ("loss ~ lg(N) + E", [(1, 8, "unknown function 'lg'")]),
    ("loss ~ Exp(N) + E", [(1, 8, "unknown function 'Exp'")]),
    ("loss ~ log(N, D)", [(1, 8, "log() takes 1 argument(s), got 2")]),
    ("loss ~ E + max(N)", [(1, 12, "max() takes 2 argument(s), got 1")]),
    ("alpha ~ Normall(0, 1)\nloss ~ A/N^alpha", [(1, 9, "unknown distribution 'Normall'")]),
    ("alpha ~ Normal(0, 1, 2)\nloss ~ A/N^alpha", [(1, 9, "Normal takes 2 argument(s), got 3")]),
    ("alpha ~ Normal(loc=0)\nloss ~ A/N^alpha", [(1, 9, "missing argument(s) scale")]),
    ("alpha ~ Normal(0, 1, foo=3)\nloss ~ A/N^alpha", [(1, 9, "Normal has no argument 'foo'")]),
    ("alpha ~ Normal(0, loc=1)\nloss ~ A/N^alpha", [(1, 9, "argument 'loc' given twice"), (1, 9, "missing argument(s) scale")]),
    ("alpha ~ Normal(N, 1)\nloss ~ A/N^alpha", [(1, 16, "prior argument 'N' is data")]),
    # priors
    ("gamma ~ Normal(0, 1)\nloss ~ A/N^alpha", [(1, 1, "prior for 'gamma', which no law uses")]),
    ("alpha ~ HalfNormal(1) in [0, 2]\nloss ~ A/N^alpha", [(1, 1, "HalfNormal cannot be bounded")]),
    ("alpha ~ Normal(0, 1) in [2, 1]\nloss ~ A/N^alpha", [(1, 1, "empty bounds [2, 1]")]),
    ("a ~ Normal(b, 1)\nb ~ Normal(a, 1)\nloss ~ A/N^a", [(1, 1, "cycle among priors: a -> b -> a")]),
    ("E[size] ~ LogNormal(0, 1)\nloss ~ E + A/N^a", [(1, 3, "'E' varies by 'size', which is not a category")]),
    ("E[N] ~ LogNormal(0, 1)\nloss ~ E + A/N^a", [(1, 3, "'E' varies by 'N', which is not a category")]),
    ("loss[family] ~ E + A/N^a", [(1, 6, "the law for 'loss' cannot vary by 'family'")]),
    # declarations
    ("R = S + 1\nS = R * d_model\nloss ~ A/N^R", [(1, 1, "cycle among derived variables: R -> S -> R")]),
    ("data N : positive\ndata N : real\nloss ~ A/N^a", [(2, 1, "'N' is declared twice (first on line 1)")]),
    ("loss ~ A/N^a + E\nloss ~ B/N^a", [(2, 1, "a second law for 'loss'")]),
    ("R = d_model / alpha\nalpha ~ Normal(0, 1)\nloss ~ A/N^alpha * R",
     [(1, 15, "derived variable 'R' reads parameter 'alpha'")]),
    ("data N : positiv\nloss ~ A/N^a", [(1, 10, "unknown domain 'positiv'")]),
    ("data family : category\nloss ~ A/N^a + family", [(2, 16, "category column 'family' used in an expression")]),
    ("data loss : category\nloss ~ A/N^a", [(2, 1, "response 'loss' is a category column")]),
    ("R = d_model\nR ~ A/N^a", [(2, 1, "'R' is a derived variable, not a response column")]),
    ("loss ~ A * loss", [(1, 1, "uses 'loss' on its right side")]),
    # noise
    ("D noise StudentT(nu=4)\nloss ~ A/N^a", [(1, 1, "noise for 'D', which has no law")]),
    ("loss ~ A/N^a\nloss noise Foo", [(2, 12, "unknown noise family 'Foo'")]),
    ("loss ~ A/N^a\nloss noise StudentT(nu=-1) on sqrt",
     [(2, 12, "StudentT noise needs a positive number nu"), (2, 31, "unknown noise scale 'sqrt'")]),
    ("loss ~ A/N^a\nloss noise Normal(1)", [(2, 12, "Normal noise takes no arguments")]),
    # constants: names and arities are checked before anything is computed, and only the
    # language's own functions are computed (numpy's `info` is not reachable)
    ("x = 1/0\nloss ~ A/N^x", [(1, 5, "constant 'x' cannot be computed: division by zero")]),
    ("x = foo(2)\nloss ~ A/N^x", [(1, 5, "unknown function 'foo'")]),
    ("x = info(1)\nloss ~ A/N^x", [(1, 5, "unknown function 'info'")]),
    ("x = log()\nloss ~ A/N^x", [(1, 5, "log() takes 1 argument(s), got 0")]),
    ("x = exp(1, 2)\nloss ~ A/N^x", [(1, 5, "exp() takes 1 argument(s), got 2")]),
    ("S = min()\nloss ~ A/N^S", [(1, 5, "min() takes 2 argument(s), got 0")]),
    ("x = 2 * log(-1)\nloss ~ A/N^x", [(1, 9, "constant 'x' cannot be computed: undefined result")]),
    ("x = 10^400\nloss ~ A/N^x", [(1, 5, "constant 'x' cannot be computed: overflow")]),
    ("x = 2\ny = 1 / (x - 2)\nloss ~ A/N^y", [(2, 5, "constant 'y' cannot be computed: division by zero")]),
    ("loss ~ A/N^(1/0)", [(1, 13, "constant arithmetic cannot be computed: division by zero")]),
    ("x = 1e999\nloss ~ A/N^x", [(1, 5, "the number 1e999 is too large")]),
    ("alpha ~ Normal(0, 1) in [0, 1e999]\nloss ~ A/N^alpha", [(1, 29, "the number 1e999 is too large")]),
    # size: the parser bounds nesting, so no check can run out of stack
    ("loss ~ " + " + ".join(["A"] * 492), [(1, 8, "expression nested 492 levels deep (the limit is 200)")]),
    ("loss ~ E + " + "-" * 300 + "A", [(1, 8, "expression nested 302 levels deep")]),
    # prior arguments against the distribution's constraints
    ("alpha ~ HalfNormal(-1)\nloss ~ A/N^alpha", [(1, 20, "HalfNormal argument scale = -1 must be positive")]),
    ("alpha ~ Uniform(1, 0)\nloss ~ A/N^alpha", [(1, 20, "Uniform(low=1, high=0) is empty")]),
    ("alpha ~ StudentT(0, 0, 1)\nloss ~ A/N^alpha", [(1, 18, "StudentT argument df = 0 must be positive")]),
    ("eta = 2\nalpha ~ Gamma(concentration=1, rate=1 - eta)\nloss ~ A/N^alpha",
     [(2, 37, "Gamma argument rate = -1 must be positive")]),
    # what the compiler needs, checked here with a caret
    ("data family : category\nE[family] ~ Gamma(2, 1)\nloss ~ E + A/N^a",
     [(2, 13, "grouped parameter 'E' needs a Normal or LogNormal population prior without bounds")]),
    ("data family : category\nE[family] ~ Normal(0, 1) in [0, 5]\nloss ~ E + A/N^a",
     [(2, 13, "grouped parameter 'E' needs a Normal or LogNormal")]),
    # a prior would silently turn the column N into a parameter
    ("N ~ LogNormal(0, 1)\nloss ~ A/N^a", [(1, 1, "'N' has a prior but is also a column of the table")]),
    # several problems in one file are reported together, in file order
    ("alpha ~ Normal(0, 1, 2)\ngamma ~ HalfNormal(1) in [0, 1]\nloss ~ A/n_layr^alpha + lg(E)",
     [(1, 9, "Normal takes 2"), (2, 1, "prior for 'gamma'"), (2, 1, "HalfNormal cannot be bounded"),
      (3, 10, "unknown name 'n_layr'"), (3, 25, "unknown function 'lg'")]),
]


@pytest.mark.parametrize("source, expected", BAD_SPECS, ids=[s.splitlines()[-1][:40] for s, _ in BAD_SPECS])
def test_bad_spec(source, expected):
    with pytest.raises(SpecError) as error:
        load_spec(source, columns=COLUMNS)
    found = [(d.line, d.column, d.message) for d in error.value.diagnostics]
    assert len(found) == len(expected), found
    for (line, column, message), (want_line, want_column, want_text) in zip(found, expected):
        assert (line, column) == (want_line, want_column) and want_text in message, found


def test_every_diagnostic_has_a_hint_and_a_caret():
    for source, _ in BAD_SPECS:
        with pytest.raises(SpecError) as error:
            load_spec(source, columns=COLUMNS)
        for diagnostic in error.value.diagnostics:
            assert diagnostic.hint and diagnostic.source_line is not None, diagnostic


def test_rendered_error_shows_file_line_caret_and_hint():
    with pytest.raises(SpecError) as error:
        load_spec("loss ~ A/N^alhpa + E\nalpha ~ Normal(0.5, 0.2)", columns=["N", "loss"])
    assert str(error.value).splitlines()[:4] == [
        "<spec>:1:12: error: unknown name 'alhpa'",
        "    loss ~ A/N^alhpa + E",
        "               ^~~~~",
        "    hint: did you mean 'alpha'? (give it a prior to make it a parameter)",
    ]


def test_typo_hint_suggests_the_column():
    with pytest.raises(SpecError) as error:
        load_spec("y ~ a * n_layer", columns=["n_layers", "y"])
    assert error.value.diagnostics[0].hint == "did you mean 'n_layers'? (give it a prior to make it a parameter)"


def test_a_misspelt_group_column_gets_the_column_in_its_hint():
    with pytest.raises(SpecError) as error:
        load_spec("E[nlayers] ~ LogNormal(0, 1)\nloss ~ E + A/N^a", columns=["N", "n_layers", "loss"])
    assert error.value.diagnostics[0].hint == "did you mean 'n_layers'? then declare it: data n_layers : category"
    with pytest.raises(SpecError) as error:  # a column, not declared as a category
        load_spec("E[family] ~ LogNormal(0, 1)\nloss ~ E + A/N^a", columns=["N", "family", "loss"])
    assert error.value.diagnostics[0].hint == "declare it: data family : category"


def test_a_long_line_is_shown_around_the_caret():
    with pytest.raises(SpecError) as error:
        load_spec("loss ~ " + " + ".join(["A"] * 80) + " + log(-1) + " + " + ".join(["B"] * 80))
    _, line, caret, _ = str(error.value).splitlines()
    assert len(line) < 120 and line.strip().startswith("...") and line.endswith("...")
    assert line[caret.index("^"):].startswith("log(-1)") and caret.strip() == "^~~~~~~"


# issue 11's bad specs through the CLI: exit 2, a located diagnostic, nothing on stdout (numpy's
# `info` would print its help there), for `check` and for `show`
ISSUE_11 = [
    ("x = 1/0\nloss ~ A/N^x", 1, 5), ("x = foo(2)\nloss ~ A/N^x", 1, 5), ("x = log()\nloss ~ A/N^x", 1, 5),
    ("x = exp(1, 2)\nloss ~ A/N^x", 1, 5), ("S = min()\nloss ~ A/N^S", 1, 5), ("x = info(1)\nloss ~ A/N^x", 1, 5),
    ("loss ~ " + " + ".join(["A"] * 492), 1, 8), ("a ~ HalfNormal(-1)\nloss ~ A/N^a", 1, 16),
    ("a ~ Uniform(1, 0)\nloss ~ A/N^a", 1, 16), ("N ~ LogNormal(0, 1)\nloss ~ A/N^a", 1, 1),
    ("loss ~ A/N^a  # caf\xe9".encode("latin-1"), 1, 20),
]


@pytest.mark.parametrize("source, line, column", ISSUE_11, ids=range(len(ISSUE_11)))
def test_cli_reports_bad_specs_with_exit_code_2(source, line, column, tmp_path, capsys):
    from infscale_dsl.cli import main

    spec, table = tmp_path / "bad.law", tmp_path / "t.csv"
    spec.write_bytes(source if isinstance(source, bytes) else source.encode())
    table.write_text("N,loss\n1e8,3.1\n2e8,3.0\n")
    for command in (["check", str(spec), str(table)], ["show", str(spec), str(table)]):
        assert main(command) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.startswith(f"{spec}:{line}:{column}: error: "), err
