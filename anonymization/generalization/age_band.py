"""Birth year (or birth date) → age band at a reference year."""

from __future__ import annotations

import pandas as pd

from anonymization.generalization.base import GeneralizationResult, Generalizer

DEFAULT_BOUNDS = (16, 26, 36, 46, 56)
MIN_PLAUSIBLE_AGE, MAX_PLAUSIBLE_AGE = 10, 110


def band_labels(bounds: tuple[int, ...]) -> list[str]:
    """'16-25', '26-35', …, '56+' for the default bounds."""
    labels = [f"{low}-{high - 1}" for low, high in zip(bounds, bounds[1:], strict=False)]
    return [*labels, f"{bounds[-1]}+"]


class AgeBandGeneralizer(Generalizer):
    """Age = reference year − birth year; ages under the first bound fall in the first band (counted)."""

    method = "age_band"

    def __init__(
        self, output: str = "age_band", reference_year: int = 2025, bounds: tuple[int, ...] = DEFAULT_BOUNDS
    ) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError("age band bounds must be strictly increasing")
        self.output = output
        self.reference_year = reference_year
        self.bounds = tuple(bounds)
        self.labels = band_labels(self.bounds)

    def outputs(self) -> list[str]:
        return [self.output]

    def apply(self, values: pd.Series) -> GeneralizationResult:
        empty = self.empty_mask(values)
        text = values.astype("string").str.strip()
        year = pd.to_numeric(text.str.slice(0, 4).where(text.str.len() >= 4, text), errors="coerce")
        age = (self.reference_year - year).astype("float64")
        plausible = age.between(MIN_PLAUSIBLE_AGE, MAX_PLAUSIBLE_AGE).fillna(False).astype(bool)
        unknown = ~empty & ~plausible
        index = pd.cut(age.where(plausible), bins=[-1, *self.bounds[1:], 10_000], right=False, labels=False)
        bands = pd.Series(pd.NA, index=values.index, dtype="string")
        known = index.notna()
        bands[known] = [self.labels[int(i)] for i in index[known]]
        below = int((age[plausible] < self.bounds[0]).sum())
        return GeneralizationResult(
            columns={self.output: bands},
            empty_positions=_positions(empty),
            unknown_positions=_positions(unknown),
            details={"reference_year": self.reference_year, "below_first_band": below},
        )


def _positions(mask: pd.Series) -> list[int]:
    return [int(i) for i in mask.fillna(False).to_numpy(dtype=bool).nonzero()[0]]
