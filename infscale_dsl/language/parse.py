"""Parse .law source into the syntax tree of ast.py, with syntax errors a person can act on.

Lark (LALR) reads the grammar in grammars/law.lark. Two things Lark does not do for us:
- newlines end statements but not inside brackets: `_BracketNewlines` drops them there;
- its errors name grammar terminals: `_syntax_error` turns them into file:line:col messages with
  a hint ("write powers as N^alpha", "unclosed '('", "missing operator", ...).
Nodes are built while Lark's LALR parser reduces, so no recursion is involved; an expression
deeper than MAX_DEPTH is an error here, so the recursive code downstream (evaluate, unparse,
==) never meets one.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..errors import Diagnostic, SpecError
from .ast import (
    Assign, Binary, Call, CurvesDecl, DataDecl, Distribution, Expr, LawDecl, Name, NoiseDecl, Number,
    PriorDecl, Span, Spec, Unary,
)
from .distributions import DISTRIBUTIONS
from .evaluate import FUNCTIONS, depth

# Levels of nesting an expression may have (a sum of n terms has n): far above any real law,
# well below Python's recursion limit.
MAX_DEPTH = 200

GRAMMAR_NAME = "law.lark"
# How each grammar terminal reads in an error message.
TERMINAL_WORDS = {
    "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "CIRCUMFLEX": "'^'",
    "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','",
    "EQUAL": "'='", "TILDE": "'~'", "COLON": "':'", "DATA": "'data'", "NOISE": "'noise'",
    "CURVES": "'curves'", "BY": "'by'",
    "ON": "'on'", "IN": "'in'", "NAME": "a name", "NUMBER": "a number", "_NL": "end of line",
    "$END": "end of file",
}
OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "CIRCUMFLEX"}


def grammar_path() -> Path:
    """The grammar inside an installed wheel, else the repository's grammars/ folder."""
    package_dir = Path(__file__).resolve().parents[1]
    installed = package_dir / "grammars" / GRAMMAR_NAME
    return installed if installed.is_file() else package_dir.parent / "grammars" / GRAMMAR_NAME


class _BracketNewlines:
    """Lark post-lexer: inside ( ) or [ ] a newline continues the statement instead of ending it."""

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        for token in stream:
            if token.type in ("LPAR", "LSQB"):
                depth += 1
            elif token.type in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            elif token.type == "_NL" and depth > 0:
                continue
            yield token


@lru_cache(maxsize=1)
def law_parser() -> Lark:
    """The Lark parser, built once per process; it returns ast statements, not a tree. Lark
    keeps the analysed grammar in the temporary folder, keyed by the grammar's hash and its
    options, so a new process loads it instead of building the tables again."""
    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        keep_all_tokens=True,
        transformer=_SpecBuilder(),
        postlex=_BracketNewlines(),
        cache=True,
    )


def parse(source: str, filename: str = "<spec>") -> Spec:
    """The statements of a .law file; raises SpecError on a syntax error (or a misplaced form)."""
    text = source if source.endswith("\n") else source + "\n"
    parser = law_parser()
    problems = parser.options.transformer.begin(text, filename)
    try:
        statements = parser.parse(text)
    except UnexpectedInput as error:
        raise SpecError(_syntax_error(error, text, filename)) from None
    if problems:
        raise SpecError(problems)
    return Spec(statements=tuple(statements), source=source, filename=filename)


def _expressions(statement) -> tuple[Expr, ...]:
    if isinstance(statement, (Assign, LawDecl)):
        return (statement.expr,)
    if isinstance(statement, (PriorDecl, NoiseDecl)):
        return statement.distribution.args + tuple(value for _, value in statement.distribution.kwargs)
    return ()


@lru_cache(maxsize=8)
def source_lines(source: str) -> list[str]:
    """The lines of a spec, split once per source (diagnostics and carets read them often)."""
    return source.splitlines()


def span_of(item) -> Span:
    """The source span of a Lark token."""
    return Span(item.line, item.column, item.end_line, item.end_column)


