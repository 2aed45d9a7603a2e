"""The raw common schema of a person's path (``parcours``) and of an Adult site, with a validating loader.

A partner's export is checked column by column against a spec table before anything else touches it,
so that a mapping mistake (a misnamed, missing or extra column, a shifted field) stops the node with a
message a data steward can act on: file, row, field and rule. Problems are collected (up to a cap) and
reported together. Identifier *values* never appear in a message (only the row and the field), because
these messages end up in logs.

One numbering everywhere (the node's log, the Region's report, `r2dde anonymize table`): **the file's
line number**, as an editor shows it. For CSV the header is line 1 and the first record line 2; a
record whose quoted text spans several lines starts on the line where it starts. Parquet has no lines:
its records are numbered from 1 and called "record".

One row rule everywhere: a file with any bad cell is refused as a whole, every problem listed with its
line, field and rule (the node's site then takes no part, a *data error*; `anonymize table` exits
non-zero). Leaving bad rows out silently would bias a study without anyone deciding it.
"""

from __future__ import annotations

import csv
import difflib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tasks import reference

MAX_PROBLEMS = 20

EDUCATION_LEVELS: tuple[str, ...] = ("infra_bac", "bac", "bac+2", "bac+3_4", "bac+5")
SEXES: tuple[str, ...] = ("F", "M")
BIRTH_YEAR_RANGE = (1940, 2010)
MONTHS_TO_EMPLOYMENT_MAX = 24.0
OUTCOME_HORIZON_MONTHS = 6.0


# --------------------------------------------------------------------------- errors


class SchemaError(ValueError):
    """One problem in a partner file: where (source, row, field) and which rule failed."""

    def __init__(
        self,
        source: str,
        row: int | None,
        field: str | None,
        rule: str,
        message: str,
        *,
        value: str | None = None,
        unit: str = "line",
    ) -> None:
        self.source = source
        self.row = row  # the file's line number (CSV) or record number (Parquet), see `unit`
        self.field = field
        self.rule = rule
        self.detail = message
        self.value = value  # the offending cell of a non-identifying field, shown on the node only
        self.unit = unit
        super().__init__(self._render())

    def _where(self) -> str:
        parts = [self.source]
        if self.row is not None:
            parts.append(f"{self.unit} {self.row}")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        return ", ".join(parts)

    def _render(self) -> str:
        shown = f"{self.value!r} " if self.value is not None else ""
        return f"{self._where()}: {shown}{self.detail}"

    def public(self) -> str:
        """The problem without any cell value: what may leave the node (where, which rule)."""
        return f"{self._where()}: {self.detail} (rule {self.rule})"


class SchemaErrors(SchemaError):
    """Every problem found in one file (capped at ``MAX_PROBLEMS``), reported at once."""

    def __init__(self, source: str, problems: Sequence[SchemaError], more: int = 0) -> None:
        self.problems: list[SchemaError] = list(problems)
        self.more = more
        total = len(self.problems) + more
        lines = [str(p) for p in self.problems]
        if more:
            lines.append(f"... and {more} more problem(s) not shown")
        header = f"{total} problem(s) in {source}"
        super().__init__(source, None, None, "schema", header + ":\n  " + "\n  ".join(lines))

    def _render(self) -> str:
        return self.detail

    def public(self) -> str:
        """Every problem's place and rule, no value: one line, fit for the Region's report."""
        total = len(self.problems) + self.more
        shown = "; ".join(p.public() for p in self.problems[:5])
        rest = total - min(5, len(self.problems))
        return f"{total} problem(s) in {self.source}: {shown}" + (f"; and {rest} more" if rest else "")


# --------------------------------------------------------------------------- value parsers


@dataclass(frozen=True)
class Parsed:
    """Typed values, with a mask of the cells that could not be parsed and the reason."""

    values: pd.Series
    bad: np.ndarray
    reason: str


class Parser(ABC):
    """Turns the text of a column into typed values; empty cells become missing values."""

    dtype: str

    @abstractmethod
    def parse(self, text: pd.Series) -> Parsed: ...


class TextParser(Parser):
    dtype = "str"

    def parse(self, text: pd.Series) -> Parsed:
        return Parsed(text.astype("str"), np.zeros(len(text), dtype=bool), "")


