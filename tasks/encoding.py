"""Feature encoding with fixed, public vocabularies.

Every site must produce the same feature vector, and nothing about one site's data may shape
another's features, so nothing here is fitted on data: categories come from public
nomenclatures and numeric scales are constants.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Categorical:
    """One-hot over a fixed vocabulary; values outside it go to an `other` slot."""

    column: str
    vocabulary: Sequence[str]
    transform: Callable[[pd.Series], pd.Series] | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def names(self) -> list[str]:
        return [f"{self.column}={v}" for v in self.vocabulary] + [f"{self.column}=other"]

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        values = frame[self.column].astype("string").fillna("")
        if self.transform is not None:
            values = self.transform(values)
        index = {v: i for i, v in enumerate(self.vocabulary)}
        codes = values.map(lambda v: index.get(v, len(index))).to_numpy(dtype=np.int64)
        out = np.zeros((len(frame), len(index) + 1), dtype=np.float32)
        out[np.arange(len(frame)), codes] = 1.0
        return out


@dataclass(frozen=True)
class Numeric:
    """A numeric column through a fixed transform (e.g. log1p, a constant scale)."""

    column: str
    transform: Callable[[np.ndarray], np.ndarray] = lambda x: x
    name: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def names(self) -> list[str]:
        return [self.name or self.column]

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        values = pd.to_numeric(frame[self.column], errors="coerce").fillna(0).to_numpy(dtype=np.float64)
        return self.transform(values).astype(np.float32).reshape(-1, 1)


@dataclass(frozen=True)
class Derived:
    """A feature computed from several columns (e.g. a public tension index looked up per row)."""

    name: str
    compute: Callable[[pd.DataFrame], np.ndarray]
    columns: tuple[str, ...] = ()

    def names(self) -> list[str]:
        return [self.name]

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.compute(frame), dtype=np.float32).reshape(-1, 1)


Feature = Categorical | Numeric | Derived


@dataclass(frozen=True)
class TabularEncoder:
    """Turns a validated frame into (features, labels, fairness groups)."""

    features: Sequence[Feature]
    label: str
    label_transform: Callable[[pd.Series], pd.Series] = lambda s: s
    group_columns: Mapping[str, str] = field(default_factory=dict)
    #: Public categories of the fairness attributes that are not model inputs (sex and age band in
    #: use case 1): the nodes measure gaps on them, so their cells must exist without a feature.
    group_vocabularies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def source_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for f in self.features for c in f.columns))

    def restricted(self, fields: Sequence[str]) -> TabularEncoder:
        """Only the features whose every source column the study was granted: a field outside
        the grant is never read, and coordinator and nodes derive the same model width."""
        allowed = set(fields)
        if self.label not in allowed:
            raise ValueError(f"the label '{self.label}' is not among the study's fields")
        kept = tuple(f for f in self.features if set(f.columns) <= allowed)
        groups = {name: column for name, column in self.group_columns.items() if column in allowed}
        vocabularies = {c: v for c, v in self.group_vocabularies.items() if c in allowed}
        return replace(self, features=kept, group_columns=groups, group_vocabularies=vocabularies)

    @property
    def feature_names(self) -> list[str]:
        return [name for f in self.features for name in f.names()]

    @property
    def width(self) -> int:
        return len(self.feature_names)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        return (
            np.hstack([f.encode(frame) for f in self.features])
            if len(frame)
            else np.zeros((0, self.width), dtype=np.float32)
        )

    def labels(self, frame: pd.DataFrame) -> np.ndarray:
        return self.label_transform(frame[self.label]).to_numpy(dtype=np.float32)

    def groups(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Protected attributes for the fairness report, as strings, keyed by report name."""
        return {
            name: frame[col].astype("string").fillna("?").to_numpy()
            for name, col in self.group_columns.items()
        }
