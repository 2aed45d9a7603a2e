"""The raw common record schemas and their validation, as pure functions on data frames.

``tasks`` does no I/O: a node's data source (``node_agent.sources``: CSV, Parquet or a SQL database)
reads a table as it is and numbers its records; ``validate_table`` checks every cell against the
table's schema and returns typed columns, or raises ``SchemaErrors`` naming source, row, field and
rule for every problem (identifier values never appear: these messages end up in logs).

Where things go: a new rule on one value in ``rules.py``, a new table's columns in ``tables.py`` (or
beside its task, like ``tasks.formations``), the checking itself in ``validation.py``.
"""

from __future__ import annotations

from .errors import MAX_PROBLEMS, SchemaError, SchemaErrors, table_problem
from .record_numbers import RecordNumbers
from .rules import (
    PARSERS,
    ColumnSpec,
    InRange,
    KnownCode,
    Matches,
    OneOf,
    Parser,
    RowRule,
    TableSchema,
    ValueRule,
)
from .tables import (
    ADULT_COLUMNS,
    ADULT_EDUCATIONS,
    ADULT_INCOMES,
    ADULT_MARITAL_STATUSES,
    ADULT_OCCUPATIONS,
    ADULT_RACES,
    ADULT_RELATIONSHIPS,
    ADULT_SCHEMA,
    ADULT_SEXES,
    ADULT_WORKCLASSES,
    BIRTH_YEAR_RANGE,
    EDUCATION_LEVELS,
    IDENTIFIER_COLUMNS,
    MONTHS_TO_EMPLOYMENT_MAX,
    OUTCOME_HORIZON_MONTHS,
    PARCOURS_COLUMNS,
    PARCOURS_SCHEMA,
    SCHEMAS,
    SEXES,
    OutcomeConsistency,
)
from .validation import LINE_NUMBERS, ROW_UNIT, validate_adult, validate_parcours, validate_table

__all__ = [
    "ADULT_COLUMNS",
    "ADULT_EDUCATIONS",
    "ADULT_INCOMES",
    "ADULT_MARITAL_STATUSES",
    "ADULT_OCCUPATIONS",
    "ADULT_RACES",
    "ADULT_RELATIONSHIPS",
    "ADULT_SCHEMA",
    "ADULT_SEXES",
    "ADULT_WORKCLASSES",
    "BIRTH_YEAR_RANGE",
    "EDUCATION_LEVELS",
    "IDENTIFIER_COLUMNS",
    "LINE_NUMBERS",
    "MAX_PROBLEMS",
    "MONTHS_TO_EMPLOYMENT_MAX",
    "OUTCOME_HORIZON_MONTHS",
    "PARCOURS_COLUMNS",
    "PARCOURS_SCHEMA",
    "PARSERS",
    "ROW_UNIT",
    "SCHEMAS",
    "SEXES",
    "ColumnSpec",
    "InRange",
    "KnownCode",
    "Matches",
    "OneOf",
    "OutcomeConsistency",
    "RecordNumbers",
    "Parser",
    "RowRule",
    "SchemaError",
    "SchemaErrors",
    "TableSchema",
    "ValueRule",
    "table_problem",
    "validate_adult",
    "validate_parcours",
    "validate_table",
]
