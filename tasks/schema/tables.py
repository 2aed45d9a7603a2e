"""The raw common schemas: a person's path (``parcours``) and an Adult site's table.

A partner's export is checked column by column against these spec tables before anything else
touches it, so that a mapping mistake (a misnamed, missing or extra column, a shifted field) stops
the node with a message a data steward can act on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks import reference

from .rules import ColumnSpec, InRange, KnownCode, Matches, OneOf, RowRule, TableSchema

EDUCATION_LEVELS: tuple[str, ...] = ("infra_bac", "bac", "bac+2", "bac+3_4", "bac+5")
SEXES: tuple[str, ...] = ("F", "M")
BIRTH_YEAR_RANGE = (1940, 2010)
MONTHS_TO_EMPLOYMENT_MAX = 24.0
OUTCOME_HORIZON_MONTHS = 6.0


def _paca_communes() -> frozenset[str]:
    return frozenset(reference.communes_paca().index)


def _rome4_codes() -> frozenset[str]:
    return frozenset(reference.rome_referential().index)


class OutcomeConsistency(RowRule):
    """``employed_6m`` is the label derived from ``months_to_employment``: the two must agree."""

    name = "outcome_consistency"
    fields = ("employed_6m", "months_to_employment")

    def violations(self, table: pd.DataFrame) -> np.ndarray:
        label = table["employed_6m"].to_numpy(dtype=float)
        months = table["months_to_employment"].to_numpy(dtype=float)
        within = np.isfinite(months) & (months <= OUTCOME_HORIZON_MONTHS)
        broken: np.ndarray = ((label == 1) & ~within) | ((label == 0) & within)
        return broken

    def explain(self) -> str:
        return (
            f"employed_6m must be 1 exactly when months_to_employment is at most {OUTCOME_HORIZON_MONTHS:g}"
        )


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

#: The raw schemas by dataset name, for tools that check a partner's table as the node does.
SCHEMAS: dict[str, TableSchema] = {PARCOURS_SCHEMA.name: PARCOURS_SCHEMA, ADULT_SCHEMA.name: ADULT_SCHEMA}
