"""Valid .law sources parse to the expected syntax trees (spans are not compared)."""
import pytest

from infscale_dsl.language import parse
from infscale_dsl.language.ast import (
    Assign, Binary, Call, CurvesDecl, DataDecl, Distribution, LawDecl, Name, NoiseDecl, Number, PriorDecl,
    Unary,
)

N, D, A, B, E, a = (Name(x) for x in ("N", "D", "A", "B", "E", "a"))


def one(source):
    (statement,) = parse(source).statements
    return statement


@pytest.mark.parametrize("source, expected", [
    ("data N = params_N : positive", DataDecl("N", "params_N", "positive")),
    ("data family : category", DataDecl("family", "family", "category")),
    ("curves by run", CurvesDecl("run")),
    ("curves by model_name  # a comment", CurvesDecl("model_name")),
    ("R = d_model / n_layers", Assign("R", Binary("/", Name("d_model"), Name("n_layers")))),
    ("eta = 1.25", Assign("eta", Number(1.25))),
    ("alpha ~ Normal(0.5, 0.2) in [0, 2]",
     PriorDecl("alpha", Distribution("Normal", (Number(0.5), Number(0.2))), 0.0, 2.0)),
    ("alpha ~ Normal(0.5, 0.2) in [0, inf]",
     PriorDecl("alpha", Distribution("Normal", (Number(0.5), Number(0.2))), 0.0, float("inf"))),
    ("alpha ~ Normal(0.5, 0.2) in [0, ]",
     PriorDecl("alpha", Distribution("Normal", (Number(0.5), Number(0.2))), 0.0, None)),
    ("alpha ~ Normal(0.5, 0.2) in [-1.5, ]",
     PriorDecl("alpha", Distribution("Normal", (Number(0.5), Number(0.2))), -1.5, None)),
    ("eps ~ HalfNormal(scale=0.01)", PriorDecl("eps", Distribution("HalfNormal", (), (("scale", Number(0.01)),)))),
    ("E[family] ~ LogNormal(mu_E, tau_E)",
     PriorDecl("E", Distribution("LogNormal", (Name("mu_E"), Name("tau_E"))), group="family")),
    ("loss noise StudentT(nu=4) on log",
     NoiseDecl("loss", Distribution("StudentT", (), (("nu", Number(4.0)),)), "log")),
    ("loss noise Normal", NoiseDecl("loss", Distribution("Normal"), "log")),
    ("loss noise Normal on identity", NoiseDecl("loss", Distribution("Normal"), "identity")),
    ("loss ~ E + A/N^a",
     LawDecl("loss", Binary("+", E, Binary("/", A, Binary("^", N, a))))),
    ("y ~ 1e9 * x", LawDecl("y", Binary("*", Number(1e9), Name("x")))),
])
def test_statements(source, expected):
    assert one(source) == expected


@pytest.mark.parametrize("expression, expected", [
    ("-x^2", Unary("-", Binary("^", Name("x"), Number(2.0)))),  # ^ binds tighter than unary minus
    ("a^b^c", Binary("^", a, Binary("^", Name("b"), Name("c")))),  # right-associative
    ("N^-a", Binary("^", N, Unary("-", a))),
    ("A - B - E", Binary("-", Binary("-", A, B), E)),  # left-associative
    ("A / N * D", Binary("*", Binary("/", A, N), D)),
    ("A + B * E", Binary("+", A, Binary("*", B, E))),
    ("(A + B) * E", Binary("*", Binary("+", A, B), E)),
    ("log(N) + max(A, B)", Binary("+", Call("log", (N,)), Call("max", (A, B)))),
    ("((Nc/N)^(aN/aD) + Dc/D)^aD",
     Binary("^", Binary("+", Binary("^", Binary("/", Name("Nc"), N), Binary("/", Name("aN"), Name("aD"))),
                        Binary("/", Name("Dc"), D)), Name("aD"))),
])
def test_expression_precedence(expression, expected):
    assert one(f"y ~ {expression}").expr == expected


def test_layout_comments_and_newlines_inside_brackets():
    source = """
# a comment line

data N : positive   # trailing comment
loss ~ (E
        + A/N^a)    # a statement may continue inside brackets
alpha ~ Normal(0.5,
               0.2)"""  # no final newline
    statements = parse(source).statements
    assert [type(s).__name__ for s in statements] == ["DataDecl", "LawDecl", "PriorDecl"]
    assert statements[1].expr == Binary("+", E, Binary("/", A, Binary("^", N, a)))


def test_spans_point_at_the_source():
    law = parse("\n\nloss ~ A/N^alpha + E\n").statements[0]
    assert (law.span.line, law.span.column) == (3, 1)
    power = law.expr.left.right
    assert (power.right.span.line, power.right.span.column, power.right.span.end_column) == (3, 12, 17)


def test_curves_and_by_are_keywords_only_where_a_statement_starts():
    # `by`, and `curves` inside an expression, stay names, as `data` and `noise` do
    law = one("loss ~ curves + by")
    assert law.expr == Binary("+", Name("curves"), Name("by"))
    declaration = one("curves by by")
    assert declaration == CurvesDecl("by") and (declaration.span.column, declaration.span.end_column) == (1, 13)


@pytest.mark.parametrize("source, message", [
    ("curves run", "unexpected 'run'"),  # 'by' left out
    ("curves by", "unexpected end of line"),
    ("curves by run, seed", "unexpected ','"),
])
def test_malformed_curves_declarations(source, message):
    from infscale_dsl.errors import LawError

    with pytest.raises(LawError, match=message) as error:
        parse(source)
    assert error.value.diagnostics[0].line == 1


def test_the_spec_keeps_its_source_and_filename():
    spec = parse("loss ~ E\n", filename="x.law")
    assert spec.filename == "x.law" and spec.source == "loss ~ E\n"


def test_spans_run_from_the_first_token_to_the_last():
    prior, law = parse("alpha ~ Normal(0.5, -0.2) in [0, 2]\nloss ~ E + log(-N)\n").statements
    assert (prior.span.column, prior.span.end_column) == (1, 36)  # through the closing ']'
    assert (prior.distribution.span.column, prior.distribution.span.end_column) == (9, 26)
    assert (prior.distribution.args[1].span.column, prior.distribution.args[1].span.end_column) == (21, 25)
    call = law.expr.right
    assert (call.span.column, call.span.end_column) == (12, 19)  # log(-N), brackets included
    assert (call.args[0].span.column, call.args[0].span.end_column) == (16, 18)  # -N from its '-'


def test_parsing_from_several_threads_keeps_each_parse_apart():
    from concurrent.futures import ThreadPoolExecutor

    sources = [f"loss ~ A/N^a{i}\nx{i} = Normal(0, 1)\n" for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(_parse_or_messages, sources))
    for i, messages in enumerate(outcomes):  # each spec's own problem, and only it
        assert messages == [f"'=' gives 'x{i}' a distribution"]


def _parse_or_messages(source):
    from infscale_dsl.errors import LawError

    try:
        return parse(source)
    except LawError as error:
        return [d.message for d in error.diagnostics]
