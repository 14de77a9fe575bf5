"""The .law language: parse a spec, check it against a table's columns, load it from a file.

    checked = load_spec("models/bian2025.law", columns=table.columns)
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..errors import Diagnostic, SpecError
from .ast import CheckedSpec
from .check import check
from .parse import parse

__all__ = ["parse", "check", "load_spec"]


def load_spec(path_or_source: str | Path, columns: Iterable[str] | None = None) -> CheckedSpec:
    """A checked spec from a file (a Path, or a string naming an existing file) or from source text."""
    if isinstance(path_or_source, Path) or _is_file(path_or_source):
        path = Path(path_or_source)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise SpecError(Diagnostic(f"cannot read spec: {error.strerror}", filename=str(path),
                                       hint="give the path of a .law file")) from None
        return check(parse(_decode(data, str(path)), str(path)), columns)
    if path_or_source.endswith(".law") and "\n" not in path_or_source:
        raise SpecError(Diagnostic("spec file not found", filename=path_or_source,
                                   hint="check the path (or pass the spec's text, not a file name)"))
    return check(parse(path_or_source), columns)


def _is_file(text: str) -> bool:
    if "\n" in text or len(text) > 4096:
        return False
    try:
        return Path(text).is_file()
    except OSError:
        return False


def _decode(data: bytes, filename: str) -> str:
    """The text of a spec file (a UTF-8 byte-order mark is dropped); a byte that is not UTF-8 is
    a diagnostic at its line and column."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        line_end = data.find(b"\n", error.start)
        line = data[line_start:None if line_end < 0 else line_end]
        column = len(data[line_start:error.start].decode("utf-8", errors="replace")) + 1
        raise SpecError(Diagnostic(
            f"the spec is not UTF-8 text: byte {error.start} of the file (0x{data[error.start]:02x}) "
            "cannot be read",
            line=data.count(b"\n", 0, error.start) + 1, column=column, end_column=column + 1,
            filename=filename, source_line=line.decode("utf-8", errors="replace"),
            hint="save the file as UTF-8 (specs use letters, digits and + - * / ^ ( ) [ ] ~ = : ,)",
        )) from None
