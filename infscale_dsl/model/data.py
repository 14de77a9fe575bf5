"""Turn a table into the arrays a checked spec needs, with every data problem reported.

`prepare` finds each law's rows (those where its response is present), checks that every column
the law reads is valid there (numeric, finite, positive where the law needs it, whole numbers for
counts, known levels for categories), and reports ALL problems in one DataError, each naming the
column, the rows and how to fix it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError, Diagnostic
from ..language.ast import CheckedSpec, Law, Name
from ..language.names import column_hint, suggest
from ..language.positivity import Requirement, value_requirements
from ..language.evaluate import evaluate

SHOWN_ROWS = 5  # row numbers listed in a diagnostic; the rest are counted


@dataclass
class PreparedData:
    n_rows: int
    values: dict[str, np.ndarray]  # data and derived name -> float64 (n_rows,); category -> int64 codes
    levels: dict[str, tuple[str, ...]]  # category data name -> level labels (sorted); the run ids of
    #                                     `curves by run` are read as a category named after their column
    rows: dict[str, np.ndarray]  # response -> int64 indices of the rows its law uses
    left_out: dict[str, int]  # response -> rows left out (response missing)


def select_rows(table: pd.DataFrame, rule: str, filename: str | None = None) -> pd.DataFrame:
    """The rows matching `rule` (see rows_matching), keeping their row numbers so that data
    errors name the rows of the file; ConfigError if none does."""
    selected = table[rows_matching(table, rule, filename)]
    if selected.empty:
        raise ConfigError(Diagnostic(f"--where {rule!r} matches none of the table's {len(table)} rows",
                                     filename=filename, hint="loosen the rule, or check its column names and values"))
    return selected


def rows_matching(table: pd.DataFrame, rule: str, filename: str | None = None) -> pd.Series:
    """Boolean per row from a pandas query string such as "N >= 1e9"."""
    try:
        matching = table.eval(rule, engine="python")
    except pd.errors.UndefinedVariableError as error:
        name = re.search(r"name '([^']+)'", str(error))
        raise ConfigError(Diagnostic(
            f"cannot evaluate the row rule {rule!r}: {error}", filename=filename,
            hint=column_hint(name.group(1) if name else "", table.columns))) from None
    except Exception as error:  # pandas raises many types for a bad expression
        raise ConfigError(Diagnostic(
            f"cannot evaluate the row rule {rule!r}: {error}", filename=filename,
            hint="write a pandas query over the table's columns, e.g. \"N >= 1e9\" or "
                 "\"C >= C.quantile(0.9)\"")) from None
    if not (isinstance(matching, pd.Series) and matching.dtype == bool):
        raise ConfigError(Diagnostic(f"the row rule {rule!r} is not a true/false test per row", filename=filename,
                                     hint="compare a column with a value, e.g. \"N >= 1e9\""))
    return matching


def prepare(spec: CheckedSpec, table: pd.DataFrame, *, with_responses: bool = True,
            levels: dict[str, tuple[str, ...]] | None = None, filename: str | None = None) -> PreparedData:
    """The spec's data as arrays; DataError listing every problem with the table."""
    # data errors name rows by the table's integer index: a file's data rows counted from 0,
    # kept through `--where` (select_rows)
    row_numbers = table.index.to_numpy() if pd.api.types.is_integer_dtype(table.index) else np.arange(len(table))
    return _Preparer(spec, table.reset_index(drop=True), row_numbers, with_responses, levels, filename).run()


def describe_rows(prepared: PreparedData) -> str:
    """One line per response: 'loss: 240 rows (5 left out: loss missing)'."""
    lines = []
    for response, rows in prepared.rows.items():
        left_out = prepared.left_out.get(response, 0)
        lines.append(f"{response}: {len(rows)} rows" + (f" ({left_out} left out: {response} missing)" if left_out else ""))
    return "\n".join(lines)