class IntegerParser(Parser):
    dtype = "int"

    def parse(self, text: pd.Series) -> Parsed:
        numbers = pd.to_numeric(text.where(text != "", None), errors="coerce").astype(float)
        present = (text != "").to_numpy()
        ok = np.isfinite(numbers.to_numpy()) & (np.mod(numbers.fillna(0.5).to_numpy(), 1.0) == 0.0)
        return Parsed(numbers, present & ~ok, "is not an integer")


class DecimalParser(Parser):
    """Accepts a decimal point or a French decimal comma."""

    dtype = "float"

    def parse(self, text: pd.Series) -> Parsed:
        normalized = text.str.replace(",", ".", regex=False)
        numbers = pd.to_numeric(normalized.where(normalized != "", None), errors="coerce").astype(float)
        present = (text != "").to_numpy()
        ok = np.isfinite(numbers.to_numpy())
        return Parsed(numbers, present & ~ok, "is not a number")


class IsoDateParser(Parser):
    """ISO calendar date ``YYYY-MM-DD``; kept as text (the contract's type) once checked."""

    dtype = "date"
    _shape = re.compile(r"^\d{4}-\d{2}-\d{2}$")

    def parse(self, text: pd.Series) -> Parsed:
        shaped = text.where(text.str.match(self._shape), None)
        dates = pd.to_datetime(shaped, format="%Y-%m-%d", errors="coerce")
        present = (text != "").to_numpy()
        return Parsed(text.astype("str"), present & dates.isna().to_numpy(), "is not a date YYYY-MM-DD")


PARSERS: dict[str, Parser] = {
    parser.dtype: parser for parser in (TextParser(), IntegerParser(), DecimalParser(), IsoDateParser())
}


# --------------------------------------------------------------------------- value rules


class ValueRule(ABC):
    """A constraint on the present, parsed values of one column."""

    name: str

    @abstractmethod
    def violations(self, values: pd.Series) -> np.ndarray:
        """Boolean mask of values that break the rule."""

    @abstractmethod
    def explain(self) -> str:
        """What the value should have been, e.g. 'is not one of F, M'."""


@dataclass(frozen=True)
class OneOf(ValueRule):
    allowed: tuple[str, ...]
    name: str = "allowed_values"

    def violations(self, values: pd.Series) -> np.ndarray:
        return ~values.isin(self.allowed).to_numpy()

    def explain(self) -> str:
        return "is not one of " + ", ".join(self.allowed)


@dataclass(frozen=True)
class InRange(ValueRule):
    low: float | None = None
    high: float | None = None
    name: str = "range"

    def violations(self, values: pd.Series) -> np.ndarray:
        array = values.to_numpy(dtype=float)
        bad = np.zeros(len(array), dtype=bool)
        if self.low is not None:
            bad |= array < self.low
        if self.high is not None:
            bad |= array > self.high
        return bad

    def explain(self) -> str:
        if self.high is None:
            return f"is below {self.low:g}"
        if self.low is None:
            return f"is above {self.high:g}"
        return f"is outside {self.low:g}..{self.high:g}"


@dataclass(frozen=True)
class Matches(ValueRule):
    """A regular expression on the value after removing the characters in ``ignore``."""

    pattern: str
    what: str
    ignore: str = ""
    name: str = "format"

    def violations(self, values: pd.Series) -> np.ndarray:
        text = values.astype("str")
        if self.ignore:
            text = text.str.replace(f"[{re.escape(self.ignore)}]", "", regex=True)
        return ~text.str.fullmatch(self.pattern).fillna(False).to_numpy(dtype=bool)

    def explain(self) -> str:
        return f"does not look like {self.what}"


@dataclass(frozen=True)
class KnownCode(ValueRule):
    """Membership in a public referential (read from the reference data folder when first needed)."""

    codes: Callable[[], frozenset[str]]
    what: str
    name: str = "known_code"

    def violations(self, values: pd.Series) -> np.ndarray:
        return ~values.isin(self.codes()).to_numpy()

    def explain(self) -> str:
        return f"is not {self.what}"


def _paca_communes() -> frozenset[str]:
    return frozenset(reference.communes_paca().index)