def diagnostic_at(span: Span, source: str, filename: str, message: str, hint: str | None = None) -> Diagnostic:
    """A Diagnostic pointing at `span` (the caret stops at the end of its first line)."""
    lines = source_lines(source)
    source_line = lines[span.line - 1] if 0 < span.line <= len(lines) else ""
    end = span.end_column if span.end_line == span.line else len(source_line) + 1
    return Diagnostic(
        message, line=span.line, column=span.column, end_column=max(end, span.column + 1),
        hint=hint, filename=filename, source_line=source_line,
    )


# --- syntax errors ---------------------------------------------------------------------------

def _syntax_error(error: UnexpectedInput, text: str, filename: str) -> Diagnostic:
    position = len(text) if isinstance(error, UnexpectedEOF) else error.pos_in_stream
    token = getattr(error, "token", None)
    if isinstance(token, Token) and token.type == "$END":
        position = len(text)
    opener = _first_unclosed_bracket(text, position)
    if opener is not None:
        char, offset = opener
        closer = ")" if char == "(" else "]"
        return _at_offset(text, offset, 1, filename, f"unclosed '{char}'",
                          f"add the matching '{closer}' (a statement may span lines only inside brackets)")
    if isinstance(error, UnexpectedCharacters):
        char = text[error.pos_in_stream]
        return _at_offset(text, error.pos_in_stream, 1, filename,
                          f"unexpected character {char!r}", _character_hint(char))
    if isinstance(error, UnexpectedToken) and token.type != "$END":
        return _unexpected_token(token, set(error.accepts or error.expected), text, filename)
    expected = set(getattr(error, "expected", ()) or ())
    return _at_offset(text, len(text) - 1, 1, filename, "unexpected end of file",
                      f"the last statement is incomplete; expected {_words(expected)}")


def _unexpected_token(token: Token, accepts: set[str], text: str, filename: str) -> Diagnostic:
    offset, width = token.start_pos, max(1, len(token.value.rstrip("\r\n")))
    expected = f"expected {_words(accepts)}"
    if token.type == "STAR" and offset > 0 and text[offset - 1] == "*":
        return _at_offset(text, offset - 1, 2, filename, "'**' is not an operator",
                          "write powers as N^alpha")
    if token.type == "_NL":
        if accepts & {"NUMBER", "LPAR", "MINUS"}:  # an expression, not only a name, was expected
            return _at_offset(text, offset, 1, filename, "incomplete expression at end of line",
                              f"{expected}; to continue on the next line, wrap the expression in ( )")
        return _at_offset(text, offset, 1, filename, "unexpected end of line",
                          f"the statement is incomplete; {expected}")
    if token.type in ("NAME", "NUMBER", "LPAR") and accepts & OPERATORS:
        return _at_offset(text, offset, width, filename, f"missing operator before '{token.value}'",
                          "write the operator, e.g. 'B * D' not 'B D'; one statement per line")
    if token.type == "RPAR" or token.type == "RSQB":
        return _at_offset(text, offset, 1, filename, f"unmatched '{token.value}'",
                          f"remove it or add the opening bracket; {expected}")
    if token.type == "TILDE" and "EQUAL" in accepts:
        return _at_offset(text, offset, 1, filename, "'~' where '=' was expected",
                          "declarations use '=': data N = params_N : positive")
    if token.type == "EQUAL" and "TILDE" in accepts:
        return _at_offset(text, offset, 1, filename, "'=' where '~' was expected",
                          "priors and laws use '~': E[family] ~ LogNormal(0, 1), loss ~ A/N^a + E")
    if token.type == "EQUAL":
        return _at_offset(text, offset, 1, filename, "unexpected '='",
                          "'=' names a data column or defines a variable on its own line; "
                          "laws and priors use '~'")
    return _at_offset(text, offset, width, filename, f"unexpected {token.value!r}", expected)


def _character_hint(char: str) -> str:
    if char == ";":
        return "end statements with a new line, not ';'"
    if char in "\"'":
        return "the language has no strings: write names without quotes"
    return "names use letters, digits and '_'; operators are + - * / ^; comments start with '#'"


