"""The .law language: parse a spec, check it against a table's columns, load it from a file.

    checked = load_spec("models/bian2025.law", columns=table.columns)
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..errors import Diagnostic, LawError
from .ast import CheckedSpec
from .check import check
from .parse import parse

__all__ = ["parse", "check", "load_spec"]


def load_spec(path_or_source: str | Path, columns: Iterable[str] | None = None) -> CheckedSpec:
    """A checked spec from a file (a Path, or a string naming an existing file) or from source text."""
    if isinstance(path_or_source, Path) or _is_file(path_or_source):
        path = Path(path_or_source)
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as error:
            raise LawError(Diagnostic(f"cannot read spec: {error.strerror}", filename=str(path),
                                      hint="give the path of a .law file")) from None
        return check(parse(source, str(path)), columns)
    if path_or_source.endswith(".law") and "\n" not in path_or_source:
        raise LawError(Diagnostic("spec file not found", filename=path_or_source,
                                  hint="check the path (or pass the spec's text, not a file name)"))
    return check(parse(path_or_source), columns)


def _is_file(text: str) -> bool:
    if "\n" in text or len(text) > 4096:
        return False
    try:
        return Path(text).is_file()
    except OSError:
        return False
