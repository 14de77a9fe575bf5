"""The checker's rules for parameters: their order, their priors and the noise models.

Mixed into check._Checker, whose state they read (`priors`, `data`, `constants`, `error`, ...).
A prior's constant arguments are computed here, so `HalfNormal(1 - eta)` is checked as the
number it is, and the checked spec carries numbers the compiler and `show` need not evaluate.
"""
from __future__ import annotations

import math
from dataclasses import replace

from ..errors import listed
from .ast import NOISE_SCALES, Expr, Noise, Number, Parameter, PriorDecl, Span
from .distributions import (
    DEFAULT_NU, DISTRIBUTIONS, GROUPED_FAMILIES, NOISE_FAMILIES, TRUNCATABLE, argument_problems,
    bind_arguments, constant_value, value_problems,
)
from .evaluate import names_in
from .names import arguments_of, depth_first, name_nodes, suggest


class PriorChecks:
    """Methods of check._Checker about parameters (split out to keep each module short)."""

    def check_priors_on_columns(self) -> None:
        """A prior on a column's name would make it a parameter and leave the column unread."""
        read = {decl.column for decl in self.data.values()}
        for prior in self.priors.values():
            if self.columns is not None and prior.name in self.columns and prior.name not in read:
                span = prior.span and Span(prior.span.line, prior.span.column, prior.span.line,
                                           prior.span.column + len(prior.name))
                self.error(span, f"'{prior.name}' has a prior but is also a column of the table",
                           f"the prior would make '{prior.name}' a parameter and leave the column "
                           "unread: remove the prior to use the column, or rename the parameter")

    def order_parameters(self) -> dict[str, Parameter]:
        """Parameters in order of first use in the laws (a prior's own parameters right after
        it), then one noise scale sigma_<response> per law, then one drift scale drift_<response>
        per law (the law's misfit beyond the fitted data, likelihood.py), then under `curves by`
        one scale tau_<response> of the per-run offsets per law it covers (curves.py)."""
        scales = [f"{prefix}{response}" for prefix in ("sigma_", "drift_") for response in self.laws]
        if self.curves is not None:
            scales += [f"tau_{response}" for response in self.laws if self.curves.covers(response)]
        self.parameters.update(scales)

        def dependencies(name: str) -> list[str]:
            prior = self.priors.get(name)
            arguments = arguments_of(prior.distribution) if prior else ()
            return [n for argument in arguments for n in names_in(argument) if n in self.parameters]

        roots = [n for law in self.laws.values() for n in names_in(law.expr) if n in self.parameters]
        ordered: dict[str, Parameter] = {}
        for event, name, path in depth_first(roots + scales, dependencies):
            if event == "enter":
                prior = self.priors.get(name)
                ordered[name] = Parameter(name, prior, prior.group if prior else None)
            elif event == "cycle":
                cycle = path[path.index(name):] + [name]
                self.error(self.priors[name].span, f"cycle among priors: {' -> '.join(cycle)}",
                           "a prior's arguments are numbers or other parameters, never itself")
        return ordered

    def check_prior_arguments(self, prior: PriorDecl) -> PriorDecl:
        """The prior with its constant arguments computed (`HalfNormal(2 * eta)` becomes
        `HalfNormal(2.5)`); reports arguments that do not fit the distribution, read data, or
        are numbers outside what it accepts (a scale <= 0, an empty Uniform)."""
        d = prior.distribution
        problems = argument_problems(d)
        for message, hint in problems:
            self.error(d.span, message, hint)
        for argument in arguments_of(d):
            for node in name_nodes(argument):
                if node.id in self.data or node.id in self.assigns and node.id not in self.constants:
                    self.error(node.span, f"prior argument '{node.id}' is data",
                               "prior arguments are numbers, constants or parameters")
            self.check_expression(argument)
        if problems or any(id(a) in self.unsound for a in arguments_of(d)):
            return prior
        arguments = bind_arguments(d)
        values = {key: self.fold(expr) for key, expr in arguments.items()}
        for key, message, hint in value_problems(d.name, values):
            self.error(arguments[key].span, message, hint)

        def folded(key: str, expr: Expr) -> Expr:
            return expr if values[key] is None else Number(values[key], expr.span)

        positional = DISTRIBUTIONS[d.name].params[:len(d.args)]
        d = replace(d, args=tuple(folded(key, e) for key, e in zip(positional, d.args)),
                    kwargs=tuple((key, folded(key, e)) for key, e in d.kwargs))
        return replace(prior, distribution=d)

    def check_priors(self, used: dict[str, Parameter]) -> None:
        for prior in self.priors.values():
            if prior.name not in used and prior.name not in self.suggested:
                close = suggest(prior.name, used, 0.6)
                hint = f"did you mean '{close}'?" if close else f"remove it or use '{prior.name}' in a law"
                response = prior.name.removeprefix("tau_")
                if response in self.laws and self.curves is None:
                    hint = (f"'{prior.name}' scales per-run offsets of learning curves: declare the "
                            f"column of run ids first, e.g. `curves by run` (or `{response} curves by run` "
                            "for this law alone)")
                elif response in self.laws:
                    hint = (f"'{prior.name}' scales per-run offsets of learning curves, and the rows of "
                            f"{response} are not curves here: add `{response} curves by {self.curves.column}`")
                self.error(prior.span, f"prior for '{prior.name}', which no law uses", hint)
            if prior.group is not None:
                self.check_group(prior)
            if prior.lower is None and prior.upper is None:
                continue
            if prior.distribution.name not in TRUNCATABLE and prior.distribution.name in DISTRIBUTIONS:
                self.error(prior.span, f"{prior.distribution.name} cannot be bounded with 'in [...]'",
                           f"bound a {' or '.join(n for n in DISTRIBUTIONS if n in TRUNCATABLE)} prior, or use a "
                           "positive family "
                           "(HalfNormal, LogNormal, Gamma) without bounds")
            lower = -math.inf if prior.lower is None else prior.lower
            upper = math.inf if prior.upper is None else prior.upper
            if lower >= upper:
                self.error(prior.span, f"empty bounds [{lower:g}, {upper:g}] for '{prior.name}'",
                           "the lower bound must be below the upper bound")

    def check_group(self, prior: PriorDecl) -> None:
        if self.curves is not None and prior.group == self.curves.column:
            return  # check_curves says why a parameter cannot vary by the runs
        group = self.data.get(prior.group)
        if group is None or group.domain != "category":
            hint = f"declare it: data {prior.group} : category"
            if group is None and self.columns is not None and prior.group not in self.columns:
                close = suggest(prior.group, self.columns, 0.6)
                hint = (f"did you mean '{close}'? then declare it: data {close} : category" if close else
                        f"'{prior.group}' is not a column either; the table has: {listed(self.columns)}")
            self.error(self.word_span(prior.span, prior.group),
                       f"'{prior.name}' varies by '{prior.group}', which is not a category column", hint)
        if prior.distribution.name not in GROUPED_FAMILIES or prior.lower is not None or prior.upper is not None:
            self.error(prior.distribution.span,
                       f"grouped parameter '{prior.name}' needs a {' or '.join(GROUPED_FAMILIES)} "
                       "population prior without bounds",
                       f"write e.g. {prior.name}[{prior.group}] ~ LogNormal(mu_{prior.name}, tau_{prior.name})")

    def noise_for(self, response: str) -> Noise:
        declared = self.noises.get(response)
        if declared is None:
            return Noise("Normal", "log", default=True)
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
