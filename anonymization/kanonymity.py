"""k-anonymity and l-diversity over chosen quasi-identifiers, and enforcement of a target k.

Enforcement first applies the configured generalization steps, in order, until suppressing the
records still in classes smaller than k would remove at most `max_suppression` of the table; then it
suppresses those records. The target is therefore always reached; when the steps run out before the
suppression falls under `max_suppression`, the records are suppressed anyway and the report says that
the suppression bound was exceeded. Every step and every suppressed row is reported.

Where a target applies (a decision, see anonymization/README.md): on tables that leave the node as
rows (`r2dde anonymize table` with a `k_anonymity` section). The node's training view carries none:
it never leaves the node, whose partner already holds the raw rows, and what leaves is a DP release,
which bounds what anyone learns about every record — including those a k target would suppress.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from anonymization.errors import ConfigError

MISSING = "∅"


@dataclass
class KAnonymityReport:
    """Equivalence-class statistics of a table over its quasi-identifiers."""

    quasi_identifiers: list[str]
    k_target: int
    records: int
    classes: int
    k_achieved: int
    classes_below_k: int
    records_below_k: int
    l_diversity: dict[str, int] = field(default_factory=dict)
    steps_applied: list[str] = field(default_factory=list)
    suppressed_records: int = 0
    max_suppression: float | None = None
    suppression_exceeded: bool = False

    @property
    def target_reached(self) -> bool:
        """Every remaining class holds at least k records (vacuously true of an empty table)."""
        return self.records == 0 or self.k_achieved >= self.k_target

    @property
    def summary(self) -> str:
        """One line for humans."""
        text = (
            f"k={self.k_achieved} over ({', '.join(self.quasi_identifiers)}) for target {self.k_target}: "
            f"{self.classes} classes, {self.records_below_k} of {self.records} records in "
            f"{self.classes_below_k} classes under k"
        )
        if self.l_diversity:
            text += "; l-diversity " + ", ".join(f"{k}={v}" for k, v in self.l_diversity.items())
        if self.suppressed_records:
            text += f"; {self.suppressed_records} records suppressed"
        if self.suppression_exceeded:
            text += f" (more than the {self.max_suppression:.0%} allowed: the generalization steps ran out)"
        text += "; target reached" if self.target_reached else "; TARGET NOT REACHED"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {**asdict(self), "target_reached": self.target_reached, "summary": self.summary}


def _class_keys(frame: pd.DataFrame, quasi_identifiers: Sequence[str]) -> pd.DataFrame:
    return frame[list(quasi_identifiers)].astype("string").fillna(MISSING)


def class_sizes(frame: pd.DataFrame, quasi_identifiers: Sequence[str]) -> pd.Series:
    """Size of each record's equivalence class, aligned on the frame's index."""
    keys = _class_keys(frame, quasi_identifiers)
    return keys.groupby(list(quasi_identifiers), dropna=False, sort=False)[quasi_identifiers[0]].transform(
        "size"
    )


def k_anonymity_report(
    frame: pd.DataFrame, quasi_identifiers: Sequence[str], k: int, sensitive: Sequence[str] = ()
) -> KAnonymityReport:
    """Measure k (smallest class) and, per sensitive attribute, l (fewest distinct values in a class)."""
    missing = [c for c in [*quasi_identifiers, *sensitive] if c not in frame.columns]
    if missing:
        raise ConfigError(f"k-anonymity: column(s) {', '.join(missing)} not in the table")
    if not quasi_identifiers:
        raise ConfigError("k-anonymity: no quasi-identifiers given")
    if frame.empty:
        return KAnonymityReport(list(quasi_identifiers), k, 0, 0, 0, 0, 0)
    keys = _class_keys(frame, quasi_identifiers)
    groups = keys.groupby(list(quasi_identifiers), dropna=False, sort=False)
    sizes = groups.size()
    diversity: dict[str, int] = {}
    for column in sensitive:
        values = frame[column].astype("string").fillna(MISSING)
        diversity[column] = int(values.groupby([keys[c] for c in quasi_identifiers]).nunique().min())
    small = sizes[sizes < k]
    return KAnonymityReport(
        quasi_identifiers=list(quasi_identifiers),
        k_target=k,
        records=len(frame),
        classes=len(sizes),
        k_achieved=int(sizes.min()),
        classes_below_k=len(small),
        records_below_k=int(small.sum()),
        l_diversity=diversity,
    )


class GeneralizationStep(ABC):
    """One further generalization tried, in order, to reach the target k."""

    @abstractmethod
    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return a coarser copy of the frame."""

    @abstractmethod
    def describe(self) -> str:
        """What the step does, for the report."""


