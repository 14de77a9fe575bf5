"""What each parameter does in its law, read from the expression tree.

The compiler picks default priors and a sampling parametrisation by role:
- a *coefficient* multiplies a power-law term `c * X1^e1 * X2^e2 ...` of positive data
  (`A/N^alpha`, `eps * R^alpha`, `c2 * n_layers * d_model^2`); it is sampled as the log of the
  term's value at the data's typical X, which removes the ridge between c and its exponents.
  Powers of data that multiply a whole sum belong to each of its terms: in Gadre's
  `(a * M^eta + b / M^eta) / C^eta` the terms are `a M^eta C^-eta` and `b M^-eta C^-eta`;
- an *exponent* appears to the right of `^`;
- an *offset* is a bare addend of a sum (`E` in `E + A/N^alpha`);
- a *scale* multiplies a power with a fitted exponent of something other than plain data
  (`B / (U + U * RD * (...))^beta`, the data-constrained law): positive, of unknown size;
- anything else is *free*.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..language.ast import Binary, Call, CheckedSpec, Expr, Name, Number, Unary
from ..language.evaluate import names_in, nodes, unparse


@dataclass(frozen=True)
class PowerTerm:
    """A product `coefficient * prod(base_i ^ exponent_i)`; exponents are expressions of
    numbers and parameters (a division contributes a negated exponent)."""

    coefficient: str
    response: str  # the law the term belongs to
    powers: tuple[tuple[str, Expr], ...]  # (data or derived name, exponent expression)
    node: Expr  # the product that holds the coefficient
    outer: tuple[tuple[int, Expr], ...] = ()  # (+1 | -1, factor): data powers multiplying its sum

    @property
    def text(self) -> str:
        """The whole term, e.g. `a * M^eta / C^eta`."""
        whole = self.node
        for sign, factor in self.outer:
            whole = Binary("*" if sign == 1 else "/", whole, factor)
        return unparse(whole)


@dataclass(frozen=True)
class OffsetSum:
    """An offset and the power terms added to it (`E + A/N^alpha + B/D^beta`, or Gadre's
    `E + (a * M^eta + b / M^eta) / C^eta`): compile.py may sample them jointly, as the sum's
    value at typical X and each part's share of it."""

    offset: str
    coefficients: tuple[str, ...]
    response: str
    # a coefficient whose term multiplies the whole sum as `(k + eps * R^alpha)`, as in the seed
    # paper's law: the data see the sum times that factor, so compile.py samples their product
    factor: str | None = None


@dataclass(frozen=True)
class Roles:
    role: dict[str, str]  # parameter -> coefficient | exponent | offset | scale | free | noise | drift
    #                       | run_scale (curves.py) | hyper
    terms: tuple[PowerTerm, ...]  # one per coefficient
    sums: tuple[OffsetSum, ...] = ()  # each scalar offset with the power terms added to it
    # coefficient -> the positive number its term is added to (`1 + eps * R^alpha`): the term's
    # size is relative to that number, not to the response
    added_to: dict[str, float] = field(default_factory=dict)

    def term_for(self, coefficient: str) -> PowerTerm:
        return next(term for term in self.terms if term.coefficient == coefficient)


def _factors(node: Expr, sign: int = 1) -> list[tuple[int, Expr]]:
    """Flatten a chain of * and / into (+1 numerator | -1 denominator, factor) pairs."""
    if isinstance(node, Binary) and node.op in "*/":
        right_sign = sign if node.op == "*" else -sign
        return _factors(node.left, sign) + _factors(node.right, right_sign)
    return [(sign, node)]


def _data_factors(base: Expr, data_names: set[str], spec: CheckedSpec) -> list[tuple[int, str | None]]:
    """`base` as (sign, data name) factors of a product/quotient of numeric data; a factor
    that is anything else comes back as (sign, None)."""
    factors = []
    for sign, factor in _factors(base):
        numeric = (isinstance(factor, Name) and factor.id in data_names
                   and not (factor.id in spec.data and spec.data[factor.id].domain == "category"))
        factors.append((sign, factor.id if numeric else None))
    return factors


def _negate(expr: Expr) -> Expr:
    return expr.operand if isinstance(expr, Unary) else Unary("-", expr)