def _words(terminals: set[str]) -> str:
    words = sorted({TERMINAL_WORDS.get(name, name) for name in terminals})
    return " or ".join(words) if words else "something else"


def _first_unclosed_bracket(text: str, before: int) -> tuple[str, int] | None:
    """The first '(' or '[' before offset `before` that is never closed in the whole text."""
    code = re.sub(r"#[^\n]*", lambda m: " " * len(m.group()), text)  # blank comments, keep offsets
    open_stack: list[tuple[str, int]] = []
    for offset, char in enumerate(code):
        if char in "([":
            open_stack.append((char, offset))
        elif char in ")]" and open_stack and open_stack[-1][0] == {")": "(", "]": "["}[char]:
            open_stack.pop()
    unclosed = [item for item in open_stack if item[1] < before]
    return unclosed[0] if unclosed else None


def _at_offset(text: str, offset: int, width: int, filename: str, message: str, hint: str) -> Diagnostic:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return diagnostic_at(Span(line, column, line, column + width), text, filename, message, hint)


# --- tokens -> Spec --------------------------------------------------------------------------

class _SpecBuilder(Transformer):
    """Builds ast nodes while Lark parses (an inline transformer: no parse tree is built, which
    halves the parse time). Lark keeps every token (`keep_all_tokens`), so a node's span runs
    from its first token to its last, brackets included. Forms that parse but mean nothing
    (bounds on a law) go to `problems`; the per-parse state is thread-local."""

    def __init__(self):
        super().__init__()
        self.state = threading.local()

    def begin(self, source: str, filename: str) -> list[Diagnostic]:
        self.state.source, self.state.filename, self.state.problems = source, filename, []
        return self.state.problems

    def _problem(self, span: Span, message: str, hint: str) -> None:
        self.state.problems.append(diagnostic_at(span, self.state.source, self.state.filename, message, hint))

    def start(self, children):
        statements = [c for c in children if not isinstance(c, Token)]  # drop the _NL tokens
        for statement in statements:
            for expr in _expressions(statement):
                levels = depth(expr)
                if levels > MAX_DEPTH:
                    self._problem(expr.span, f"expression nested {levels} levels deep (the limit is {MAX_DEPTH})",
                                  "split it: give parts their own names (x = ...), or use fewer terms")
        return statements

    # expressions
    def number(self, children):
        (token,) = children
        value = float(token)
        if value == float("inf"):
            self._problem(span_of(token), f"the number {token} is too large", "numbers must be below 1.8e308")
        return Number(value, span_of(token))

    def name(self, children):
        (token,) = children
        return Name(str(token), span_of(token))

    def atom(self, children):  # "(" expr ")"
        return children[1]

    def negate(self, children):
        minus, operand = children
        return Unary("-", self._expr(operand), _between(minus, operand))

    def _binary(op):
        def build(self, children):
            left, _, right = children
            return Binary(op, self._expr(left), self._expr(right), _between(left, right))
        return build

    add, sub, mul, div, pow = _binary("+"), _binary("-"), _binary("*"), _binary("/"), _binary("^")

    def keyword(self, children):
        key, _, value = children
        return (str(key), self._expr(value), span_of(key))

    def call(self, children):
        func, arguments = str(children[0]), [a for a in children[2:-1] if a is not None and not isinstance(a, Token)]
        span = _between(children[0], children[-1])
        args = tuple(self._expr(a) for a in arguments if not isinstance(a, tuple))
        kwargs = [a for a in arguments if isinstance(a, tuple)]
        if func[:1].isupper():
            return Distribution(func, args, tuple((k, v) for k, v, _ in kwargs), span)
        for key, _, key_span in kwargs:
            self._problem(key_span, f"function {func}() takes no keyword arguments",
                          f"write {func}(x) without '{key}='")
        return Call(func, args, span)

    def _expr(self, node) -> Expr:
        """A known distribution inside an expression is a mistake; other capitalized calls stay
        calls, so the checker reports them as unknown functions."""
        if not isinstance(node, Distribution):
            return node
        if node.name in DISTRIBUTIONS:
            self._problem(node.span, f"distribution {node.name}(...) inside an expression",
                          "a prior stands alone on its line: alpha ~ Normal(0.5, 0.2)")
        return Call(node.name, node.args + tuple(v for _, v in node.kwargs), node.span)

    # statements
    def data_decl(self, children):
        data, name, _, column, _, domain = children  # "data" NAME ["=" NAME] ":" NAME
        return DataDecl(str(name), str(column or name), str(domain), _between(data, domain))

    def curves_decl(self, children):
        response, curves, _, column = children  # [NAME] "curves" "by" NAME
        responses = () if response is None else (str(response),)
        return CurvesDecl(str(column), _between(response or curves, column), responses)

    def assign(self, children):
        name, _, expr = children
        span = _between(name, expr)
        if isinstance(expr, Distribution) and expr.name in DISTRIBUTIONS:
            self._problem(span, f"'=' gives '{name}' a distribution",
                          f"write a prior with '~': {name} ~ {expr.name}(...)")
            expr = Call(expr.name, expr.args, expr.span)
        return Assign(str(name), self._expr(expr), span)

    def tilde(self, children):
        name, _, group, _, _, rhs, bounds = children  # NAME ["[" NAME "]"] "~" expr [bounds]
        span = _between(name, bounds or rhs)
        if isinstance(rhs, Distribution) and rhs.name.lower() in FUNCTIONS and rhs.name not in DISTRIBUTIONS:
            rhs = self._expr(rhs)  # `loss ~ Exp(x)`: a misspelt function, not a prior
        if isinstance(rhs, Distribution):
            lower, upper = (bounds.lower, bounds.upper) if bounds is not None else (None, None)
            return PriorDecl(str(name), rhs, lower, upper, str(group) if group else None, span)
        if group is not None:
            self._problem(span_of(group), f"the law for '{name}' cannot vary by '{group}'",
                          f"make a parameter vary instead: E[{group}] ~ LogNormal(0, 1)")
        if bounds is not None:
            self._problem(span, f"bounds 'in [...]' on the law for '{name}'",
                          "bounds belong to priors: alpha ~ Normal(0.5, 0.2) in [0, 2]")
        return LawDecl(str(name), self._expr(rhs), span)

    def noise_decl(self, children):
        response, _, family, _, scale = children  # NAME "noise" (name | call) ["on" NAME]
        if isinstance(family, Name):
            family = Distribution(family.id, span=family.span)
        elif isinstance(family, Call):
            self._problem(family.span, f"unknown noise family '{family.func}'",
                          "noise is Normal or StudentT(nu=4)")
            family = Distribution(family.func, span=family.span)
        return NoiseDecl(str(response), family, str(scale or "log"), _between(response, scale or family))

    def bounds(self, children):  # "in" "[" [bound] "," [bound] "]"
        return _Bounds(children[2], children[4], children[-1])

    def bound(self, children):
        minus, value = children
        if value.type == "NAME" and value != "inf":
            self._problem(span_of(value), f"bound '{value}' is not a number",
                          "bounds are numbers, 'inf', or empty: in [0, inf] or in [0, ]")
            return None
        number = float(value)  # float("inf") works too
        if value.type == "NUMBER" and number == float("inf"):
            self._problem(span_of(value), f"the number {value} is too large", "write inf for no bound")
            return None
        return -number if minus else number


@dataclass(frozen=True)
class _Bounds:
    lower: float | None
    upper: float | None
    closing: Token  # the "]", where the statement ends


def _between(first, last) -> Span:
    """From the start of `first` to the end of `last` (tokens, ast nodes or bounds)."""
    first = first if isinstance(first, Token) else first.span
    last = last.closing if isinstance(last, _Bounds) else last if isinstance(last, Token) else last.span
    return Span(first.line, first.column, last.end_line, last.end_column)