@dataclass
class SuppressColumn(GeneralizationStep):
    """Replace every value of a quasi-identifier by '*' (the coarsest generalization)."""

    column: str

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(**{self.column: "*"})

    def describe(self) -> str:
        return f"suppress_column {self.column}"


@dataclass
class GroupRare(GeneralizationStep):
    """Group values of a column seen fewer than `min_count` times into `other`."""

    column: str
    min_count: int
    other: str = "autre"

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        values = frame[self.column].astype("string")
        counts = values.value_counts()
        rare = counts[counts < self.min_count].index
        return frame.assign(**{self.column: values.where(~values.isin(rare), self.other)})

    def describe(self) -> str:
        return f"group_rare {self.column} < {self.min_count}"


@dataclass
class ReplaceBy(GeneralizationStep):
    """Replace a quasi-identifier by a coarser column (e.g. zone d'emploi by département)."""

    column: str
    by: str

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(**{self.column: frame[self.by]})

    def describe(self) -> str:
        return f"replace {self.column} by {self.by}"


STEPS: dict[str, type[GeneralizationStep]] = {
    "suppress_column": SuppressColumn,
    "group_rare": GroupRare,
    "replace_by": ReplaceBy,
}


def build_step(spec: dict[str, Any]) -> GeneralizationStep:
    """Build a step from its configuration.

    Example: {"step": "replace_by", "column": "zone_emploi", "by": "departement"}.
    """
    options = dict(spec)
    name = options.pop("step", None)
    if name not in STEPS:
        raise ConfigError(f"k-anonymity: unknown step {name!r}; known: {', '.join(sorted(STEPS))}")
    try:
        return STEPS[name](**options)
    except TypeError as exc:
        raise ConfigError(f"k-anonymity: invalid options for step {name!r}: {exc}") from exc


def enforce_k_anonymity(
    frame: pd.DataFrame,
    quasi_identifiers: Sequence[str],
    k: int,
    steps: Sequence[GeneralizationStep] = (),
    max_suppression: float = 0.05,
    sensitive: Sequence[str] = (),
) -> tuple[pd.DataFrame, KAnonymityReport, list[int]]:
    """Generalize then suppress until every class has at least k records.

    Returns the k-anonymous frame, its report, and the 0-based positions of the suppressed records.
    """
    current = frame
    applied: list[str] = []
    for step in steps:
        sizes = class_sizes(current, quasi_identifiers) if len(current) else pd.Series(dtype=int)
        if len(current) == 0 or (sizes < k).mean() <= max_suppression:
            break
        current = step.apply(current)
        applied.append(step.describe())
    sizes = class_sizes(current, quasi_identifiers) if len(current) else pd.Series(dtype=int)
    keep = (sizes >= k).to_numpy(dtype=bool) if len(current) else np.zeros(0, dtype=bool)
    suppressed = [int(i) for i, kept in enumerate(keep) if not kept]
    result = current[keep] if len(current) else current
    report = k_anonymity_report(result, quasi_identifiers, k, sensitive)
    report.steps_applied = applied
    report.suppressed_records = len(suppressed)
    report.max_suppression = max_suppression
    report.suppression_exceeded = bool(len(frame)) and len(suppressed) / len(frame) > max_suppression
    return result, report, suppressed
