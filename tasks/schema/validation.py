"""Validation of a raw table already read: every cell against its column's spec, then the row rules.

One numbering everywhere (the node's log, the Region's report, `r2dde anonymize table`): the source
puts each record's number in ``attrs[LINE_NUMBERS]`` and what a number counts in ``attrs[ROW_UNIT]``
— a CSV file's line as an editor shows it, a Parquet record, a SQL row of the result.

One row rule everywhere: a table with any bad cell is refused as a whole, every problem listed with
its row, field and rule (the node's site then takes no part, a *data error*; `anonymize table` exits
non-zero). Leaving bad rows out silently would bias a study without anyone deciding it.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import MAX_PROBLEMS, SchemaError, SchemaErrors
from .record_numbers import RecordNumbers
from .rules import ColumnSpec, TableSchema
from .tables import ADULT_SCHEMA, PARCOURS_SCHEMA

#: ``DataFrame.attrs`` keys set by a source: each record's number and what a number counts.
LINE_NUMBERS = "line_numbers"
ROW_UNIT = "row_unit"


class _Collector:
    """Gathers problems up to the cap, counting the rest."""

    def __init__(self, source: str, limit: int, unit: str = "line") -> None:
        self.source = source
        self.limit = limit
        self.unit = unit
        self.problems: list[SchemaError] = []
        self.more = 0

    def add(
        self, row: int | None, field_name: str | None, rule: str, message: str, value: str | None = None
    ) -> None:
        if len(self.problems) < self.limit:
            self.problems.append(
                SchemaError(self.source, row, field_name, rule, message, value=value, unit=self.unit)
            )
        else:
            self.more += 1

    def raise_if_any(self) -> None:
        if self.problems:
            raise SchemaErrors(self.source, self.problems, self.more)


def _cell_text(value: object) -> str:
    """One typed cell as the text a CSV file would hold (a boolean as 0/1, a missing value as '')."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    return str(value)


def _as_text(column: pd.Series) -> pd.Series:
    """Cell text with surrounding blanks removed; missing cells become ''.

    A CSV source hands over text; Parquet and SQL hand over typed cells (numbers, booleans, dates,
    NULLs), rendered here as the text the parsers read, so that every source is checked alike."""
    if pd.api.types.is_string_dtype(column.dtype) and not pd.api.types.is_object_dtype(column.dtype):
        return column.astype("str").fillna("").str.strip()
    return column.astype(object).map(_cell_text).astype("str").str.strip()


