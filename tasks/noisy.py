"""Noisy values as they leave a node, and the intervals the coordinator prints beside them.

A value released under the Gaussian mechanism travels with the standard deviation of the noise
that was added to it, so whoever reads it (coordinator, report, auditor) can state its 95 %
interval without knowing anything else about the node. Pure arithmetic: no randomness here —
the noise itself is drawn at the node (``node_agent.dp_release``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class NoisyValue:
    """One released statistic: ``value`` = true value + N(0, ``noise_std``²)."""

    value: float
    noise_std: float

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The two-sided interval that covers the true value with probability ``level`` (noise only)."""
        half = normal_quantile(level) * self.noise_std
        return self.value - half, self.value + half

    def __add__(self, other: NoisyValue) -> NoisyValue:
        """Sum of independent releases (e.g. one per site): variances add."""
        return NoisyValue(self.value + other.value, math.hypot(self.noise_std, other.noise_std))


def normal_quantile(level: float) -> float:
    """z such that P(|N(0,1)| ≤ z) = level."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    # The standard library's quantile (Wichura's AS241, as SciPy's): importing scipy.stats costs a
    # node's every message about a second.
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def ratio_interval(
    numerator: NoisyValue, denominator: NoisyValue, level: float = 0.95
) -> tuple[float, float, float]:
    """A share (noisy sum over noisy count) with a delta-method interval, clipped to the data's range.

    Returns (estimate, low, high); NaN everywhere when the noisy denominator is not positive.
    """
    if denominator.value <= 0:
        return math.nan, math.nan, math.nan
    estimate = numerator.value / denominator.value
    std = math.hypot(numerator.noise_std, estimate * denominator.noise_std) / denominator.value
    half = normal_quantile(level) * std
    return estimate, estimate - half, estimate + half


def simulated_intervals(
    statistic: Callable[[np.ndarray], np.ndarray],
    values: np.ndarray,
    stds: np.ndarray,
    *,
    level: float = 0.95,
    draws: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimate and interval of each output of a function of noisy values (AUC, rates, gaps).

    The estimate is the statistic at the released values; the half-width is the normal quantile times
    the standard deviation of the statistic over fresh Gaussian noise of the released law (a
    parametric bootstrap: first-order, it covers the DP noise only, not the holdout's sampling error).
    The coordinator's seed is fixed so a report is reproducible: this randomness protects no one.
    """
    values, stds = np.asarray(values, dtype=float), np.asarray(stds, dtype=float)
    estimate = np.asarray(statistic(values), dtype=float)
    rng = np.random.default_rng(seed)
    samples = np.array([statistic(values + stds * rng.standard_normal(values.shape)) for _ in range(draws)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (an undefined statistic)
        spread = np.nanstd(samples, axis=0)
    half = normal_quantile(level) * spread
    return estimate, estimate - half, estimate + half


def linear_ratio(
    values: npt.ArrayLike,
    stds: npt.ArrayLike,
    numerator: npt.ArrayLike,
    denominator: npt.ArrayLike,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """(Σ aᵢXᵢ) / (Σ bᵢXᵢ) of independent noisy values Xᵢ, with a delta-method interval.

    Shares whose numerator is part of their denominator (employed / everyone), means and value
    added all take this form; unlike :func:`ratio_interval` the two sums may share terms.
    Returns (estimate, low, high); NaN everywhere when the noisy denominator is not positive.
    """
    x, s = np.asarray(values, dtype=float), np.asarray(stds, dtype=float)
    a, b = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    den = float(b @ x)
    if den <= 0:
        return math.nan, math.nan, math.nan
    estimate = float(a @ x) / den
    std = math.sqrt(float((((a - estimate * b) / den) ** 2) @ (s**2)))
    half = normal_quantile(level) * std
    return estimate, estimate - half, estimate + half
