"""The errors a user can make, each carrying structured diagnostics.

Errors are data (as in sqlglot and formulaic): each problem is a `Diagnostic` record that tests
compare field by field; `render` turns them into the text people read:

    models/x.law:3:14: error: unknown name 'alhpa'
        loss ~ A/N^alhpa + E
                   ^~~~~
    hint: did you mean 'alpha'?

One base class, `InfscaleError`, and under it one class per thing the user must fix (as lark,
sqlglot and formulaic split theirs): `SpecError` the .law text; `DataError` a table or other
input read from disk (a runs table, a tracker's store, a fit folder); `ConfigError` an option
or a config file (sweep and latency TOML, report options, conditions such as "loss <= 3").
The CLI catches the base and exits 2; `LawError`, the base's old name, still catches them all.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a spec file (line/column) or in a data table (table_column/rows)."""

    message: str
    line: int | None = None  # 1-based, in the spec file
    column: int | None = None  # 1-based
    end_column: int | None = None  # exclusive; the caret spans column..end_column
    hint: str | None = None
    filename: str | None = None  # spec file or data table
    source_line: str | None = None  # the spec line, for the caret display
    table_column: str | None = None  # data errors: the offending column of the table
    rows: tuple[int, ...] = ()  # data errors: row numbers, the table's index (first ones only)
    n_rows: int = 0  # data errors: how many rows are affected in all

    def render(self) -> str:
        where = self.filename
        if self.line is not None:
            where = f"{where or '<spec>'}:{self.line}:{self.column or 1}"
        text = f"{where}: error: {self.message}" if where else f"error: {self.message}"
        if self.source_line is not None and self.column is not None:
            width = max(1, (self.end_column or self.column + 1) - self.column)
            line, column, width = _window(self.source_line.rstrip(), self.column, width)
            text += f"\n    {line}\n    {' ' * (column - 1)}^{'~' * (width - 1)}"
        if self.table_column is not None and self.rows:
            shown = ", ".join(str(r) for r in self.rows)
            more = f" and {self.n_rows - len(self.rows)} more" if self.n_rows > len(self.rows) else ""
            text += f"\n    column '{self.table_column}', rows {shown}{more} (counted from 0, the header not counted)"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


SHOWN_WIDTH = 100  # characters of a long source line shown around the caret


def listed(items, limit: int = 20) -> str:
    """'a, b, c' for a hint, cut after `limit` items with ' and K more' so that nothing seems missing."""
    items = [str(item) for item in items]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _window(line: str, column: int, width: int) -> tuple[str, int, int]:
    """A long line cut to SHOWN_WIDTH characters from just before `column`, with '...' where
    cut; the caret's column and width in the cut line."""
    if len(line) <= SHOWN_WIDTH:
        return line, column, width
    start = max(0, min(column - 11, len(line) - SHOWN_WIDTH))
    prefix = "..." if start else ""
    shown = prefix + line[start:start + SHOWN_WIDTH] + ("..." if start + SHOWN_WIDTH < len(line) else "")
    column = column - start + len(prefix)
    return shown, column, max(1, min(width, len(prefix) + SHOWN_WIDTH + 1 - column))


class InfscaleError(Exception):
    """Raised for any bad input; `.diagnostics` holds every problem found."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        super().__init__(render(self.diagnostics))


class SpecError(InfscaleError):
    """The .law spec is wrong: it cannot be read or parsed, or its names, checks or priors fail."""


class DataError(InfscaleError):
    """An input read from disk is wrong: a table that cannot be read, lacks a column or holds
    bad values, a runs table, a tracker's store or export, a fit folder."""


class ConfigError(InfscaleError):
    """An option or config file is wrong: a command-line option's value, a sweep or latency
    TOML file, a report option or condition, or a package that the chosen option needs."""


LawError = InfscaleError  # the base's name before the hierarchy: user code catching it keeps working


def render(diagnostics: list[Diagnostic], limit: int = 20) -> str:
    """All diagnostics, one block each, with '... and N more' past `limit`."""
    blocks = [d.render() for d in diagnostics[:limit]]
    if len(diagnostics) > limit:
        blocks.append(f"... and {len(diagnostics) - limit} more")
    return "\n".join(blocks)


def require_extra(module: str, extra: str, needed_for: str):
    """Import an optional package, or say which extra of infscale-dsl installs it. A package
    that is there but lacks a dependency of its own is reported as that, not as absent."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        install = f"pip install 'infscale-dsl[{extra}]'"
        missing = error.name or module
        if missing.partition(".")[0] != module.partition(".")[0]:
            raise ConfigError(Diagnostic(
                f"{needed_for} needs {module!r}, which is installed but cannot import its dependency {missing!r}",
                hint=f"install it with its dependencies: {install}")) from None
        raise ConfigError(Diagnostic(f"{needed_for} needs the {module!r} package, which is not installed",
                                     hint=install)) from None
