"""Check a parsed spec: resolve every name to one kind and collect ALL semantic errors at once.

Name resolution, in order: declared data, derived variables and constants (`x = ...`), names with
a prior; then (with a table's `columns`) undeclared names that are columns are data; names read
by a derived variable are data; responses are data; everything else is a parameter. An undeclared
name close to a column or a declared name is more likely a typo than a new parameter (lmfit's
pitfall), so it is an error unless it gets a prior.

Nothing is computed before it is checked: function names and arities first, then constants and
the constant parts of laws and priors, with evaluate.FUNCTIONS only (spec text cannot reach any
other NumPy function); arithmetic that fails there is an error at its node.
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Iterable

from ..errors import Diagnostic, SpecError
from .ast import (
    DOMAINS, Assign, Call, CheckedSpec, CurvesDecl, DataDecl, Expr, Law, LawDecl, Name, NoiseDecl,
    PriorDecl, Span, Spec,
)
from .check_priors import PriorChecks
from .evaluate import FUNCTIONS, ConstantError, fold, names_in, nodes
from .names import arguments_of, column_hint, depth_first, name_nodes, suggest
from .parse import diagnostic_at, source_lines
from .positivity import value_requirements

__all__ = ["check", "suggest"]


def check(spec: Spec, columns: Iterable[str] | None = None) -> CheckedSpec:
    """The checked spec; raises SpecError with every semantic problem of the file."""
    return _Checker(spec, None if columns is None else [str(c) for c in columns]).run()


class _Checker(PriorChecks):
    def __init__(self, spec: Spec, columns: list[str] | None):
        self.spec, self.columns = spec, columns
        self.problems: list[Diagnostic] = []
        self.data: dict[str, DataDecl] = {}
        self.assigns: dict[str, Assign] = {}
        self.priors: dict[str, PriorDecl] = {}
        self.laws: dict[str, LawDecl] = {}
        self.noises: dict[str, NoiseDecl] = {}
        self.curves: CurvesDecl | None = None  # every `curves by` line merged
        self.curves_lines: list[CurvesDecl] = []  # each as written, to locate errors
        self.parameters: set[str] = set()
        self.suggested: set[str] = set()  # names offered as "did you mean": not reported again
        self.unsound: set[int] = set()  # id() of expressions with a bad call: never evaluated

    def error(self, span: Span | None, message: str, hint: str | None = None) -> None:
        span = span or Span(1, 1, 1, 2)
        self.problems.append(diagnostic_at(span, self.spec.source, self.spec.filename, message, hint))

    def run(self) -> CheckedSpec:
        self.collect_statements()
        self.resolve_names()
        self.check_curves()
        for expr in [law.expr for law in self.laws.values()] + [a.expr for a in self.assigns.values()]:
            self.check_expression(expr)
        derived, constants = self.order_assigns()  # evaluates constants, now that calls are valid
        for law in self.laws.values():
            self.fold(law.expr)  # its constant parts must compute: N^(1/0) is an error
        for law in self.laws.values():
            if law.response in names_in(law.expr):
                self.error(law.span, f"the law for '{law.response}' uses '{law.response}' on its right side",
                           "a response cannot predict itself")
            elif not self.problems and all(name in self.data or name in self.assigns or name in self.implicit_data
                                           for name in names_in(law.expr)):  # NUTS would only report nonsense
                self.error(law.span, f"the law for '{law.response}' has no parameter to fit: it reads only data and constants",
                           f"give it parameters, e.g. {law.response} ~ A * N^alpha (a name that is not a "
                           "column is a parameter)")
        self.priors = {name: self.check_prior_arguments(p) for name, p in self.priors.items()}
        parameters = self.order_parameters()
        self.check_priors(parameters)
        self.check_noise_targets()
        laws = tuple(Law(d.response, d.expr, self.noise_for(d.response), d.span) for d in self.laws.values())
        if self.problems:
            self.problems.sort(key=lambda d: (d.line or 0, d.column or 0))
            raise SpecError(self.problems)
        checked = CheckedSpec(self.spec.filename, self.spec.source, self.data, derived, constants,
                              parameters, laws, self.curves)
        return _with_inferred_domains(checked, self.implicit_data)

    # --- statements ------------------------------------------------------------------------

    def collect_statements(self) -> None:
        first_seen: dict[str, Span | None] = {}
        for statement in self.spec.statements:
            if isinstance(statement, (DataDecl, Assign, PriorDecl)):
                if statement.name in first_seen:
                    self.duplicate(f"'{statement.name}' is declared twice", statement.span,
                                   first_seen[statement.name])
                    continue
                first_seen[statement.name] = statement.span
            if isinstance(statement, DataDecl):
                self.data[statement.name] = statement
                if statement.domain not in DOMAINS:
                    close = suggest(statement.domain, DOMAINS, 0.6)
                    self.error(self.word_span(statement.span, statement.domain),
                               f"unknown domain '{statement.domain}'",
                               (f"did you mean '{close}'? " if close else "") + f"domains: {', '.join(DOMAINS)}")
                self.require_column(statement.column, self.word_span(statement.span, statement.column))
            elif isinstance(statement, CurvesDecl):
                self.add_curves(statement)
            elif isinstance(statement, Assign):
                self.assigns[statement.name] = statement
            elif isinstance(statement, PriorDecl):
                self.priors[statement.name] = statement
            elif isinstance(statement, LawDecl):
                if statement.response in self.laws:
                    self.duplicate(f"a second law for '{statement.response}'", statement.span,
                                   self.laws[statement.response].span)
                else:
                    self.laws[statement.response] = statement
            elif isinstance(statement, NoiseDecl):
                if statement.response in self.noises:
                    self.duplicate(f"a second noise model for '{statement.response}'", statement.span,
                                   self.noises[statement.response].span)
                else:
                    self.noises[statement.response] = statement
        if not self.laws:
            self.error(None, "the spec has no law", "write one, e.g. loss ~ A/N^alpha + E")

    def duplicate(self, message: str, span: Span | None, first: Span | None) -> None:
        where = f" (first on line {first.line})" if first else ""
        self.error(span, f"{message}{where}", "keep one of them")

    def word_span(self, span: Span | None, word: str) -> Span | None:
        """The span of `word` on the statement's first line (for a caret under one word)."""
        if span is None:
            return None
        line = source_lines(self.spec.source)[span.line - 1]
        matches = list(re.finditer(rf"\b{re.escape(word)}\b", line))
        if not matches:
            return span
        start = matches[-1].start()
        return Span(span.line, start + 1, span.line, start + 1 + len(word))

    def require_column(self, column: str, span: Span | None) -> None:
        if self.columns is not None and column not in self.columns:
            self.error(span, f"'{column}' is not a column of the table", column_hint(column, self.columns))

    # --- names -----------------------------------------------------------------------------

    def resolve_names(self) -> None:
        """Decide the kind of every undeclared name; fills self.data and self.parameters."""
        self.implicit_data: set[str] = set()
        declared = set(self.data) | set(self.assigns) | set(self.priors)
        for response, law in self.laws.items():
            if response in self.assigns or response in self.priors:
                kind = "a derived variable" if response in self.assigns else "a parameter with a prior"
                self.error(law.span, f"'{response}' is {kind}, not a response column",
                           "the left side of a law is a table column, e.g. loss ~ A/N^alpha + E")
            elif response in self.data:
                if self.data[response].domain == "category":
                    self.error(law.span, f"response '{response}' is a category column",
                               "a law predicts a number; declare it real or positive")
            else:
                self.add_implicit_data(response, self.word_span(law.span, response))
        for assign in self.assigns.values():
            for node in name_nodes(assign.expr):
                if node.id in self.priors:
                    self.error(node.span, f"derived variable '{assign.name}' reads parameter '{node.id}'",
                               "derived variables are computed from data and constants; "
                               f"put '{node.id}' in a law instead")
                elif node.id not in declared and node.id not in self.implicit_data:
                    self.add_implicit_data(node.id, node.span)  # only data can feed a derived variable
        self.parameters = set(self.priors)
        self.check_priors_on_columns()
        expressions = [law.expr for law in self.laws.values()] + self.prior_arguments()
        used = {name for expr in expressions for name in names_in(expr)}
        # a typo is close to a column, a declared variable, or a prior that nothing else uses
        known = set(self.columns or ()) | (declared - set(self.priors)) | (set(self.priors) - used)
        for expr in expressions:
            for node in name_nodes(expr):
                if node.id in declared or node.id in self.implicit_data or node.id in self.parameters:
                    continue
                if self.columns is not None and node.id in self.columns:
                    self.add_implicit_data(node.id, None)
                elif (close := suggest(node.id, known)) is not None:
                    self.error(node.span, f"unknown name '{node.id}'",
                               f"did you mean '{close}'? (give it a prior to make it a parameter)")
                    declared.add(node.id)  # report each misspelling once
                    self.suggested.add(close)
                else:
                    self.parameters.add(node.id)

    def prior_arguments(self) -> list[Expr]:
        return [arg for prior in self.priors.values() for arg in arguments_of(prior.distribution)]

    def add_implicit_data(self, name: str, span: Span | None) -> None:
        if span is not None:
            self.require_column(name, span)
        self.data[name] = DataDecl(name, name, "real")
        self.implicit_data.add(name)

    # --- learning curves -----------------------------------------------------------------------

    def add_curves(self, statement: CurvesDecl) -> None:
        """`curves by run` (every law) or `loss curves by run` (one law, one line each): one
        run column per file, and no law named twice."""
        first = self.curves
        self.curves_lines.append(statement)
        if first is None:
            self.curves = statement
            self.require_column(statement.column, self.word_span(statement.span, statement.column))
            return
        if not first.responses or not statement.responses:
            scope = ("" if first.responses == statement.responses else
                     " (the first applies to every law)" if not first.responses else " (this one applies to every law)")
            self.duplicate(f"a second 'curves by'{scope}", statement.span, first.span)
        elif statement.responses[0] in first.responses:
            self.duplicate(f"a second 'curves by' for '{statement.responses[0]}'", statement.span, first.span)
        elif statement.column != first.column:
            self.error(self.word_span(statement.span, statement.column),
                       f"runs named by '{statement.column}' here, by '{first.column}' on line {first.span.line}",
                       "a table has one column of run ids: name the same one on every 'curves by' line")
        else:
            self.curves = CurvesDecl(first.column, first.span, first.responses + statement.responses)


    def check_curves(self) -> None:
        """The column of `curves by` holds run ids, labels: nothing may read it as a number, and
        the runs' offsets are its only use."""
        if self.curves is None:
            return
        column = self.curves.column
        for line in self.curves_lines:
            for response in line.responses:
                if response not in self.laws:
                    close = suggest(response, self.laws, 0.6)
                    self.error(self.word_span(line.span, response),
                               f"'{response} curves by {line.column}', but '{response}' has no law",
                               f"did you mean '{close}'?" if close else f"write a law first: {response} ~ ...")
        how = f"`curves by {column}` reads it as run ids (labels)"
        for decl in self.data.values():
            if decl.span is not None and column in (decl.name, decl.column):
                self.error(decl.span, f"'{column}' is declared {decl.domain} data, but {how}",
                           f"remove this line: `curves by {column}` declares the column")
        for expr in [law.expr for law in self.laws.values()] + [a.expr for a in self.assigns.values()]:
            for node in name_nodes(expr):
                if node.id == column:
                    self.error(node.span, f"'{column}' is read as a number here, but {how}",
                               "group by a column of run ids, and let the law read other columns")
        if column in self.laws:
            self.error(self.laws[column].span, f"'{column}' is a response, but {how}",
                       "name the column that identifies each run")
        for prior in self.priors.values():
            if prior.group == column:
                self.error(self.word_span(prior.span, column),
                           f"'{prior.name}' varies by '{column}', the runs of `curves by {column}`",
                           f"each run has an offset already (tau_<response>); drop the [{column}]")

    # --- derived variables and constants ----------------------------------------------------

    def order_assigns(self) -> tuple[tuple[Assign, ...], dict[str, float]]:
        """Derived variables in dependency order, and the constants' values; reports cycles and
        constant arithmetic that fails."""
        def dependencies(name: str) -> list[str]:
            return [n for n in names_in(self.assigns[name].expr) if n in self.assigns]

        ordered: list[Assign] = []
        for event, name, path in depth_first(self.assigns, dependencies):
            if event == "exit":
                ordered.append(self.assigns[name])
            elif event == "cycle":
                cycle = path[path.index(name):] + [name]
                self.error(self.assigns[name].span, f"cycle among derived variables: {' -> '.join(cycle)}",
                           "a derived variable cannot depend on itself")
        self.constants: dict[str, float] = {}
        broken: set[str] = set()  # assigns not evaluated: a bad call, or failing arithmetic
        derived = []
        for assign in ordered:
            reads_broken = bool(broken & set(names_in(assign.expr)))
            value = None if reads_broken else self.fold(assign.expr, assign.name)
            if value is not None:
                self.constants[assign.name] = value
            elif reads_broken or id(assign.expr) in self.unsound:
                broken.add(assign.name)
            else:
                derived.append(assign)
        return tuple(derived), self.constants

    def fold(self, expr: Expr, constant: str | None = None) -> float | None:
        """The value of an expression of numbers and constants (None where it reads data or
        parameters); a constant part that fails, such as log(-1) or 1/0, is reported."""
        if id(expr) in self.unsound:  # a bad call: nothing in it is computed
            return None
        try:
            return fold(expr, self.constants)
        except ConstantError as error:
            where = f"constant '{constant}'" if constant else "constant arithmetic"
            self.error(error.node.span, f"{where} cannot be computed: {error.reason}",
                       "constant parts are computed when the spec is checked and must give a "
                       "finite number; change the numbers or the operation")
            self.unsound.add(id(expr))
            return None

    # --- expressions -------------------------------------------------------------------------

    def check_expression(self, expr: Expr) -> None:
        """Function names and arities; an expression with a bad call is marked unsound."""
        for node in nodes(expr):
            if isinstance(node, Call):
                function = FUNCTIONS.get(node.func)
                if function is None:
                    close = suggest(node.func, FUNCTIONS, 0.6)
                    self.error(node.span, f"unknown function '{node.func}'",
                               (f"did you mean '{close}'? " if close else "")
                               + f"functions: {', '.join(FUNCTIONS)}")
                    self.unsound.add(id(expr))
                elif len(node.args) != function.arity:
                    self.error(node.span, f"{node.func}() takes {function.arity} argument(s), got {len(node.args)}",
                               f"write {node.func}({', '.join('xy'[:function.arity])})")
                    self.unsound.add(id(expr))
            elif isinstance(node, Name) and node.id in self.data and self.data[node.id].domain == "category":
                self.error(node.span, f"category column '{node.id}' used in an expression",
                           f"let a parameter vary by it instead: E[{node.id}] ~ LogNormal(0, 1)")


def _with_inferred_domains(spec: CheckedSpec, implicit: set[str]) -> CheckedSpec:
    """Undeclared data is 'positive' where the laws need it positive, else 'real'."""
    positive = {law.response for law in spec.laws if law.noise.scale == "log"}
    for law in spec.laws:
        positive |= {r.expr.id for r in value_requirements(spec, law.expr)
                     if isinstance(r.expr, Name) and r.above == 0.0}
    data = {name: replace(decl, domain="positive") if name in implicit and name in positive else decl
            for name, decl in spec.data.items()}
    return replace(spec, data=data)
