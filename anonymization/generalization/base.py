"""The interface of a generalization."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class GeneralizationResult:
    """New columns, and where the input was empty or could not be generalized (0-based positions)."""

    columns: dict[str, pd.Series]
    empty_positions: list[int] = field(default_factory=list)
    unknown_positions: list[int] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


class Generalizer(ABC):
    """Maps a quasi-identifier column to coarser output columns; unknown values become missing, counted."""

    method: str

    @abstractmethod
    def outputs(self) -> list[str]:
        """Names of the columns this generalization produces."""

    @abstractmethod
    def apply(self, values: pd.Series) -> GeneralizationResult:
        """Generalize a column (its index is preserved in the outputs)."""

    @staticmethod
    def empty_mask(values: pd.Series) -> pd.Series:
        """True where a value is missing or blank."""
        return (values.isna() | (values.astype("string").str.strip() == "")).fillna(True).astype(bool)
