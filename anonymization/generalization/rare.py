"""Group rare categories: a value shared by fewer than `min_count` records singles people out."""

from __future__ import annotations

import pandas as pd

from anonymization.generalization.age_band import _positions
from anonymization.generalization.base import GeneralizationResult, Generalizer


class RareCategoryGeneralizer(Generalizer):
    """Replace categories seen fewer than `min_count` times by `other`."""

    method = "group_rare"

    def __init__(self, output: str, min_count: int = 11, other: str = "autre") -> None:
        if min_count < 1:
            raise ValueError("min_count must be at least 1")
        self.output = output
        self.min_count = min_count
        self.other = other

    def outputs(self) -> list[str]:
        return [self.output]

    def apply(self, values: pd.Series) -> GeneralizationResult:
        empty = self.empty_mask(values)
        text = values.astype("string")
        counts = text[~empty].value_counts()
        rare = set(counts[counts < self.min_count].index)
        grouped = text.where(~text.isin(rare), self.other)
        return GeneralizationResult(
            columns={self.output: grouped},
            empty_positions=_positions(empty),
            details={
                "min_count": self.min_count,
                "categories_grouped": len(rare),
                "records_grouped": int(text.isin(rare).sum()),
            },
        )
