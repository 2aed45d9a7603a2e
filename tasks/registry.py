"""What can be computed: one `TaskSpec` per task, looked up by name (a registry, not an if-chain)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from . import companies, reference, schema
from .encoding import Categorical, Derived, Numeric, TabularEncoder

AGE_BANDS = ("16-25", "26-35", "36-45", "46-55", "56+")
EDUCATION_LEVELS = ("infra_bac", "bac", "bac+2", "bac+3_4", "bac+5")
ROME_DOMAINS = tuple("ABCDEFGHIJKLMN")


@dataclass(frozen=True)
class WhatIf:
    """A reference profile and the values each factor is moved to, for model-only explanations."""

    profile: dict[str, object]
    variations: dict[str, tuple[object, ...]]


@dataclass(frozen=True)
class TaskSpec:
    """A learning task: its dataset (ledger account, table), validation, encoder and model size."""

    name: str
    dataset: str
    #: The dataset's file in a node's data folder (``node_agent.sources`` reads it, or a SQL table).
    file_name: str
    #: Pure check of the raw table a node's source read (raw frame, source name → typed frame).
    validate: Callable[[pd.DataFrame, str], pd.DataFrame]
    encoder: Callable[[], TabularEncoder]
    #: Whether records carry direct identifiers and free text that the node must anonymize first.
    personal_identifiers: bool
    hidden: tuple[int, ...] = (64, 32)
    what_if: WhatIf | None = None
    #: Whether the task trains a model with DP-SGD (then the grant's training bounds apply), or only
    #: answers Gaussian releases (statistics, clustering), whose instructions carry no learning rate.
    trains: bool = True

    def default_fields(self) -> tuple[str, ...]:
        """Every column the task can use: what a study asks for unless told otherwise — the model
        inputs, the label, and the protected attributes the nodes measure fairness gaps on (which
        need not be inputs)."""
        encoder = self.encoder()
        groups = (c for c in encoder.group_columns.values() if c not in encoder.source_columns)
        return tuple(dict.fromkeys((*encoder.source_columns, *groups, encoder.label)))

    def encoder_for(self, fields: tuple[str, ...] | None) -> TabularEncoder:
        return self.encoder().restricted(fields) if fields else self.encoder()


def _tension(frame: pd.DataFrame) -> np.ndarray:
    pairs = list(zip(frame["zone_emploi"].astype(str), frame["rome_target"].astype(str), strict=True))
    return np.array([reference.tension_index(z, r) for z, r in pairs], dtype=np.float32)


def _same_occupation(frame: pd.DataFrame) -> np.ndarray:
    return (
        (frame["rome_target"].astype("string") == frame["rome_previous"].astype("string"))
        .fillna(False)
        .to_numpy(dtype=np.float32)
    )


@lru_cache(maxsize=1)
def parcours_encoder() -> TabularEncoder:
    """Features of a person's path, from the anonymized analysis view (docs/CONTRACTS.md).

    Sex and age band are *not* model inputs (purpose ``autodiagnostic_mobilite``, its ``fairness``
    section): a self-diagnosis must not score a person on who they are, only on what they can
    tell about their path (the AMS lesson). They stay ``group_columns`` so that the nodes still
    measure the fairness gaps the release gate checks.
    """
    zones = tuple(reference.zones_emploi_paca()["ze2020"].astype(str))
    return TabularEncoder(
        features=(
            Categorical("education_level", EDUCATION_LEVELS),
            Categorical("zone_emploi", zones),
            Categorical("rome_target", ROME_DOMAINS, transform=lambda s: s.str[0]),
            Derived("tension", _tension, ("zone_emploi", "rome_target")),
            Derived("same_occupation", _same_occupation, ("rome_target", "rome_previous")),
            Numeric("months_unemployed", lambda x: np.log1p(np.clip(x, 0, None)) / 3.0),
            Numeric("mobility_km", lambda x: np.clip(x, 0, 200) / 50.0),
            Numeric("driving_licence"),
            Numeric("training_followed"),
        ),
        label="employed_6m",
        group_columns={"sex": "sex", "age_band": "age_band"},
        group_vocabularies={"sex": schema.SEXES, "age_band": AGE_BANDS},
    )


@lru_cache(maxsize=1)
def adult_encoder() -> TabularEncoder:
    """UCI Adult with the codebook's own vocabularies (adult.names) and fixed numeric scales."""
    return TabularEncoder(
        features=(
            Numeric("age", lambda x: x / 100.0),
            Categorical("workclass", schema.ADULT_WORKCLASSES),
            Numeric("education_num", lambda x: x / 16.0),
            Categorical("marital_status", schema.ADULT_MARITAL_STATUSES),
            Categorical("occupation", schema.ADULT_OCCUPATIONS),
            Categorical("relationship", schema.ADULT_RELATIONSHIPS),
            Categorical("race", schema.ADULT_RACES),
            Categorical("sex", schema.ADULT_SEXES),
            Numeric("capital_gain", lambda x: np.log1p(np.clip(x, 0, None)) / 10.0),
            Numeric("capital_loss", lambda x: np.log1p(np.clip(x, 0, None)) / 10.0),
            Numeric("hours_per_week", lambda x: x / 100.0),
        ),
        label="income",
        label_transform=lambda s: (s.astype(str).str.rstrip(".") == ">50K").astype(np.float32),
        group_columns={"sex": "sex", "race": "race"},
    )


