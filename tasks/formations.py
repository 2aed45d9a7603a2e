"""Use case 3's table: people leaving a training ("sortants de formation"), as a partner holds them.

Carif-Oref holds the trainings the Region and CPF paid for, France Travail those it paid for
(AIF, POEI); both follow the person six months on. The file carries the NIR so that the node can
derive the linkage pseudonym (opt-outs, one person once per site); it never leaves the node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import keysets
from .registry import AGE_BANDS, TaskSpec
from .schema import (
    EDUCATION_LEVELS,
    MONTHS_TO_EMPLOYMENT_MAX,
    ColumnSpec,
    InRange,
    Matches,
    OneOf,
    OutcomeConsistency,
    TableSchema,
    validate_table,
)

TASK = "training_outcome_stats"
DATASET = "formations"
FILE_NAME = "formations.csv"
NIR_PATTERN = r"[1-478]\d{2}(0[1-9]|1[0-2]|[2-9]\d)(\d{2}|2[AB])\d{3}\d{3}\d{2}"
_BINARY = (InRange(0, 1),)

FORMATIONS_SCHEMA = TableSchema(
    name=DATASET,
    columns=(
        ColumnSpec("record_id", "str", identifier=True, description="partner-local row id"),
        ColumnSpec("nir", "str", identifier=True, rules=(Matches(NIR_PATTERN, "a NIR", ignore=" "),)),
        ColumnSpec("sex", "str", rules=(OneOf(keysets.SEXES),)),
        ColumnSpec("age_band", "str", rules=(OneOf(AGE_BANDS),), description="at training entry"),
        ColumnSpec("education_level", "str", rules=(OneOf(EDUCATION_LEVELS),)),
        ColumnSpec("months_out_of_work", "int", rules=(InRange(0, None),), description="before training"),
        ColumnSpec("training_domain", "str", rules=(OneOf(tuple(keysets.TRAINING_DOMAINS)),)),
        ColumnSpec("certification_level", "str", rules=(OneOf(keysets.CERTIFICATION_LEVELS),)),
        ColumnSpec("provider", "str", description="training provider code"),
        ColumnSpec("zone_emploi", "str", rules=(Matches(r"\d{4}", "an INSEE ZE2020 code"),)),
        ColumnSpec("departement", "str", rules=(OneOf(keysets.DEPARTEMENTS),)),
        ColumnSpec("funding", "str", rules=(OneOf(keysets.FUNDINGS),)),
        ColumnSpec("training_end", "date"),
        ColumnSpec("duration_hours", "int", rules=(InRange(1, None),)),
        ColumnSpec("employed_6m", "int", rules=_BINARY, description="in employment six months after"),
        ColumnSpec("durable_employment", "int", rules=_BINARY, description="CDI or CDD of 6 months or more"),
        ColumnSpec(
            "months_to_employment",
            "float",
            nullable=True,
            rules=(InRange(0, MONTHS_TO_EMPLOYMENT_MAX),),
            description="empty when not employed within 24 months",
        ),
    ),
    row_rules=(OutcomeConsistency(),),
    unique=("record_id",),
)
COLUMNS = FORMATIONS_SCHEMA.names


@dataclass(frozen=True)
class FieldKind:
    """How a query may use a field: categorical (with a public key set), binary, or numeric."""

    kind: str  # "categorical" | "binary" | "numeric"
    source: str  # the column it is read from (a derived field names its source)


FIELDS: dict[str, FieldKind] = {
    **{
        f: FieldKind("categorical", f)
        for f in (
            "sex",
            "age_band",
            "education_level",
            "training_domain",
            "certification_level",
            "provider",
            "zone_emploi",
            "departement",
            "funding",
        )
    },
    "months_out_band": FieldKind("categorical", "months_out_of_work"),
    "employed_6m": FieldKind("binary", "employed_6m"),
    "durable_employment": FieldKind("binary", "durable_employment"),
    "months_out_of_work": FieldKind("numeric", "months_out_of_work"),
    "duration_hours": FieldKind("numeric", "duration_hours"),
    "months_to_employment": FieldKind("numeric", "months_to_employment"),
}
#: A numeric field's missing values mean this (a censored delay counts as the longest).
MISSING_AS = {"months_to_employment": MONTHS_TO_EMPLOYMENT_MAX}


def months_out_band(months: pd.Series) -> pd.Series:
    bins = [-np.inf, 5, 11, 23, np.inf]
    return pd.cut(months.astype(float), bins=bins, labels=list(keysets.MONTHS_OUT_BANDS)).astype(str)


def analysis_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The derived fields a query may name, computed from the granted source columns present."""
    out = frame.copy()
    if "months_out_of_work" in out:
        out["months_out_band"] = months_out_band(out["months_out_of_work"])
    for name, value in MISSING_AS.items():
        if name in out:
            out[name] = out[name].astype(float).fillna(value)
    return out


def validate_formations(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """A trainings table a node's source read, checked with the one row rule of ``tasks.schema``."""
    return validate_table(frame, source, FORMATIONS_SCHEMA)


def _no_encoder():  # type: ignore[no-untyped-def]
    raise NotImplementedError("training_outcome_stats answers queries; it trains no model")


FORMATIONS_TASK = TaskSpec(
    name=TASK,
    dataset=DATASET,
    file_name=FILE_NAME,
    validate=validate_formations,
    encoder=_no_encoder,
    personal_identifiers=True,
    trains=False,
)
