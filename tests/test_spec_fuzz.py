"""Fuzzed specs fail only with SpecError (never a Lark or Python error): random edits of the
shipped specs, and grammar-aware specs (spec_strategies.py) with any names, functions, arities,
distributions, numbers, deep nesting and long laws. Expressions survive printing and parsing.
benchmarks/spec_fuzz.py runs the same generator for 1e5 cases."""
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st
from spec_strategies import expressions, specs

from infscale_dsl.errors import SpecError
from infscale_dsl.language import load_spec, parse
from infscale_dsl.language.evaluate import unparse

MODELS = sorted((Path(__file__).resolve().parents[1] / "models").glob("*.law"))
SOURCES = [path.read_text() for path in MODELS]
COLUMNS = ["params_N", "tokens_D", "N", "D", "d_model", "n_layers", "loss", "tpot_ms", "family"]
CHARACTERS = "()[]^*+-/~=:,.#\n 0123456789eEaNxinf_"
TOKENS = ["(", ")", "[", "]", "^", "**", "~", "=", ":", ",", "in", "data", "noise", "on", "log(", "Normal(",
          "StudentT(nu=", "inf", "1e9", "-", "\n", "#", "E[family]", "x", "alpha"]


@st.composite
def edited_spec(draw):
    source = draw(st.sampled_from(SOURCES))
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(source)))
        kind = draw(st.sampled_from(["delete", "insert", "replace", "insert token", "delete token"]))
        if kind == "delete":
            source = source[:position] + source[position + 1:]
        elif kind == "insert":
            source = source[:position] + draw(st.sampled_from(CHARACTERS)) + source[position:]
        elif kind == "replace":
            source = source[:position] + draw(st.sampled_from(CHARACTERS)) + source[position + 1:]
        elif kind == "insert token":
            source = source[:position] + draw(st.sampled_from(TOKENS)) + source[position:]
        else:
            tokens = list(re.finditer(r"\w+|[^\w\s]", source))
            if tokens:
                token = draw(st.sampled_from(tokens))
                source = source[:token.start()] + source[token.end():]
    return source


@settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited_spec(), st.booleans())
def test_edits_raise_only_spec_errors(source, with_columns):
    try:
        load_spec(source, columns=COLUMNS if with_columns else None)
    except SpecError as error:
        assert error.diagnostics and str(error)


@settings(max_examples=500, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(specs(), st.booleans())
def test_generated_specs_raise_only_spec_errors(source, with_columns):
    try:
        load_spec(source, columns=COLUMNS if with_columns else None)
    except SpecError as error:
        assert error.diagnostics and all(d.line and d.hint for d in error.diagnostics), str(error)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(expressions)
def test_unparse_then_parse_gives_the_expression_back(expr):
    (law,) = parse(f"y ~ {unparse(expr)}").statements
    assert law.expr == expr
