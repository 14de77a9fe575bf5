"""The syntax tree of a .law file, and the checked spec that the compiler reads.

Two layers, like Stan's blocks of names:
- `Spec` is what the parser read: statements in file order, each with its source span.
- `CheckedSpec` is what `check` proved sound against a table's columns: every name resolved
  to exactly one kind (data column, derived variable, constant or parameter), derived variables
  in dependency order, one `Law` per response with its noise model, and the column that
  groups rows into runs' learning curves, if any.
All nodes are frozen dataclasses, so trees compare by value in tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping, Union


@dataclass(frozen=True)
class Span:
    line: int  # 1-based
    column: int  # 1-based
    end_line: int
    end_column: int  # exclusive


# --- expressions -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Number:
    value: float
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Name:
    id: str
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Unary:
    op: str  # "-"
    operand: "Expr"
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Binary:
    op: str  # one of + - * / ^
    left: "Expr"
    right: "Expr"
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Call:
    func: str  # one of evaluate.FUNCTIONS once checked
    args: tuple["Expr", ...]
    span: Span | None = field(default=None, compare=False)


Expr = Union[Number, Name, Unary, Binary, Call]

DOMAINS = ("real", "positive", "count", "category")
NOISE_SCALES = ("log", "identity")


# --- statements ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DataDecl:
    """`data N = params_N : positive`: the name N reads table column params_N."""

    name: str
    column: str  # equals name when the declaration gives no `= column`
    domain: str  # one of DOMAINS
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class CurvesDecl:
    """`curves by run`: the table holds learning curves, several rows (checkpoints) per training
    run, and column `run` says which run a row belongs to. Each law then adds a per-run offset
    (curves.py), so that the checkpoints of one run do not count as independent runs.
    `loss curves by run` does so for the law of loss alone: `responses` names the laws whose
    rows are checkpoints, every law where it is empty."""

    column: str
    span: Span | None = field(default=None, compare=False)
    responses: tuple[str, ...] = ()

    def covers(self, response: str) -> bool:
        return not self.responses or response in self.responses


@dataclass(frozen=True)
class Assign:
    """`R = d_model / n_layers` (a derived variable) or `eta = 1.25` (a fixed constant)."""

    name: str
    expr: Expr
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Distribution:
    """`Normal(0.3, 0.1)`, `StudentT(nu=4)`: positional and keyword arguments as written."""

    name: str
    args: tuple[Expr, ...] = ()
    kwargs: tuple[tuple[str, Expr], ...] = ()
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PriorDecl:
    """`alpha ~ Normal(0.3, 0.1) in [0, 1]`; `E[family] ~ LogNormal(mu_E, tau_E)`."""

    name: str
    distribution: Distribution
    lower: float | None = None  # bounds from `in [lower, upper]`; None where open
    upper: float | None = None
    group: str | None = None  # category column the parameter varies by
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class LawDecl:
    """`loss ~ A/N^a + B/D^b + E`: the response column on the left, the law on the right."""

    response: str
    expr: Expr
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class NoiseDecl:
    """`loss noise StudentT(nu=4) on log`."""

    response: str
    distribution: Distribution  # Normal or StudentT
    scale: str  # one of NOISE_SCALES
    span: Span | None = field(default=None, compare=False)


Statement = Union[DataDecl, CurvesDecl, Assign, PriorDecl, LawDecl, NoiseDecl]


@dataclass(frozen=True)
class Spec:
    statements: tuple[Statement, ...]
    source: str = field(default="", compare=False)
    filename: str = field(default="<spec>", compare=False)


# --- the checked spec --------------------------------------------------------------------------

@dataclass(frozen=True)
class Noise:
    family: str  # "Normal" | "StudentT"
    scale: str  # "log" | "identity"
    nu: float | None = None  # StudentT degrees of freedom (fixed)
    default: bool = False  # the spec declares no noise: the table decides (likelihood.with_default_noise)


@dataclass(frozen=True)
class Law:
    response: str  # a name in CheckedSpec.data
    expr: Expr  # names in it are data, derived, constants or parameters
    noise: Noise
    span: Span | None = field(default=None, compare=False)

    @property
    def sigma(self) -> str:
        """Name of the parameter that is this response's noise scale."""
        return f"sigma_{self.response}"

    @property
    def drift(self) -> str:
        """Name of the parameter that scales this law's misfit beyond the fitted data."""
        return f"drift_{self.response}"

    @property
    def run_scale(self) -> str:
        """Name of the parameter that scales the per-run offsets under `curves by` (curves.py)."""
        return f"tau_{self.response}"