def _rome4_codes() -> frozenset[str]:
    return frozenset(reference.rome_referential().index)


# --------------------------------------------------------------------------- column specs


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a raw table: type, whether it may be empty, its rules, and whether it identifies."""

    name: str
    dtype: str
    nullable: bool = False
    rules: tuple[ValueRule, ...] = ()
    identifier: bool = False
    required: bool = True
    description: str = ""

    @property
    def parser(self) -> Parser:
        return PARSERS[self.dtype]


class RowRule(ABC):
    """A constraint across the fields of one record."""

    name: str
    fields: tuple[str, ...]

    @abstractmethod
    def violations(self, table: pd.DataFrame) -> np.ndarray: ...

    @abstractmethod
    def explain(self) -> str: ...


class OutcomeConsistency(RowRule):
    """``employed_6m`` is the label derived from ``months_to_employment``: the two must agree."""

    name = "outcome_consistency"
    fields = ("employed_6m", "months_to_employment")

    def violations(self, table: pd.DataFrame) -> np.ndarray:
        label = table["employed_6m"].to_numpy(dtype=float)
        months = table["months_to_employment"].to_numpy(dtype=float)
        within = np.isfinite(months) & (months <= OUTCOME_HORIZON_MONTHS)
        return ((label == 1) & ~within) | ((label == 0) & within)

    def explain(self) -> str:
        return (
            f"employed_6m must be 1 exactly when months_to_employment is at most {OUTCOME_HORIZON_MONTHS:g}"
        )


@dataclass(frozen=True)
class TableSchema:
    """A raw table: its columns in order, row rules, and the column whose values must be unique."""

    name: str
    columns: tuple[ColumnSpec, ...]
    row_rules: tuple[RowRule, ...] = ()
    unique: tuple[str, ...] = ()
    by_name: Mapping[str, ColumnSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


_ROME_SHAPE = Matches(r"[A-N]\d{4}", "a ROME code (letter A-N and 4 digits)")
_BINARY = (InRange(0, 1),)

PARCOURS_SCHEMA = TableSchema(
    name="parcours",
    columns=(
        ColumnSpec(
            "record_id", "str", identifier=True, description="partner-local row id, never leaves the node"
        ),
        ColumnSpec(
            "nir",
            "str",
            identifier=True,
            rules=(
                Matches(
                    r"[1-478]\d{2}(0[1-9]|1[0-2]|[2-9]\d)(\d{2}|2[AB])\d{3}\d{3}\d{2}",
                    "a NIR (15 characters, key included)",
                    ignore=" .-",
                ),
            ),
            description="NIR with key; spaces, dots or dashes between groups (as the pseudonymizer"
            " normalizes them); Corsica 2A/2B",
        ),
        ColumnSpec(
            "ft_id",
            "str",
            nullable=True,
            identifier=True,
            rules=(
                Matches(r"\d{7}[0-9A-Za-z]", "a France Travail identifier (7 digits + 1 letter or digit)"),
            ),
            description="France Travail identifier, empty when the partner has none",
        ),
        ColumnSpec("last_name", "str", identifier=True),
        ColumnSpec("first_name", "str", identifier=True),
        ColumnSpec(
            "email",
            "str",
            nullable=True,
            identifier=True,
            rules=(Matches(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", "an e-mail address"),),
        ),
        ColumnSpec(
            "phone",
            "str",
            nullable=True,
            identifier=True,
            rules=(Matches(r"(\+33|0033|0)[1-9]\d{8}", "a French phone number", ignore=" .-/()"),),
            description="any French notation (0X XX XX XX XX, +33 X…, dots, dashes)",
        ),
        ColumnSpec(
            "address",
            "str",
            nullable=True,
            identifier=True,
            rules=(Matches(r".*\b\d{5}\b.*", "a French postal address (no 5-digit postcode)"),),
        ),
        ColumnSpec("birth_year", "int", rules=(InRange(*BIRTH_YEAR_RANGE),)),
        ColumnSpec("sex", "str", rules=(OneOf(SEXES),)),
        ColumnSpec(
            "commune",
            "str",
            rules=(
                Matches(r"(\d{2}|2[AB])\d{3}", "an INSEE commune code (5 characters)"),
                KnownCode(_paca_communes, "a commune of Provence-Alpes-Côte d'Azur"),
            ),
        ),
        ColumnSpec("education_level", "str", rules=(OneOf(EDUCATION_LEVELS),), description="ordinal"),
        ColumnSpec("rome_target", "str", rules=(_ROME_SHAPE, KnownCode(_rome4_codes, "a ROME 4.0 code"))),
        ColumnSpec(
            "rome_previous",
            "str",
            nullable=True,
            rules=(_ROME_SHAPE, KnownCode(_rome4_codes, "a ROME 4.0 code")),
        ),
        ColumnSpec("months_unemployed", "int", rules=(InRange(0, None),)),
        ColumnSpec("mobility_km", "int", rules=(InRange(0, None),)),
        ColumnSpec("driving_licence", "int", rules=_BINARY),
        ColumnSpec("training_followed", "int", rules=_BINARY),
        ColumnSpec("registration_date", "date"),
        ColumnSpec("employed_6m", "int", rules=_BINARY, description="the outcome (label)"),
        ColumnSpec(
            "months_to_employment",
            "float",
            nullable=True,
            rules=(InRange(0, MONTHS_TO_EMPLOYMENT_MAX),),
            description="empty when not employed within 24 months (censored)",
        ),
        ColumnSpec(
            "counselor_note", "str", nullable=True, identifier=True, description="free text, may hold PII"
        ),
    ),
    row_rules=(OutcomeConsistency(),),
    unique=("record_id",),
)

PARCOURS_COLUMNS: tuple[str, ...] = PARCOURS_SCHEMA.names
IDENTIFIER_COLUMNS: tuple[str, ...] = tuple(c.name for c in PARCOURS_SCHEMA.columns if c.identifier)

ADULT_WORKCLASSES = (
    "Private",
    "Self-emp-not-inc",
    "Self-emp-inc",
    "Federal-gov",
    "Local-gov",
    "State-gov",
    "Without-pay",
    "Never-worked",
)
ADULT_EDUCATIONS = (
    "Bachelors",
    "Some-college",
    "11th",
    "HS-grad",
    "Prof-school",
    "Assoc-acdm",
    "Assoc-voc",
    "9th",
    "7th-8th",
    "12th",
    "Masters",
    "1st-4th",
    "10th",
    "Doctorate",
    "5th-6th",
    "Preschool",
)
ADULT_MARITAL_STATUSES = (
    "Married-civ-spouse",
    "Divorced",
    "Never-married",
    "Separated",
    "Widowed",
    "Married-spouse-absent",
    "Married-AF-spouse",
)
ADULT_OCCUPATIONS = (
    "Tech-support",
    "Craft-repair",
    "Other-service",
    "Sales",
    "Exec-managerial",
    "Prof-specialty",
    "Handlers-cleaners",
    "Machine-op-inspct",
    "Adm-clerical",
    "Farming-fishing",
    "Transport-moving",
    "Priv-house-serv",
    "Protective-serv",
    "Armed-Forces",
)
ADULT_RELATIONSHIPS = ("Wife", "Own-child", "Husband", "Not-in-family", "Other-relative", "Unmarried")
ADULT_RACES = ("White", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other", "Black")
ADULT_SEXES = ("Female", "Male")
ADULT_INCOMES = ("<=50K", ">50K")

ADULT_SCHEMA = TableSchema(
    name="adult",
    columns=(
        ColumnSpec("age", "int", rules=(InRange(17, 90),)),
        ColumnSpec("workclass", "str", nullable=True, rules=(OneOf(ADULT_WORKCLASSES),)),
        ColumnSpec("fnlwgt", "int", rules=(InRange(1, None),)),
        ColumnSpec("education", "str", rules=(OneOf(ADULT_EDUCATIONS),)),
        ColumnSpec("education_num", "int", rules=(InRange(1, 16),)),
        ColumnSpec("marital_status", "str", rules=(OneOf(ADULT_MARITAL_STATUSES),)),
        ColumnSpec("occupation", "str", nullable=True, rules=(OneOf(ADULT_OCCUPATIONS),)),
        ColumnSpec("relationship", "str", rules=(OneOf(ADULT_RELATIONSHIPS),)),
        ColumnSpec("race", "str", rules=(OneOf(ADULT_RACES),)),
        ColumnSpec("sex", "str", rules=(OneOf(ADULT_SEXES),)),
        ColumnSpec("capital_gain", "int", rules=(InRange(0, None),)),
        ColumnSpec("capital_loss", "int", rules=(InRange(0, None),)),
        ColumnSpec("hours_per_week", "int", rules=(InRange(1, 99),)),
        ColumnSpec("native_country", "str", nullable=True),
        ColumnSpec("income", "str", rules=(OneOf(ADULT_INCOMES),), description="the label"),
    ),
)

ADULT_COLUMNS: tuple[str, ...] = ADULT_SCHEMA.names


# --------------------------------------------------------------------------- validation


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


def _as_text(column: pd.Series) -> pd.Series:
    """Cell text with surrounding blanks removed; missing cells become ''. Works for CSV and Parquet."""
    if pd.api.types.is_bool_dtype(column):
        column = column.astype("Int64")
    if pd.api.types.is_numeric_dtype(column):  # Parquet: typed cells, rendered as text for the parsers
        text = column.astype(object).map(lambda v: "" if pd.isna(v) else str(v))
        return text.astype("str").str.strip()
    return column.astype("str").fillna("").str.strip()


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


#: ``DataFrame.attrs`` keys set by ``read_table``: each record's line number and what a number counts.
LINE_NUMBERS = "line_numbers"
ROW_UNIT = "row_unit"


def _line_numbers(frame: pd.DataFrame, first_line: int) -> np.ndarray:
    """The line each CSV record starts on: quoted text spanning several lines pushes the next ones."""
    starts = np.arange(len(frame)) + first_line
    if len(frame) == 0:
        return starts
    extra = np.zeros(len(frame), dtype=np.int64)
    for name in frame.columns:  # read as text (dtype=str): every column may hold a quoted newline
        extra += frame[name].astype("str").str.count("\n").to_numpy(dtype=np.int64)
    return starts + np.concatenate([[0], np.cumsum(extra)[:-1]])


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
    unless ``read_table`` left each record's line number in ``df.attrs``.
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
            shown = _describe_value(spec, text.iat[i])
            cell_problems.append((int(rows[i]), position, spec.name, "type", parsed.reason, shown))
        checkable = ~empty & ~parsed.bad
        for rule in spec.rules:
            idx = np.flatnonzero(checkable)
            if idx.size == 0:
                break
            broken = idx[rule.violations(parsed.values.iloc[idx])]
            for i in first(broken):
                shown = _describe_value(spec, text.iat[i])
                cell_problems.append((int(rows[i]), position, spec.name, rule.name, rule.explain(), shown))
            checkable[broken] = False
        usable &= (checkable | empty) if spec.nullable else checkable
        typed[spec.name] = _typed(spec, parsed.values, empty | parsed.bad)

    table = pd.DataFrame(typed)
    for rule in schema.row_rules:
        idx = np.flatnonzero(usable)
        broken = idx[rule.violations(table.iloc[idx])]
        for i in first(broken):
            where = ", ".join(rule.fields)
            cell_problems.append((int(rows[i]), len(schema.columns), where, rule.name, rule.explain(), None))
    for name in schema.unique:
        spec = schema.by_name[name]
        values = table[name]
        duplicated = values.duplicated(keep="first").to_numpy() & (values != "").to_numpy()
        for i in first(duplicated):
            original = int(rows[int(np.flatnonzero((values == values.iat[i]).to_numpy())[0])])
            shown = _describe_value(spec, values.iat[i])
            message = f"repeats the value of {unit} {original} (must be unique)"
            cell_problems.append((int(rows[i]), schema.names.index(name), name, "unique", message, shown))

    for row, _, field_name, rule_name, message, shown in sorted(cell_problems, key=lambda p: (p[0], p[1])):
        problems.add(row, field_name, rule_name, message, shown)
    problems.more += unlisted
    problems.raise_if_any()
    table.attrs[LINE_NUMBERS] = [int(r) for r in rows]
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


# --------------------------------------------------------------------------- file reading


def _file_problem(source: str, rule: str, message: str) -> SchemaErrors:
    """A problem with the file as a whole (no row, no field)."""
    return SchemaErrors(source, [SchemaError(source, None, None, rule, message)])


def _not_utf8(path: Path, source: str) -> SchemaErrors:
    """The line of the first byte that is not UTF-8 (a latin-1 export, typically), and the fix."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        position = len(data)
    except UnicodeDecodeError as exc:
        position = exc.start
    line = data.count(b"\n", 0, position) + 1
    return SchemaErrors(
        source,
        [
            SchemaError(
                source, line, None, "encoding", "is not UTF-8 text (latin-1?): re-export the file as UTF-8"
            )
        ],
    )


