"""The known model behind the synthetic outcomes, so that a federated model can be judged against truth.

``employed_6m`` follows a logistic model of the labour-market tension of the person's (bassin,
occupation) pair and of the profile. Coefficients are on the log-odds scale; the values are chosen to
be plausible in sign and size (tension and qualification help, long unemployment and age after 45
hurt), not estimated from any data. The sex gap is deliberately small and non-zero, so that the
fairness report has a real, known gap to measure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from tasks.schema import EDUCATION_LEVELS

EDUCATION_RANK = {level: rank for rank, level in enumerate(EDUCATION_LEVELS)}


@dataclass(frozen=True)
class GroundTruth:
    """Log-odds of employment within 6 months = sum of the terms below."""

    intercept: float = -0.55
    #: per unit of tension score in [0, 1], centred at 0.5 (tension = hiring difficulty → easier return)
    tension: float = 1.6
    #: per education level step (infra_bac = 0 … bac+5 = 4)
    education_step: float = 0.18
    #: per month of unemployment before registration, capped at ``months_unemployed_cap``
    months_unemployed: float = -0.035
    months_unemployed_cap: int = 36
    #: per year of age above 45
    age_over_45: float = -0.045
    #: under 26: first-job penalty
    age_under_26: float = -0.15
    driving_licence: float = 0.45
    #: per km of accepted commuting distance, capped at ``mobility_cap_km``
    mobility_km: float = 0.008
    mobility_cap_km: int = 60
    training_followed: float = 0.35
    #: target occupation equals the previous one (experience in the trade)
    same_occupation: float = 0.30
    #: women vs men (the documented gap the fairness report should find)
    female: float = -0.15
    reference_year: int = 2025

    def logit(
        self,
        *,
        tension: np.ndarray,
        education_level: np.ndarray,
        months_unemployed: np.ndarray,
        birth_year: np.ndarray,
        driving_licence: np.ndarray,
        mobility_km: np.ndarray,
        training_followed: np.ndarray,
        same_occupation: np.ndarray,
        sex: np.ndarray,
    ) -> np.ndarray:
        """Log-odds of ``employed_6m`` for each person (arrays of equal length)."""
        level = pd.Series(education_level).map(EDUCATION_RANK).to_numpy(dtype=float)
        age = self.reference_year - np.asarray(birth_year, dtype=float)
        logit: np.ndarray = (
            self.intercept
            + self.tension * (np.asarray(tension, dtype=float) - 0.5)
            + self.education_step * level
            + self.months_unemployed * np.minimum(months_unemployed, self.months_unemployed_cap)
            + self.age_over_45 * np.maximum(age - 45.0, 0.0)
            + self.age_under_26 * (age < 26)
            + self.driving_licence * np.asarray(driving_licence, dtype=float)
            + self.mobility_km * np.minimum(mobility_km, self.mobility_cap_km)
            + self.training_followed * np.asarray(training_followed, dtype=float)
            + self.same_occupation * np.asarray(same_occupation, dtype=float)
            + self.female * (np.asarray(sex) == "F")
        )
        return logit

    def probability(self, **features: np.ndarray) -> np.ndarray:
        """P(employed within 6 months) for each person."""
        probability: np.ndarray = 1.0 / (1.0 + np.exp(-self.logit(**features)))
        return probability

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


GROUND_TRUTH = GroundTruth()
