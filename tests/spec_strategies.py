"""Random .law specs that follow the grammar, for the fuzz tests and benchmarks/spec_fuzz.py.

One generator, two drivers: `Picker` draws from hypothesis (tests shrink a failure to a small
spec) or from `random.Random` (the benchmark makes 1e5 cases quickly). Statements are well
formed; names, function names, arities, distributions and numbers are anything, so each case
exercises the checker rather than the syntax errors the edit fuzzer already covers.
"""
from __future__ import annotations

import random
import re
import string

from hypothesis import strategies as st

from infscale_dsl.language.ast import Binary, Call, Name, Number, Unary
from infscale_dsl.language.distributions import DISTRIBUTIONS, TRUNCATABLE
from infscale_dsl.language.evaluate import FUNCTIONS as KNOWN_FUNCTIONS

COLUMNS = ["N", "D", "loss", "d_model", "n_layers", "family", "tpot_ms"]
NAMES = COLUMNS + ["A", "B", "E", "a", "alpha", "eps", "mu_E", "tau_E", "sigma_loss", "x", "R", "inf"]
FUNCTIONS = ["log", "exp", "sqrt", "log1p", "min", "max", "info", "foo", "power", "Exp", "Normal",
             "eval", "__import__", "sum", "show_config"]
FAMILIES = list(DISTRIBUTIONS) + ["Foo", "Normall", "TruncatedNormal", "Dirichlet"]
NUMBERS = ["0", "1", "2", "0.5", "1e9", "1e-3", "1e308", "1e999", "1e-320", "3.", ".5", "12345678901234567890"]
DOMAINS = ["real", "positive", "count", "category", "positiv"]
OPERATORS = ["+", "-", "*", "/", "^"]
# a sound spec uses only names that are no typo of each other, known functions and families
SOUND_NAMES = ["N", "D", "d_model", "A", "B", "E", "alpha", "eps", "c0", "x"]
HYPERPARAMETERS = ["mu_E", "tau_E"]
SOUND_NUMBERS = ["1", "2", "0.5", "1e9", "1e-3", "3.", ".5"]
MAX_LONG = 260  # long laws and deep nesting reach past the parser's limit of 200 levels


class Picker:
    """Draws through `integer(low, high)` (inclusive); hypothesis' `draw` or a seeded Random."""

    def __init__(self, draw=None, seed: int | None = None, sound: bool = False):
        self._draw, self._random = draw, random.Random(seed)
        self.sound = sound  # draw specs that mostly pass check, to test what comes after it

    def integer(self, low: int, high: int) -> int:
        if self._draw is not None:
            return self._draw(st.integers(low, high))
        return self._random.randint(low, high)

    def choice(self, options):
        return options[self.integer(0, len(options) - 1)]

    def chance(self, percent: int) -> bool:
        return self.integer(1, 100) <= percent


def name(p: Picker) -> str:
    if p.sound:
        return p.choice(SOUND_NAMES)
    if p.chance(85):
        return p.choice(NAMES)
    rest = "".join(p.choice(string.ascii_lowercase + "0123456789_") for _ in range(p.integer(0, 6)))
    return p.choice(string.ascii_letters + "_") + rest


def number(p: Picker) -> str:
    if p.sound:
        return p.choice(SOUND_NUMBERS)
    if p.chance(70):
        return p.choice(NUMBERS)
    return f"{p.integer(0, 10**6) / 10**p.integer(0, 6):g}"


def expression(p: Picker, budget: int) -> str:
    """Expression text with at most about `budget` nodes; sometimes a long chain or deep nest."""
    if budget > 8 and p.chance(3):
        return _long(p)
    if budget <= 1 or p.chance(25):
        return number(p) if p.chance(35) else name(p)
    kind = p.integer(0, 9)
    if kind <= 4:
        return f"{expression(p, budget // 2)} {p.choice(OPERATORS)} {expression(p, budget // 2)}"
    if kind == 5:
        return f"-{expression(p, budget - 1)}"
    if kind == 6:
        return f"({expression(p, budget - 1)})"
    function = p.choice(list(KNOWN_FUNCTIONS) if p.sound else FUNCTIONS)
    arity = KNOWN_FUNCTIONS[function].arity if p.sound else p.integer(0, 3)
    return f"{function}({', '.join(expression(p, budget // 3) for _ in range(arity))})"


def _long(p: Picker) -> str:
    n = p.integer(2, 150 if p.sound else MAX_LONG)
    style = p.integer(0, 3)
    if style == 0:  # a law with many terms: A + A + ... + A
        return f" {p.choice(OPERATORS)} ".join(name(p) for _ in range(n))
    if style == 1:
        return "-" * n + name(p)
    if style == 2:
        return "(" * n + name(p) + ")" * n
    return "log(" * n + number(p) + ")" * n