def _check_columns(found: Sequence[str], schema: TableSchema, problems: _Collector) -> None:
    expected = [c.name for c in schema.columns if c.required]
    unknown = [name for name in found if name not in schema.by_name]
    for name in expected:
        if name in found:
            continue
        close = difflib.get_close_matches(name, unknown, n=3, cutoff=0.6)
        hint = f" (close names found: {', '.join(repr(c) for c in close)})" if close else ""
        problems.add(None, name, "missing_column", f"expected column '{name}' is missing{hint}")
    for name in unknown:
        close = difflib.get_close_matches(name, list(schema.names), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        message = f"unknown column '{name}' (not in the {schema.name} schema){hint}"
        problems.add(None, name, "unknown_column", message)
    seen: set[str] = set()
    for name in found:
        if name in seen:
            problems.add(None, name, "duplicate_column", f"column '{name}' appears more than once")
        seen.add(name)


def _describe_value(spec: ColumnSpec, text: str) -> str | None:
    """The offending value, or nothing for identifiers (their values must never reach a log)."""
    return None if spec.identifier else text


def validate_table(
    df: pd.DataFrame,
    source: str,
    schema: TableSchema,
    *,
    first_row: int = 2,
    max_problems: int = MAX_PROBLEMS,
) -> pd.DataFrame:
    """Check ``df`` against ``schema`` and return typed columns in schema order.

    ``first_row`` is the number shown for the first record (2 for CSV with its header line, 1 for Parquet)
    unless the source left each record's number in ``df.attrs[LINE_NUMBERS]``.
    Raises ``SchemaErrors`` listing every problem found (up to ``max_problems``).
    The returned table carries the records' numbers in ``attrs[LINE_NUMBERS]``.
    """
    unit = str(df.attrs.get(ROW_UNIT, "line"))
    problems = _Collector(source, max_problems, unit)
    found = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    if not found:
        problems.add(None, None, "empty_file", "the file is empty (no header, no rows)")
        problems.raise_if_any()
    _check_columns(found, schema, problems)
    problems.raise_if_any()
    df = df.set_axis(found, axis=1)
    if len(df) == 0:
        problems.add(None, None, "no_rows", "the file has a header but no data rows")
        problems.raise_if_any()

    numbered = df.attrs.get(LINE_NUMBERS)
    rows = np.asarray(numbered) if numbered is not None else np.arange(len(df)) + first_row
    typed: dict[str, pd.Series] = {}
    # (row, column position, field, rule, message, value shown on the node or None)
    cell_problems: list[tuple[int, int, str, str, str, str | None]] = []
    unlisted = 0  # problems beyond the ones turned into messages (each check lists at most the cap + 1)

    def first(mask_or_index: np.ndarray) -> np.ndarray:
        nonlocal unlisted
        index = np.flatnonzero(mask_or_index) if mask_or_index.dtype == bool else mask_or_index
        unlisted += max(0, index.size - (max_problems + 1))
        return index[: max_problems + 1]

    usable = np.ones(len(df), dtype=bool)
    for position, spec in enumerate(schema.columns):
        if spec.name not in df.columns:
            typed[spec.name] = pd.Series([""] * len(df), dtype="str")
            continue
        text = _as_text(df[spec.name]).reset_index(drop=True)
        empty = (text == "").to_numpy()
        if not spec.nullable:
            for i in first(empty):
                cell_problems.append((int(rows[i]), position, spec.name, "required", "is empty", None))
        parsed = spec.parser.parse(text)
        for i in first(parsed.bad):
            shown = _describe_value(spec, str(text.iat[i]))
            cell_problems.append((int(rows[i]), position, spec.name, "type", parsed.reason, shown))
        checkable = ~empty & ~parsed.bad
        for rule in spec.rules:
            idx = np.flatnonzero(checkable)
            if idx.size == 0:
                break
            broken = idx[rule.violations(parsed.values.iloc[idx])]
            for i in first(broken):
                shown = _describe_value(spec, str(text.iat[i]))
                cell_problems.append((int(rows[i]), position, spec.name, rule.name, rule.explain(), shown))
            checkable[broken] = False
        usable &= (checkable | empty) if spec.nullable else checkable
        typed[spec.name] = _typed(spec, parsed.values, empty | parsed.bad)

    table = pd.DataFrame(typed)
    for row_rule in schema.row_rules:
        idx = np.flatnonzero(usable)
        broken = idx[row_rule.violations(table.iloc[idx])]
        for i in first(broken):
            where = ", ".join(row_rule.fields)
            explained = row_rule.explain()
            cell_problems.append((int(rows[i]), len(schema.columns), where, row_rule.name, explained, None))
    for name in schema.unique:
        spec = schema.by_name[name]
        values = table[name]
        duplicated = values.duplicated(keep="first").to_numpy() & (values != "").to_numpy()
        for i in first(duplicated):
            original = int(rows[int(np.flatnonzero((values == values.iat[i]).to_numpy())[0])])
            shown = _describe_value(spec, str(values.iat[i]))
            message = f"repeats the value of {unit} {original} (must be unique)"
            cell_problems.append((int(rows[i]), schema.names.index(name), name, "unique", message, shown))

    for row, _, field_name, rule_name, message, shown in sorted(cell_problems, key=lambda p: (p[0], p[1])):
        problems.add(row, field_name, rule_name, message, shown)
    problems.more += unlisted
    problems.raise_if_any()
    table.attrs[LINE_NUMBERS] = RecordNumbers(rows)
    table.attrs[ROW_UNIT] = unit
    return table


def _typed(spec: ColumnSpec, values: pd.Series, unusable: np.ndarray) -> pd.Series:
    """Typed column; unusable cells (empty or unparsable) become 0 / NaN / '' (the table is only returned
    when every non-nullable cell was usable)."""
    if spec.dtype == "int":
        return values.where(~unusable, 0).astype("int64")
    if spec.dtype == "float":
        return values.where(~unusable, np.nan).astype("float64")
    return values.where(~unusable, "").astype("str")


def validate_parcours(df: pd.DataFrame, source: str, *, first_row: int = 2) -> pd.DataFrame:
    """Validate a raw ``parcours`` table (already read) and return it with typed columns."""
    return validate_table(df, source, PARCOURS_SCHEMA, first_row=first_row)


def validate_adult(df: pd.DataFrame, source: str, *, first_row: int = 2) -> pd.DataFrame:
    """Validate an Adult site table (already read) and return it with typed columns."""
    return validate_table(df, source, ADULT_SCHEMA, first_row=first_row)