#: The autodiagnostic question: a 30-year-old woman with the baccalauréat, six months out of work,
#: aiming at her former occupation in the Marseille employment zone — and what changes her chances.
PARCOURS_WHAT_IF = WhatIf(
    profile={
        "age_band": "26-35",
        "sex": "F",
        "education_level": "bac",
        "zone_emploi": "9312",
        "rome_target": "M1607",
        "rome_previous": "M1607",
        "months_unemployed": 6,
        "mobility_km": 20,
        "driving_licence": 1,
        "training_followed": 0,
    },
    variations={
        "rome_target": ("M1607", "D1507", "G1603", "J1501", "N4101"),
        "zone_emploi": ("9312", "9315", "9318", "0053", "9310"),
        "age_band": AGE_BANDS,
        "sex": ("F", "M"),
        "education_level": EDUCATION_LEVELS,
        "months_unemployed": (0, 6, 12, 24),
        "mobility_km": (0, 10, 30, 60),
        "driving_licence": (0, 1),
        "training_followed": (0, 1),
    },
)

ADULT_WHAT_IF = WhatIf(
    profile={
        "age": 40,
        "workclass": "Private",
        "education_num": 10,
        "marital_status": "Never-married",
        "occupation": "Adm-clerical",
        "relationship": "Not-in-family",
        "race": "White",
        "sex": "Female",
        "capital_gain": 0,
        "capital_loss": 0,
        "hours_per_week": 40,
    },
    variations={
        "sex": schema.ADULT_SEXES,
        "race": schema.ADULT_RACES,
        "education_num": (9, 10, 13, 16),
        "hours_per_week": (20, 40, 50),
        "age": (25, 40, 55),
    },
)


@lru_cache(maxsize=1)
def company_fields_encoder() -> TabularEncoder:
    """The fields a company study reads (use case 2). The clustering's own feature map is
    ``tasks.companies.CompanyFeatures``; this encoder only names the fields to request, so that
    the grant covers no more than the clustering and the skill-needs model use (no geography)."""
    return TabularEncoder(
        features=tuple(
            Numeric(name)
            for name in (
                "naf_division",
                "size_bracket",
                "hiring_projects",
                "difficult_projects_share",
                "seasonal_projects_share",
                "past_hires",
                "rome_sought",
            )
        ),
        label="skill_need",
    )


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            "employment_outcome",
            "parcours",
            "parcours.csv",
            schema.validate_parcours,
            parcours_encoder,
            personal_identifiers=True,
            what_if=PARCOURS_WHAT_IF,
        ),
        TaskSpec(
            "adult_income",
            "adult",
            "adult.csv",
            schema.validate_adult,
            adult_encoder,
            personal_identifiers=False,
            what_if=ADULT_WHAT_IF,
        ),
        TaskSpec(
            "company_clustering",
            "entreprises",
            "entreprises.csv",
            companies.as_read,
            company_fields_encoder,
            personal_identifiers=True,  # SIRETs: pseudonymized at the node, never sent
            trains=False,
        ),
    )
}


class UnknownTaskError(KeyError):
    def __str__(self) -> str:
        return f"unknown task {self.args[0]!r}; known tasks: {', '.join(sorted(TASKS))}"


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownTaskError(name) from None
