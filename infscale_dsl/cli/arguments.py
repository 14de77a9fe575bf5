"""What every command's arguments share: help that shows each option's default, `-q/--quiet`,
and argument types that refuse bad numbers while parsing (argparse exits 2 with the option's
name), so that `--chains 0` or `--flops nan` fails at once, not after minutes of compiling."""
from __future__ import annotations

import argparse
import math

from ..files import STDIO, STDIN_NAME


class HelpFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" to an option's help, as argparse.ArgumentDefaultsHelpFormatter
    does, except where the help states its default in words already, and for flags and
    defaults that mean "not given" (None, False, an empty list), which would print as noise."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        default = action.default
        if (not action.option_strings or "default" in help_text or default is None or default is False
                or default == [] or default == argparse.SUPPRESS):
            return help_text
        return f"{help_text} (default: %(default)s)"


class RawDescriptionHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """HelpFormatter that keeps the description and epilog as written (examples, tables)."""


def table_name(argument: str) -> str:
    """How diagnostics name a table argument: its path, or <stdin> for `-`."""
    return STDIN_NAME if argument == STDIO else argument


def add_quiet(parser: argparse.ArgumentParser, what: str = "no progress bars or status lines") -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help=what)


def positive_int(text: str) -> int:
    """A whole number >= 1 (chains, draws, workers)."""
    return _whole(text, 1)


def count(text: str) -> int:
    """A whole number >= 0 (seeds, untimed warm-up generations)."""
    return _whole(text, 0)


def _whole(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, not {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (FLOPs, token counts, prices); `1e21` style is fine."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number >= 0 (CPUs or GPUs a run needs)."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def fraction(text: str) -> float:
    """A number in (0, 1] (MFU); probabilities use `probability`."""
    value = _finite(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], not {text}")
    return value


def probability(text: str) -> float:
    """A number in [0, 1]."""
    value = _finite(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], not {text}")
    return value


def open_probability(text: str) -> float:
    """A number in (0, 1) (NUTS target acceptance)."""
    value = _finite(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, not {text}")
    return value


def fraction_list(text: str) -> list[float]:
    """Comma-separated numbers strictly between 0 and 1, e.g. "0.1,0.2" (shares of the rows)."""
    return [open_probability(item) for item in text.split(",")]


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value