class _Preparer:
    def __init__(self, spec: CheckedSpec, table: pd.DataFrame, row_numbers: np.ndarray, with_responses: bool,
                 levels: dict[str, tuple[str, ...]] | None, filename: str | None):
        self.spec, self.table, self.row_numbers, self.with_responses = spec, table, row_numbers, with_responses
        self.given_levels, self.filename = levels, filename
        self.n_rows = len(table)
        self.problems: dict[tuple, Diagnostic] = {}  # keyed so two laws do not report one problem twice
        self.values: dict[str, np.ndarray] = {}
        self.levels: dict[str, tuple[str, ...]] = {}
        self.valid: dict[str, np.ndarray] = {}  # name -> bool (n_rows,): the value is usable
        self.non_numeric: dict[str, np.ndarray] = {}  # number name -> bool (n_rows,): text, not a number
        self.unknown_level: dict[str, np.ndarray] = {}  # category name -> bool (n_rows,): not in levels

    def problem(self, column: str | None, mask: np.ndarray, message: str, hint: str) -> None:
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            return
        diagnostic = Diagnostic(message, hint=hint, filename=self.filename, table_column=column,
                                rows=tuple(int(r) for r in self.row_numbers[rows[:SHOWN_ROWS]]),
                                n_rows=int(rows.size))
        self.problems.setdefault((message, column, diagnostic.rows), diagnostic)

    def run(self) -> PreparedData:
        if self.n_rows == 0:  # e.g. a header-only file: fitting it would give an all-NaN posterior
            columns = ", ".join(f"'{self.spec.data[law.response].column}'" for law in self.spec.laws)
            raise DataError(Diagnostic(
                f"the table has no rows: no values of {columns} to fit" if self.with_responses
                else "the table has no rows: nothing to predict",
                filename=self.filename, hint="give a table with one row per run"))
        responses = {law.response for law in self.spec.laws}
        for name, decl in self.spec.data.items():
            if decl.column not in self.table.columns:
                if name in responses and not self.with_responses:
                    self.values[name], self.valid[name] = np.full(self.n_rows, np.nan), np.zeros(self.n_rows, bool)
                    continue
                self.problems[("missing", decl.column)] = Diagnostic(
                    f"column '{decl.column}' is not in the table", filename=self.filename, table_column=decl.column,
                    hint=column_hint(decl.column, self.table.columns))
            elif decl.domain == "category":
                self.read_category(name, decl.column)
            else:
                self.read_number(name, decl.column)
        if self.spec.curves is not None and self.with_responses:
            self.read_runs(self.spec.curves.column)
        if self.problems:  # a missing column: nothing more can be checked
            raise DataError(list(self.problems.values()))
        with np.errstate(all="ignore"):
            derived = self.spec.derived_values(self.values, np)
        for name, value in derived.items():
            self.values[name] = np.broadcast_to(np.asarray(value, np.float64), (self.n_rows,)).copy()
        env = dict(self.values) | self.spec.constants
        rows, left_out = {}, {}
        for law in self.spec.laws:
            law_rows = self.law_rows(law)
            rows[law.response], left_out[law.response] = np.flatnonzero(law_rows).astype(np.int64), int((~law_rows).sum())
            self.check_law(law, law_rows, env)
        if self.problems:
            raise DataError(list(self.problems.values()))
        return PreparedData(self.n_rows, self.values, self.levels, rows, left_out)

    # --- reading columns -------------------------------------------------------------------

    def read_number(self, name: str, column: str) -> None:
        raw = self.table[column]
        if pd.api.types.is_bool_dtype(raw):  # true/false is no size or loss: pandas would read it as 1/0
            raw = raw.astype(object)
            numbers = np.full(len(raw), np.nan)
        else:
            numbers = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        self.values[name] = numbers
        self.valid[name] = np.isfinite(numbers)
        self.non_numeric[name] = raw.notna().to_numpy() & np.isnan(numbers)

    def read_category(self, name: str, column: str) -> None:
        raw = self.table[column]
        if pd.api.types.is_float_dtype(raw) and (raw.dropna() == raw.dropna().round()).all():
            raw = raw.astype("Int64")  # integer labels read as floats (a missing value) print as "3", not "3.0"
        labels = raw.astype("string")
        present = labels.notna().to_numpy()
        known = self.given_levels.get(name) if self.given_levels else None
        levels = tuple(known) if known is not None else tuple(sorted(set(labels.dropna())))
        codes = pd.Index(levels).get_indexer(labels).astype(np.int64)  # -1: missing or unknown level
        self.values[name], self.levels[name] = codes, levels
        self.valid[name] = codes >= 0
        self.unknown_level[name] = present & (codes < 0)

    def read_runs(self, column: str) -> None:
        """The run ids of `curves by`: labels, so a column of fractional numbers is a mistake."""
        if column not in self.table.columns:
            close = suggest(column, map(str, self.table.columns), 0.6)
            self.problems[("missing", column)] = Diagnostic(
                f"column '{column}' of `curves by {column}` is not in the table", filename=self.filename,
                table_column=column, hint=f"did you mean '{close}'?" if close else "name the column of run ids")
            return
        raw = self.table[column]
        if pd.api.types.is_float_dtype(raw):
            self.problem(column, (raw.notna() & (raw != raw.round())).to_numpy(),
                         f"column '{column}' holds fractional numbers, not run ids (curves by {column})",
                         "group by the column that names each run (a name, a hash or a whole number)")
        self.read_category(column, column)

    # --- one law -----------------------------------------------------------------------------

    def law_rows(self, law: Law) -> np.ndarray:
        if not self.with_responses:
            return np.ones(self.n_rows, bool)
        raw = self.table[self.spec.data[law.response].column]
        return raw.notna().to_numpy()

    def check_law(self, law: Law, rows: np.ndarray, env: dict) -> None:
        needed = self.spec.law_data(law) + ([law.response] if self.with_responses else [])
        derived = self.spec.derived_by_name
        for name in dict.fromkeys(needed):
            if name not in derived:
                self.check_column(name, rows, law.response)
        for name in needed:
            if name in derived:
                expr = derived[name].expr
                self.problem(name, rows & self.inputs_valid(expr) & ~np.isfinite(self.values[name]),
                             f"derived variable '{name}' is not finite ({name} = {_text(self.spec.source, expr)})",
                             "look for zeros or huge values in the columns it reads; drop those rows")
        if self.spec.has_curves(law) and self.with_responses:
            column = self.spec.curves.column
            self.problem(column, rows & ~self.valid[column], f"column '{column}' has no run id on some rows",
                         f"every row of a learning curve names its run ({self.spec.curves_text()}): "
                         "fill them or drop those rows")
        for requirement in self.requirements(law):
            if self.declared_positive(requirement):
                continue  # check_column has reported those rows already
            inputs_ok = rows & self.inputs_valid(requirement.expr)
            with np.errstate(all="ignore"):
                value = np.broadcast_to(np.asarray(evaluate(requirement.expr, env, np), np.float64), (self.n_rows,))
            text = _text(self.spec.source, requirement.expr)
            column = self.spec.data[requirement.expr.id].column if isinstance(requirement.expr, Name) \
                and requirement.expr.id in self.spec.data else text
            self.problem(column, inputs_ok & ~(value > requirement.above),
                         f"{text} must be > {requirement.above:g} ({requirement.reason} in the law for {law.response})",
                         "drop those rows, or change the law (e.g. use log-free terms or an offset)")
        if self.with_responses and not rows.any():
            column = self.spec.data[law.response].column
            self.problems[("no rows", column)] = Diagnostic(
                f"response column '{column}' is missing on every row: the law for {law.response} has no rows to fit",
                filename=self.filename, table_column=column,
                hint="fill the column, or remove its law from the spec")
        elif self.with_responses:
            names = self.spec.law_parameters(law)  # the law's and its noise scale's: not the drift, no row informs it
            n_parameters = sum(len(self.levels.get(self.spec.parameters[p].group, ())) or 1
                               if self.spec.parameters[p].group else 1 for p in names)
            if rows.sum() < n_parameters:
                self.problem(self.spec.data[law.response].column, rows,
                             f"the law for {law.response} has {n_parameters} parameters but only {int(rows.sum())} "
                             f"row{'s' if rows.sum() != 1 else ''}",
                             f"add rows, or tie or drop parameters (its rows fit {', '.join(names)})")

    def inputs_valid(self, expr) -> np.ndarray:
        """Rows where every data name `expr` reads (through derived variables) passed its checks."""
        ok = np.ones(self.n_rows, bool)
        for name in self.spec.reads(expr):
            if name not in self.spec.derived_by_name:
                ok &= self.valid.get(name, True)
        return ok

    def declared_positive(self, requirement: Requirement) -> bool:
        expr = requirement.expr
        return (isinstance(expr, Name) and requirement.above == 0.0 and expr.id in self.spec.data
                and self.spec.data[expr.id].domain == "positive")

    def requirements(self, law: Law) -> list[Requirement]:
        found = value_requirements(self.spec, law.expr)
        if law.noise.scale == "log" and self.with_responses:
            found.append(Requirement(Name(law.response), 0.0, "a response with noise 'on log'"))
        return found

    def check_column(self, name: str, rows: np.ndarray, response: str) -> None:
        decl = self.spec.data[name]
        column, values = decl.column, self.values[name]
        if decl.domain == "category":
            self.problem(column, rows & self.unknown_level[name],
                         f"column '{column}' has levels the fit did not see",
                         "predict only on levels present in the fitted table, or refit with them")
            self.problem(column, rows & ~self.valid[name] & ~self.unknown_level[name],
                         f"column '{column}' has missing values", "fill them or drop those rows")
            if self.given_levels is None and len(set(values[rows & self.valid[name]])) == 1:
                self.problem(column, rows, f"column '{column}' has one level, so nothing can vary by it",
                             "remove the [group] from the prior, or add rows from other levels")
            return
        role = "response" if name == response else "predictor"
        self.problem(column, rows & self.non_numeric[name], f"column '{column}' has non-numeric values",
                     "write plain numbers such as 1.5e9 (no units, no thousands separators)")
        self.problem(column, rows & ~self.non_numeric[name] & ~np.isfinite(values),
                     f"{role} column '{column}' has missing or infinite values",
                     "fill them or drop those rows")
        finite = rows & np.isfinite(values)
        if decl.domain == "positive":
            declared = decl.span is not None  # inferred domains come without a span
            self.valid[name] &= values > 0
            self.problem(column, finite & ~(values > 0),
                         f"column '{column}' must be > 0 ({'declared positive' if declared else 'the law needs it positive'})",
                         "drop those rows" + (", or declare the column real" if declared else ""))
        elif decl.domain == "count":
            self.valid[name] &= (values >= 0) & (values == np.round(values))
            self.problem(column, finite & ~((values >= 0) & (values == np.round(values))),
                         f"column '{column}' must hold whole numbers >= 0 (declared count)",
                         "drop those rows, or declare the column real")


def _text(source: str, expr) -> str:
    """The source text of an expression, for messages."""
    if isinstance(expr, Name) or expr.span is None:
        return getattr(expr, "id", "value")
    line = source.splitlines()[expr.span.line - 1]
    end = expr.span.end_column if expr.span.end_line == expr.span.line else len(line) + 1
    return line[expr.span.column - 1: end - 1]