def _data_powers(sign: int, factor: Expr, spec: CheckedSpec) -> list[tuple[str, Expr]] | None:
    """One factor of a product (`N^alpha`, `(d_model / n_layers)^a`, `D`) as (data name,
    exponent) pairs, or None if it is not a power of numeric data with a data-free exponent."""
    data_names = set(spec.data) | set(spec.derived_by_name)
    base, exponent = factor, Number(1.0)
    if isinstance(factor, Binary) and factor.op == "^":
        base, exponent = factor.left, factor.right
    if any(name in data_names for name in names_in(exponent)):
        return None
    powers = []
    for base_sign, name in _data_factors(base, data_names, spec):
        if name is None:
            return None
        powers.append((name, exponent if sign * base_sign == 1 else _negate(exponent)))
    return powers


def _as_power_term(node: Expr, response: str, spec: CheckedSpec, candidates: set[str],
                   outer: tuple[tuple[int, Expr], ...] = ()) -> PowerTerm | None:
    """`node` (times the data powers `outer` that multiply its sum) as a power-law term whose
    coefficient is one of `candidates`, or None."""
    coefficient = None
    powers: list[tuple[str, Expr]] = []
    for sign, factor in list(_factors(node)) + list(outer):
        if isinstance(factor, Number):
            return None  # keep literal factors visible; such terms are rare in laws
        if isinstance(factor, Name) and factor.id in candidates and sign == 1 and coefficient is None:
            coefficient = factor.id
            continue
        factor_powers = _data_powers(sign, factor, spec)
        if factor_powers is None:
            return None
        powers += factor_powers
    if coefficient is None or not powers:
        return None
    return PowerTerm(coefficient, response, tuple(powers), node, tuple(outer))


def _scale_factor(product: Expr, candidates: set[str], spec: CheckedSpec) -> str | None:
    """The parameter that scales `product` from outside a power with a fitted exponent whose base
    is not plain data (`B / (U + U * RD * (1 - exp(-(D/U - 1) / RD)))^beta`): positive, and of
    unknown size until fitted, so not a centred coefficient but a wide log-scale prior."""
    factors = _factors(product)
    names = [f.id for sign, f in factors if sign == 1 and isinstance(f, Name) and f.id in candidates]
    powered = any(isinstance(f, Binary) and f.op == "^" and any(n in spec.parameters for n in names_in(f.right))
                  for _, f in factors)
    return names[0] if len(names) == 1 and powered else None


def _products(node: Expr, spec: CheckedSpec, outer: tuple[tuple[int, Expr], ...] = ()):
    """Every maximal product/quotient chain in the tree (outermost first), each with the data
    powers that multiply the sum it is an addend of: in `(a * M^eta + b / M^eta) / C^eta`,
    `a * M^eta` comes with ((-1, C^eta),)."""
    if isinstance(node, Binary) and node.op in "*/":
        yield node, outer
        factors = _factors(node)
        data_powers = tuple((sign, f) for sign, f in factors if _data_powers(sign, f, spec) is not None)
        for sign, factor in factors:
            distributes = (sign == 1 and isinstance(factor, Binary) and factor.op == "+"
                           and len(data_powers) == len(factors) - 1)
            yield from _products(factor, spec, outer + data_powers if distributes else ())
    elif isinstance(node, Binary) and node.op == "+":
        yield from _products(node.left, spec, outer)
        yield from _products(node.right, spec, outer)
    elif isinstance(node, Binary):
        yield from _products(node.left, spec)
        yield from _products(node.right, spec)
    elif isinstance(node, Unary):
        yield from _products(node.operand, spec)
    elif isinstance(node, Call):
        for arg in node.args:
            yield from _products(arg, spec)


def _sums(node: Expr, inside_sum: bool = False):
    """Every maximal chain of `+` in the tree."""
    if isinstance(node, Binary) and node.op == "+":
        if not inside_sum:
            yield node
        yield from _sums(node.left, True)
        yield from _sums(node.right, True)
        return
    children = ((node.left, node.right) if isinstance(node, Binary) else (node.operand,) if isinstance(node, Unary)
                else node.args if isinstance(node, Call) else ())
    for child in children:
        yield from _sums(child)


def _added_products(addend: Expr, spec: CheckedSpec) -> list[Expr]:
    """The products an addend of a sum adds to it: itself, or, where it is a sum times data
    powers (`(a * M^eta + b / M^eta) / C^eta`), the products of that inner sum."""
    if not (isinstance(addend, Binary) and addend.op in "*/"):
        return []
    factors = _factors(addend)
    inner = [f for sign, f in factors if sign == 1 and isinstance(f, Binary) and f.op == "+"]
    others = [(sign, f) for sign, f in factors if not any(f is i for i in inner)]
    if len(inner) == 1 and all(_data_powers(sign, f, spec) is not None for sign, f in others):
        return [p for a in _addends(inner[0]) for p in _added_products(a, spec)]
    return [addend]


