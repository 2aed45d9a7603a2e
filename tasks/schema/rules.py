"""The building blocks of a raw table's contract: value parsers, value rules, column specs, row rules.

Pure functions of data frames: a source (CSV, Parquet, SQL at the node) hands over the cells, these
say which ones break which rule.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


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