@dataclass(frozen=True)
class Parameter:
    name: str
    prior: PriorDecl | None  # None: the compiler picks a default prior for the parameter's role
    group: str | None = None  # category data name it varies by (partially pooled), if any


@dataclass(frozen=True)
class CheckedSpec:
    """The spec as `check` proved it, and the questions asked about it: which names a law
    reads through derived variables, which parameters it uses, the derived variables' values.
    They are answered here once, so that preparing data, choosing roles, checking positivity
    and reporting agree."""

    filename: str
    source: str
    data: dict[str, DataDecl]  # every table column the spec reads, by name (responses included)
    derived: tuple[Assign, ...]  # derived variables, in dependency order
    constants: dict[str, float]
    parameters: dict[str, Parameter]  # in order of first use; sigma_<response> included
    laws: tuple[Law, ...]
    curves: CurvesDecl | None = None  # `curves by run`: rows are checkpoints of runs

    # the expression helpers import this module, hence the imports inside the methods below

    def law_for(self, response: str) -> Law:
        return next(law for law in self.laws if law.response == response)

    def has_curves(self, law: Law) -> bool:
        """Whether the law's rows are checkpoints of runs, each run with its offset (curves.py)."""
        return self.curves is not None and self.curves.covers(law.response)

    @property
    def curve_laws(self) -> tuple[Law, ...]:
        return tuple(law for law in self.laws if self.has_curves(law))

    def curves_text(self) -> str:
        """The `curves by` declaration in words: `curves by run`, or `loss curves by run`."""
        names = ", ".join(self.curves.responses)
        return f"{names + ' ' if names else ''}curves by {self.curves.column}"

    @cached_property
    def derived_by_name(self) -> dict[str, Assign]:
        return {assign.name: assign for assign in self.derived}

    def law_inputs(self, law: Law) -> tuple[str, ...]:
        """The numeric data and derived variables `law` reads directly (not the response)."""
        from .evaluate import names_in

        numeric = {n for n, d in self.data.items() if d.domain != "category"} | set(self.derived_by_name)
        return tuple(dict.fromkeys(n for n in names_in(law.expr) if n in numeric and n != law.response))

    def reads(self, expr: Expr) -> list[str]:
        """Every name `expr` reads, directly or through derived variables; a derived variable
        comes after the names it reads. Walked without recursion (chains of any length)."""
        from .evaluate import names_in
        from .names import depth_first

        def inner(name: str) -> list[str]:
            assign = self.derived_by_name.get(name)
            return names_in(assign.expr) if assign is not None else []

        return [name for event, name, _ in depth_first(names_in(expr), inner) if event == "exit"]

    def reads_data_only(self, expr: Expr) -> bool:
        """True where `expr` reads data (columns or derived variables) and else only constants:
        its value is known row by row before fitting."""
        from .evaluate import names_in

        names = names_in(expr)
        return (bool(names) and all(n in self.data or n in self.derived_by_name or n in self.constants for n in names)
                and not all(n in self.constants for n in names))

    def law_data(self, law: Law) -> list[str]:
        """The data and derived names a law reads (derived ones after the data they read), and the
        groups of its parameters."""
        found = dict.fromkeys(n for n in self.reads(law.expr) if n in self.data or n in self.derived_by_name)
        for name in self.law_parameters(law):
            group = self.parameters[name].group
            if group is not None:
                found.setdefault(group)
        return list(found)

    def law_parameters(self, law: Law) -> list[str]:
        """The parameters a law depends on (its priors' parameters too), its noise scale last."""
        from .evaluate import names_in
        from .names import arguments_of, depth_first

        def hyperparameters(name: str) -> list[str]:
            prior = self.parameters[name].prior
            arguments = arguments_of(prior.distribution) if prior is not None else ()
            return [n for argument in arguments for n in names_in(argument) if n in self.parameters]

        roots = [n for n in names_in(law.expr) + [law.sigma] if n in self.parameters]
        return [name for event, name, _ in depth_first(roots, hyperparameters) if event == "enter"]

    def derived_values(self, values: Mapping[str, Any], xp: Any) -> dict[str, Any]:
        """The derived variables computable from `values` (data by spec name) and the constants,
        in dependency order; one that reads a name missing from `values` is left out. `xp` is
        numpy or jax.numpy."""
        from .evaluate import evaluate, names_in

        env = {**self.constants, **values}
        found = {}
        for assign in self.derived:
            if all(name in env for name in names_in(assign.expr)):
                env[assign.name] = found[assign.name] = evaluate(assign.expr, env, xp)
        return found
