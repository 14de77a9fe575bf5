"""Check a parsed spec: resolve every name to one kind and collect ALL semantic errors at once.

Name resolution, in order: declared data, derived variables and constants (`x = ...`), names with
a prior; then (with a table's `columns`) undeclared names that are columns are data; names read
by a derived variable are data; responses are data; everything else is a parameter. An undeclared
name close to a column or a declared name is more likely a typo than a new parameter (lmfit's
pitfall), so it is an error unless it gets a prior.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import replace
from typing import Iterable

import numpy as np

from ..errors import Diagnostic, LawError
from .ast import (
    DOMAINS, FUNCTIONS, NOISE_SCALES, Assign, Call, CheckedSpec, DataDecl, Distribution,
    Expr, Law, LawDecl, Name, Noise, NoiseDecl, Parameter, PriorDecl, Span, Spec,
)
from .distributions import DEFAULT_NU, DISTRIBUTIONS, NOISE_FAMILIES, argument_problems, constant_value
from .evaluate import evaluate, names_in, nodes
from .positivity import value_requirements
from .parse import diagnostic_at

TYPO_CUTOFF = 0.8  # difflib ratio above which an unknown name is taken for a misspelling


def suggest(name: str, candidates: Iterable[str], cutoff: float = TYPO_CUTOFF) -> str | None:
    """The closest candidate to `name`, if any is close enough (a difference of case only is close)."""
    others = sorted(set(candidates) - {name})
    same_but_case = [other for other in others if other.lower() == name.lower()]
    if same_but_case:
        return same_but_case[0]
    matches = difflib.get_close_matches(name, others, n=1, cutoff=cutoff)
    return matches[0] if matches else None


def check(spec: Spec, columns: Iterable[str] | None = None) -> CheckedSpec:
    """The checked spec; raises LawError with every semantic problem of the file."""
    return _Checker(spec, None if columns is None else [str(c) for c in columns]).run()


class _Checker:
    def __init__(self, spec: Spec, columns: list[str] | None):
        self.spec, self.columns = spec, columns
        self.problems: list[Diagnostic] = []
        self.data: dict[str, DataDecl] = {}
        self.assigns: dict[str, Assign] = {}
        self.priors: dict[str, PriorDecl] = {}
        self.laws: dict[str, LawDecl] = {}
        self.noises: dict[str, NoiseDecl] = {}
        self.parameters: set[str] = set()
        self.suggested: set[str] = set()  # names offered as "did you mean": not reported again

    def error(self, span: Span | None, message: str, hint: str | None = None) -> None:
        span = span or Span(1, 1, 1, 2)
        self.problems.append(diagnostic_at(span, self.spec.source, self.spec.filename, message, hint))

    def run(self) -> CheckedSpec:
        self.collect_statements()
        self.resolve_names()
        derived, constants = self.order_assigns()
        for expr in [law.expr for law in self.laws.values()] + [a.expr for a in self.assigns.values()]:
            self.check_expression(expr)
        for law in self.laws.values():
            if law.response in names_in(law.expr):
                self.error(law.span, f"the law for '{law.response}' uses '{law.response}' on its right side",
                           "a response cannot predict itself")
        parameters = self.order_parameters()
        self.check_priors(parameters)
        self.check_noise_targets()
        laws = tuple(Law(d.response, d.expr, self.noise_for(d.response), d.span) for d in self.laws.values())
        if self.problems:
            self.problems.sort(key=lambda d: (d.line or 0, d.column or 0))
            raise LawError(self.problems)
        checked = CheckedSpec(self.spec.filename, self.spec.source, self.data, derived, constants,
                              parameters, laws)
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
        line = self.spec.source.splitlines()[span.line - 1]
        matches = list(re.finditer(rf"\b{re.escape(word)}\b", line))
        if not matches:
            return span
        start = matches[-1].start()
        return Span(span.line, start + 1, span.line, start + 1 + len(word))

    def require_column(self, column: str, span: Span | None) -> None:
        if self.columns is not None and column not in self.columns:
            close = suggest(column, self.columns, 0.6)
            self.error(span, f"'{column}' is not a column of the table",
                       f"did you mean '{close}'?" if close else f"columns: {', '.join(self.columns[:20])}")

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
            for node in _names(assign.expr):
                if node.id in self.priors:
                    self.error(node.span, f"derived variable '{assign.name}' reads parameter '{node.id}'",
                               "derived variables are computed from data and constants; "
                               f"put '{node.id}' in a law instead")
                elif node.id not in declared and node.id not in self.implicit_data:
                    self.add_implicit_data(node.id, node.span)  # only data can feed a derived variable
        self.parameters = set(self.priors)
        expressions = [law.expr for law in self.laws.values()] + self.prior_arguments()
        used = {name for expr in expressions for name in names_in(expr)}
        # a typo is close to a column, a declared variable, or a prior that nothing else uses
        known = set(self.columns or ()) | (declared - set(self.priors)) | (set(self.priors) - used)
        for expr in expressions:
            for node in _names(expr):
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
        return [arg for prior in self.priors.values() for arg in _arguments(prior.distribution)]

    def add_implicit_data(self, name: str, span: Span | None) -> None:
        if span is not None:
            self.require_column(name, span)
        self.data[name] = DataDecl(name, name, "real")
        self.implicit_data.add(name)

    # --- derived variables and constants ----------------------------------------------------

    def order_assigns(self) -> tuple[tuple[Assign, ...], dict[str, float]]:
        """Derived variables in dependency order, and the constants' values; reports cycles."""
        ordered: list[Assign] = []
        state: dict[str, str] = {}  # name -> "visiting" | "done"

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == "done":
                return
            if state.get(name) == "visiting":
                cycle = path[path.index(name):] + [name]
                self.error(self.assigns[name].span, f"cycle among derived variables: {' -> '.join(cycle)}",
                           "a derived variable cannot depend on itself")
                return
            state[name] = "visiting"
            for dependency in names_in(self.assigns[name].expr):
                if dependency in self.assigns:
                    visit(dependency, path + [name])
            state[name] = "done"
            ordered.append(self.assigns[name])

        for name in self.assigns:
            visit(name, [])
        constants: dict[str, float] = {}
        derived = []
        for assign in ordered:
            if all(name in constants for name in names_in(assign.expr)):
                with np.errstate(all="ignore"):
                    constants[assign.name] = float(evaluate(assign.expr, constants, np))
            else:
                derived.append(assign)
        self.constants = constants
        return tuple(derived), constants

    # --- expressions -------------------------------------------------------------------------

    def check_expression(self, expr: Expr) -> None:
        for node in nodes(expr):
            if isinstance(node, Call):
                arity = FUNCTIONS.get(node.func)
                if arity is None:
                    close = suggest(node.func, FUNCTIONS, 0.6)
                    self.error(node.span, f"unknown function '{node.func}'",
                               (f"did you mean '{close}'? " if close else "")
                               + f"functions: {', '.join(FUNCTIONS)}")
                elif len(node.args) != arity:
                    self.error(node.span, f"{node.func}() takes {arity} argument(s), got {len(node.args)}",
                               f"write {node.func}({', '.join('xy'[:arity])})")
            elif isinstance(node, Name) and node.id in self.data and self.data[node.id].domain == "category":
                self.error(node.span, f"category column '{node.id}' used in an expression",
                           f"let a parameter vary by it instead: E[{node.id}] ~ LogNormal(0, 1)")

    # --- parameters and priors ---------------------------------------------------------------

    def order_parameters(self) -> dict[str, Parameter]:
        """Parameters in order of first use in the laws (a prior's own parameters right after
        it), then one noise scale sigma_<response> and one drift scale drift_<response> per law."""
        ordered: dict[str, Parameter] = {}
        visiting: list[str] = []

        def visit(name: str) -> None:
            if name in visiting:
                cycle = visiting[visiting.index(name):] + [name]
                self.error(self.priors[name].span, f"cycle among priors: {' -> '.join(cycle)}",
                           "a prior's arguments are numbers or other parameters, never itself")
                return
            if name in ordered or name not in self.parameters:
                return
            prior = self.priors.get(name)
            ordered[name] = Parameter(name, prior, prior.group if prior else None)
            visiting.append(name)
            for argument in _arguments(prior.distribution) if prior else ():
                for dependency in names_in(argument):
                    visit(dependency)
            visiting.pop()

        for law in self.laws.values():
            for name in names_in(law.expr):
                visit(name)
        for prefix in ("sigma_", "drift_"):
            for response in self.laws:
                self.parameters.add(prefix + response)
                visit(prefix + response)
        return ordered

    def check_priors(self, used: dict[str, Parameter]) -> None:
        for prior in self.priors.values():
            if prior.name not in used and prior.name not in self.suggested:
                close = suggest(prior.name, used, 0.6)
                self.error(prior.span, f"prior for '{prior.name}', which no law uses",
                           f"did you mean '{close}'?" if close else f"remove it or use '{prior.name}' in a law")
            self.check_distribution(prior)
            if prior.group is not None:
                group = self.data.get(prior.group)
                if group is None or group.domain != "category":
                    self.error(self.word_span(prior.span, prior.group),
                               f"'{prior.name}' varies by '{prior.group}', which is not a category column",
                               f"declare it: data {prior.group} : category")

    def check_distribution(self, prior: PriorDecl) -> None:
        d = prior.distribution
        for message, hint in argument_problems(d):
            self.error(d.span, message, hint)
        for argument in _arguments(d):
            for node in _names(argument):
                if node.id in self.data or node.id in self.assigns and node.id not in self.constants:
                    self.error(node.span, f"prior argument '{node.id}' is data",
                               "prior arguments are numbers, constants or parameters")
            self.check_expression(argument)
        if prior.lower is None and prior.upper is None:
            return
        info = DISTRIBUTIONS.get(d.name)
        if info is not None and not info.truncatable:
            self.error(prior.span, f"{d.name} cannot be bounded with 'in [...]'",
                       "bound a Normal, StudentT, Cauchy, Laplace or Logistic prior, or use a positive "
                       "family (HalfNormal, LogNormal, Gamma) without bounds")
        if prior.lower is not None and prior.upper is not None and prior.lower >= prior.upper:
            self.error(prior.span, f"empty bounds [{prior.lower:g}, {prior.upper:g}] for '{prior.name}'",
                       "the lower bound must be below the upper bound")

    def noise_for(self, response: str) -> Noise:
        declared = self.noises.get(response)
        if declared is None:
            return Noise("Normal", "log")
        family = declared.distribution
        if family.name not in NOISE_FAMILIES:
            self.error(family.span, f"unknown noise family '{family.name}'", "noise is Normal or StudentT(nu=4)")
            return Noise("Normal", declared.scale)
        if declared.scale not in NOISE_SCALES:
            self.error(self.word_span(declared.span, declared.scale), f"unknown noise scale '{declared.scale}'",
                       f"write 'on {' or on '.join(NOISE_SCALES)}'")
        arguments = dict(zip(NOISE_FAMILIES[family.name], family.args)) | dict(family.kwargs)
        unknown = len(family.args) > len(NOISE_FAMILIES[family.name]) or set(arguments) - set(NOISE_FAMILIES[family.name])
        if unknown:
            self.error(family.span, f"{family.name} noise takes {'no arguments' if family.name == 'Normal' else 'only nu'}",
                       "write Normal or StudentT(nu=4)")
        if family.name != "StudentT":
            return Noise("Normal", declared.scale)
        nu = constant_value(arguments["nu"]) if "nu" in arguments else DEFAULT_NU
        if nu is None or not nu > 0 or not math.isfinite(nu):
            self.error(family.span, "StudentT noise needs a positive number nu", "write StudentT(nu=4)")
            nu = DEFAULT_NU
        return Noise("StudentT", declared.scale, nu)

    def check_noise_targets(self) -> None:
        for response, noise in self.noises.items():
            if response not in self.laws:
                self.error(noise.span, f"noise for '{response}', which has no law",
                           f"write a law first: {response} ~ ...")


def _names(expr: Expr) -> list[Name]:
    return [node for node in nodes(expr) if isinstance(node, Name)]


def _arguments(d: Distribution) -> tuple[Expr, ...]:
    return d.args + tuple(value for _, value in d.kwargs)


def _with_inferred_domains(spec: CheckedSpec, implicit: set[str]) -> CheckedSpec:
    """Undeclared data is 'positive' where the laws need it positive, else 'real'."""
    positive = {law.response for law in spec.laws if law.noise.scale == "log"}
    for law in spec.laws:
        positive |= {r.expr.id for r in value_requirements(spec, law.expr)
                     if isinstance(r.expr, Name) and r.above == 0.0}
    data = {name: replace(decl, domain="positive") if name in implicit and name in positive else decl
            for name, decl in spec.data.items()}
    return replace(spec, data=data)