def distribution(p: Picker) -> str:
    if p.sound:
        family = p.choice(FAMILIES[:len(DISTRIBUTIONS)])
        size = len(DISTRIBUTIONS[family].params)
        arguments = (number(p) if p.chance(80) else p.choice(HYPERPARAMETERS) for _ in range(size))
        return f"{family}({', '.join(arguments)})"
    arguments = [expression(p, 3) if p.chance(40) else ("-" if p.chance(25) else "") + number(p)
                 for _ in range(p.integer(0, 3))]
    if p.chance(30):
        arguments.append(f"{p.choice(['loc', 'scale', 'df', 'rate', 'low', 'high', 'nu', 'foo'])}={number(p)}")
    return f"{p.choice(FAMILIES)}({', '.join(arguments)})"


def bound(p: Picker) -> str:
    return p.choice(["", "inf", "-inf", "0", "1", "-1", "1e999", "2"])


def statement(p: Picker) -> str:
    kind = p.integer(0, 9)
    if kind == 0 and p.chance(20):  # learning curves of every law or of one: any names, columns or not
        response = f"{name(p)} " if p.chance(40) else ""
        return f"{response}curves by {name(p)}"
    if kind == 0:
        column = f" = {p.choice(COLUMNS)}" if p.chance(30) else ""
        return f"data {name(p)}{column} : {p.choice(DOMAINS[:4] if p.sound else DOMAINS)}"
    if kind <= 2:  # constants and derived variables, with any function and arity
        return f"{name(p)} = {expression(p, p.integer(1, 12))}"
    if kind <= 5:
        group = f"[{p.choice(COLUMNS)}]" if p.chance(15) else ""
        bounds = f" in [{bound(p)}, {bound(p)}]" if p.chance(25) else ""
        return f"{name(p)}{group} ~ {distribution(p)}{bounds}"
    if kind == 6:
        family = p.choice(["Normal", "StudentT", "StudentT(nu=4)", "StudentT(nu=-1)", "Normal(1)", "Foo"])
        scale = f" on {p.choice(['log', 'identity', 'sqrt'])}" if p.chance(50) else ""
        return f"{p.choice(['loss', 'tpot_ms', 'x'])} noise {family}{scale}"
    return f"{p.choice(['loss', 'loss', 'tpot_ms', name(p)])} ~ {expression(p, p.integer(1, 30))}"


def spec_source(p: Picker) -> str:
    """A spec of 1 to 8 statements, most with a law."""
    if p.sound:
        return _sound_spec(p)
    lines = [statement(p) for _ in range(p.integer(0, 7))]
    if p.chance(85):
        lines.insert(p.integer(0, len(lines)), f"loss ~ {expression(p, p.integer(1, 30))}")
    return "\n".join(lines) + ("\n" if p.chance(50) else "")


def _sound_spec(p: Picker) -> str:
    """A law, priors (some grouped, some bounded) on names it uses, maybe a noise model."""
    law = expression(p, p.integer(1, 20))
    lines = ["data family : category"]
    for used in dict.fromkeys(re.findall(r"[A-Za-z_]\w*", law)):
        if used not in SOUND_NAMES or used in COLUMNS or p.chance(50):
            continue
        if p.chance(25):
            lines.append(f"{used}[family] ~ {p.choice(['Normal', 'LogNormal'])}(mu_E, {number(p)})")
            continue
        prior = distribution(p)
        bounded = prior.split("(")[0] in TRUNCATABLE and p.chance(50)
        lines.append(f"{used} ~ {prior}" + (" in [0, 3]" if bounded else ""))
    if p.chance(30):
        lines.append(f"loss noise {p.choice(['Normal', 'StudentT(nu=5)'])} on {p.choice(['log', 'identity'])}")
    lines.insert(p.integer(1, len(lines)), f"loss ~ {law}")
    return "\n".join(lines)


@st.composite
def specs(draw, sound: bool = False) -> str:
    return spec_source(Picker(draw, sound=sound))


# --- expression trees, for the round trip parse(unparse(e)) == e -------------------------------

KEYWORDS = {"data", "noise", "on", "in"}
identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True).filter(lambda s: s not in KEYWORDS)
call_names = identifiers.filter(lambda s: not s[0].isupper())  # capitalised calls are distributions
numbers = st.floats(min_value=0, max_value=1e300, allow_nan=False, allow_infinity=False).map(abs)


def _compound(children):
    return st.one_of(
        st.builds(Unary, st.just("-"), children),
        st.builds(Binary, st.sampled_from(OPERATORS), children, children),
        st.builds(Call, call_names, st.lists(children, max_size=3).map(tuple)),
    )


expressions = st.recursive(st.builds(Number, numbers) | st.builds(Name, identifiers), _compound, max_leaves=25)
