"""ISO date → month (YYYY-MM): the day is what makes a date identifying."""

from __future__ import annotations

import pandas as pd

from anonymization.generalization.age_band import _positions
from anonymization.generalization.base import GeneralizationResult, Generalizer


class MonthGeneralizer(Generalizer):
    """Truncate dates to their month; strings that are not dates are counted as unknown."""

    method = "month"

    def __init__(self, output: str) -> None:
        self.output = output

    def outputs(self) -> list[str]:
        return [self.output]

    def apply(self, values: pd.Series) -> GeneralizationResult:
        empty = self.empty_mask(values)
        dates = pd.to_datetime(values.astype("string").str.strip(), errors="coerce", format="ISO8601")
        month = dates.dt.strftime("%Y-%m").astype("string")
        unknown = ~empty & dates.isna()
        return GeneralizationResult(
            columns={self.output: month},
            empty_positions=_positions(empty),
            unknown_positions=_positions(unknown),
        )