def _offset_sums(spec: CheckedSpec, role: dict[str, str], terms: list[PowerTerm]) -> list[OffsetSum]:
    sums = []
    for law in spec.laws:
        for chain in _sums(law.expr):
            addends = list(_addends(chain))
            offsets = [a.id for a in addends if isinstance(a, Name) and role.get(a.id) == "offset"
                       and spec.parameters[a.id].group is None]
            products = [p for a in addends for p in _added_products(a, spec)]
            added = tuple(t.coefficient for t in terms if any(t.node is p for p in products))
            if len(offsets) == 1 and added and offsets[0] not in {s.offset for s in sums}:
                sums.append(OffsetSum(offsets[0], added, law.response, _factor_of(law.expr, chain, terms)))
    return sums


def _factor_of(law: Expr, chain: Expr, terms: list[PowerTerm]) -> str | None:
    """The coefficient c where the law is `chain * (k + c * X^e ...)` (either order), k > 0."""
    if not (isinstance(law, Binary) and law.op == "*"):
        return None
    other = law.right if law.left is chain else law.left if law.right is chain else None
    addends = list(_addends(other)) if other is not None else []
    if len(addends) != 2 or not any(isinstance(a, Number) and a.value > 0 for a in addends):
        return None
    return next((t.coefficient for t in terms if any(t.node is a for a in addends)), None)


def _added_to_numbers(spec: CheckedSpec, terms: list[PowerTerm]) -> dict[str, float]:
    """Coefficients whose term is an addend of a sum that also adds a positive number."""
    added = {}
    for law in spec.laws:
        for chain in _sums(law.expr):
            addends = list(_addends(chain))
            numbers = [a.value for a in addends if isinstance(a, Number) and a.value > 0]
            for term in terms:
                if numbers and any(term.node is a for a in addends):
                    added.setdefault(term.coefficient, sum(numbers))
    return added


def _addends(node: Expr):
    if isinstance(node, Binary) and node.op == "+":
        yield from _addends(node.left)
        yield from _addends(node.right)
    else:
        yield node


def find_roles(spec: CheckedSpec) -> Roles:
    laws = [law.expr for law in spec.laws]
    uses: dict[str, int] = {}
    exponents: set[str] = set()
    offsets: set[str] = set()
    for expr in laws:
        for node in nodes(expr):
            if isinstance(node, Name) and node.id in spec.parameters:
                uses[node.id] = uses.get(node.id, 0) + 1
            if isinstance(node, Binary) and node.op == "^":
                exponents.update(n for n in names_in(node.right) if n in spec.parameters)
            if isinstance(node, Binary) and node.op == "+":
                offsets.update(a.id for a in (node.left, node.right) if isinstance(a, Name))
        offsets.update(a.id for a in _addends(expr) if isinstance(a, Name))

    # a coefficient must be scalar and used exactly once, so the term owns it
    candidates = {
        name for name, count in uses.items()
        if count == 1 and name not in exponents and spec.parameters[name].group is None
    }
    terms: list[PowerTerm] = []
    for law in spec.laws:
        for product, outer in _products(law.expr, spec):
            term = _as_power_term(product, law.response, spec, candidates, outer)
            if term is not None and term.coefficient not in {t.coefficient for t in terms}:
                terms.append(term)
    coefficients = {term.coefficient for term in terms}
    scales = {name for law in spec.laws for product, _ in _products(law.expr, spec)
              for name in [_scale_factor(product, candidates - coefficients, spec)] if name}

    run_scales = {law.run_scale for law in spec.curve_laws}
    role = {}
    for name in spec.parameters:
        if name in coefficients:
            role[name] = "coefficient"
        elif name in exponents:
            role[name] = "exponent"
        elif name in offsets:
            role[name] = "offset"
        elif name in scales:
            role[name] = "scale"
        elif name in uses:
            role[name] = "free"
        elif name.startswith("sigma_"):
            role[name] = "noise"
        elif name.startswith("drift_"):
            role[name] = "drift"
        elif name in run_scales:
            role[name] = "run_scale"
        else:
            role[name] = "hyper"  # used only inside another parameter's prior
    return Roles(role, tuple(terms), tuple(_offset_sums(spec, role, terms)), _added_to_numbers(spec, terms))
