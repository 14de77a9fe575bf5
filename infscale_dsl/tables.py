"""Tables on disk: CSV or parquet by the file's extension, read with every problem named and
written atomically (files.atomic_write, never half a file). The tables a spec is fitted on, the
runs table (nn/runs.py) and latency tables (cli/latency.py) all go through here, so the three
agree on formats; pandas is imported here, so the CLI imports this module only when it runs.
"""
from __future__ import annotations

import io
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from .errors import DataError, Diagnostic
from .files import STDIN_NAME, STDIO, TABLE_SUFFIXES, atomic_write, check_output_file


def read_table(path: str | Path) -> pd.DataFrame:
    """A .csv or .parquet (.pq) table; `-` reads standard input, CSV (or Parquet, by its first bytes)."""
    if str(path) == STDIO:
        return _read_stdin()
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(Diagnostic(f"cannot read a '{suffix or path.name}' table", filename=str(path),
                                  hint="give a .csv or .parquet file, or - for standard input"))
    if suffix == ".csv":
        if _is_parquet(path):
            raise DataError(Diagnostic("this file is Parquet, not CSV", filename=str(path),
                                       hint=f"rename it to {path.with_suffix('.parquet').name}"))
        return _read_csv_source(path, str(path))
    try:
        _refuse_repeated_columns(pq.read_schema(path).names, str(path))
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise DataError(Diagnostic("table not found", filename=str(path), hint="check the path")) from None
    except (OSError, ValueError) as error:
        raise _unreadable(error, str(path)) from None


PARQUET_MAGIC = b"PAR1"  # a Parquet file's first (and last) four bytes


def _is_parquet(path: Path) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(4) == PARQUET_MAGIC
    except OSError:
        return False  # reading it as CSV says what is wrong


def _read_stdin() -> pd.DataFrame:
    buffer = getattr(sys.stdin, "buffer", None)  # absent where a test or a notebook put text there
    if buffer is None:
        return _read_csv_source(io.StringIO(sys.stdin.read()), STDIN_NAME)
    data = buffer.read()
    if data[:4] == PARQUET_MAGIC:
        try:
            _refuse_repeated_columns(pq.read_schema(io.BytesIO(data)).names, STDIN_NAME)  # as a file's
            return pd.read_parquet(io.BytesIO(data))
        except (OSError, ValueError) as error:
            raise _unreadable(error, STDIN_NAME) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(Diagnostic(f"standard input is not UTF-8 text ({error.reason} at byte {error.start})",
                                   filename=STDIN_NAME, hint="pipe a CSV file (UTF-8) or a Parquet file")) from None
    return _read_csv_source(io.StringIO(text), STDIN_NAME)


def _read_csv_source(source: Path | io.StringIO, name: str) -> pd.DataFrame:
    """A CSV file or text; its header is checked as written, before pandas makes repeated
    names unique (it would read a second 'loss' as 'loss.1' and fit the first without a word)."""
    try:
        header = pd.read_csv(source, header=None, nrows=1, dtype=str, keep_default_na=False)
        _refuse_repeated_columns([str(n) for n in header.iloc[0]] if len(header) else [], name)
        if isinstance(source, io.StringIO):
            source.seek(0)
        table = pd.read_csv(source)
    except FileNotFoundError:
        raise DataError(Diagnostic("table not found", filename=name, hint="check the path")) from None
    except (OSError, ValueError, pd.errors.ParserError) as error:  # EmptyDataError is a ValueError
        raise _unreadable(error, name) from None
    only = str(table.columns[0]) if len(table.columns) == 1 else ""
    separator = next((mark for mark in (";", "\t", "|") if mark in only), None)
    if separator is not None:  # a European-style or tab-separated file read as one column
        raise DataError(Diagnostic(f"the header reads as one column, {only!r}: the file separates its "
                                   f"columns with {separator!r}", filename=name,
                                   hint="save it with commas between columns, e.g. with pandas' DataFrame.to_csv"))
    return table


def _refuse_repeated_columns(names: list[str], name: str) -> None:
    repeated = [column for column, count in Counter(names).items() if count > 1 and column != ""]
    if repeated:
        raise DataError([Diagnostic(f"column '{column}' appears {names.count(column)} times in the header",
                                   filename=name, table_column=column, hint="give each column its own name")
                        for column in repeated])


def _unreadable(error: Exception, name: str) -> DataError:
    return DataError(Diagnostic(f"cannot read table: {error}", filename=name,
                               hint="save it as a plain CSV with a header row, or as parquet"))


def write_table(frame: pd.DataFrame, path: str | Path) -> Path | str:
    """Write a .csv or .parquet table atomically (never a half-written file); `-` writes CSV
    to standard output."""
    path = check_output_file(path, TABLE_SUFFIXES, "table", stdout_ok=True)
    if path == STDIO:
        frame.to_csv(sys.stdout, index=False)
        return path
    return write_frame(frame, path)


def read_frame(path: str | Path) -> pd.DataFrame:
    """A .csv file as CSV, any other as parquet. pandas' and pyarrow's errors (OSError,
    ValueError) go to the caller, which knows what the file should be and how to say it."""
    return pd.read_csv(path) if Path(path).suffix.lower() == ".csv" else pd.read_parquet(path)


def write_frame(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a .csv path as CSV, any other as parquet, atomically; the caller checked the extension."""
    if Path(path).suffix.lower() == ".csv":
        return atomic_write(path, lambda temp: frame.to_csv(temp, index=False))
    return atomic_write(path, lambda temp: frame.to_parquet(temp, index=False))