def _read_csv_text(path: Path, source: str) -> pd.DataFrame:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = handle.readline()
    except UnicodeDecodeError:
        raise _not_utf8(path, source) from None
    if not header.strip():
        raise _file_problem(source, "empty_file", "the file is empty")
    # French exports often use ';' (with decimal commas, which the decimal parser accepts).
    separator = ";" if header.count(";") > header.count(",") else ","
    try:
        frame = pd.read_csv(
            path,
            sep=separator,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding="utf-8-sig",
            quoting=csv.QUOTE_MINIMAL,
        )
    except UnicodeDecodeError:
        raise _not_utf8(path, source) from None
    except pd.errors.EmptyDataError:
        raise _file_problem(source, "empty_file", "the file is empty") from None
    except pd.errors.ParserError as exc:
        raise _file_problem(source, "csv_syntax", f"is not valid CSV: {exc}") from None
    frame.attrs[LINE_NUMBERS] = [int(n) for n in _line_numbers(frame, 2)]
    frame.attrs[ROW_UNIT] = "line"
    return frame


def read_table(path: Path, source: str) -> tuple[pd.DataFrame, int]:
    """Read a CSV or Parquet file as it is; returns the frame and the row number of its first record."""
    path = Path(path)
    if not path.is_file():
        raise _file_problem(source, "missing_file", "file not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv_text(path, source), 2
    if suffix in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
            frame.attrs[ROW_UNIT] = "record"
            return frame, 1
        except (OSError, ValueError) as exc:
            raise _file_problem(source, "parquet", f"is not a readable Parquet file ({exc})") from None
    raise _file_problem(source, "format", f"unsupported file type '{suffix}' (expected .csv or .parquet)")


def _source(path: Path, site: str) -> str:
    return f"{site}/{Path(path).name}"


def load_parcours(path: Path, site: str) -> pd.DataFrame:
    """Read a site's ``parcours`` file (CSV or Parquet, by suffix), validate it, return typed columns."""
    source = _source(path, site)
    frame, first_row = read_table(path, source)
    return validate_parcours(frame, source, first_row=first_row)


#: The raw schemas by dataset name, for tools that check a partner's file as the node does.
SCHEMAS: dict[str, TableSchema] = {PARCOURS_SCHEMA.name: PARCOURS_SCHEMA, ADULT_SCHEMA.name: ADULT_SCHEMA}


def load_table(path: Path, source: str, schema: TableSchema) -> pd.DataFrame:
    """Read any raw table and validate it: the one row rule and numbering shared by every tool."""
    frame, first_row = read_table(path, source)
    return validate_table(frame, source, schema, first_row=first_row)


def load_adult_site(path: Path, site: str) -> pd.DataFrame:
    """Read a site's ``adult.csv`` (header = ``ADULT_COLUMNS``, missing values empty), validate, type it."""
    source = _source(path, site)
    frame, first_row = read_table(path, source)
    return validate_adult(frame, source, first_row=first_row)


__all__ = [
    "ADULT_COLUMNS",
    "ADULT_SCHEMA",
    "EDUCATION_LEVELS",
    "IDENTIFIER_COLUMNS",
    "PARCOURS_COLUMNS",
    "PARCOURS_SCHEMA",
    "ColumnSpec",
    "LINE_NUMBERS",
    "SCHEMAS",
    "SchemaError",
    "SchemaErrors",
    "TableSchema",
    "load_adult_site",
    "load_table",
    "load_parcours",
    "read_table",
    "validate_adult",
    "validate_parcours",
    "validate_table",
]
