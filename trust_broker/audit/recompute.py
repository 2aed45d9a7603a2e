"""The auditor's own accountant: Google's ``dp-accounting`` RDP, independent of the ledger's code.

The ledger decides with ``ledger.analysis`` (Opacus' analysis, and dp-accounting's curve where it is
larger); the auditor recomputes each account's ε from the recorded parameters with dp-accounting's
curve and its own RDP → (ε, δ) conversion, over the same orders (``RDP_ORDERS``). Since the ledger's
curve is, order by order, never below dp-accounting's, the broker's ε may never be below the
auditor's: the auditor holds it to that up to ``FLOAT_TOLERANCE`` (relative; floating-point
rounding, nothing else: no slack above a cap). The broker's ε above the auditor's is conservative
(Opacus' bound is the looser one at some orders) and is reported, not refused.

``pld_epsilon`` (privacy loss distributions, dp-accounting) is reported beside: the tightest of the
three, it shows how much the RDP books over-state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
from absl import logging as absl_logging
from dp_accounting.rdp import rdp_privacy_accountant

from trust_broker.ledger.analysis import RDP_ORDERS
from trust_broker.ledger.mechanisms import GaussianQuery, SubsampledGaussian
from trust_broker.ledger.state import mechanism_of

# dp-accounting logs (absl) every RDP order it drops as non-converging; the recomputed ε already
# accounts for them, and an auditor's or a demo's output should show verdicts, not that noise.
absl_logging.set_verbosity(absl_logging.ERROR)

FLOAT_TOLERANCE = 1e-9
"""Relative floating-point tolerance of every comparison the auditor makes (ε to ε, ε to a cap)."""
ABSOLUTE_FLOOR = 1e-12
"""Below this, two ε are both zero (a released account)."""


def tolerance(epsilon: float) -> float:
    """How far two computations of the same ε may differ by rounding alone."""
    return FLOAT_TOLERANCE * abs(epsilon) + ABSOLUTE_FLOOR


@lru_cache(maxsize=4096)
def _unit_curve(kind: str, noise_multiplier: float, sample_rate: float) -> np.ndarray:
    """dp-accounting's RDP of one application over ``RDP_ORDERS`` (cached: a log repeats few)."""
    if kind == "gaussian" or sample_rate >= 1.0:
        curve = np.asarray(RDP_ORDERS, dtype=float) / (2.0 * noise_multiplier**2)
    elif kind == "subsampled_gaussian":
        curve = np.asarray(
            rdp_privacy_accountant._compute_rdp_poisson_subsampled_gaussian(  # noqa: SLF001 - the pure curve
                sample_rate, noise_multiplier, list(RDP_ORDERS)
            ),
            dtype=float,
        )
    else:
        raise ValueError(f"the auditor has no accountant for mechanism kind {kind!r}")
    curve = np.where(np.isnan(curve), np.inf, curve)
    curve.setflags(write=False)
    return curve


def _curve(mechanisms: Iterable[Any]) -> np.ndarray:
    total = np.zeros(len(RDP_ORDERS), dtype=float)
    for mechanism in mechanisms:
        if isinstance(mechanism, SubsampledGaussian):
            unit = _unit_curve(mechanism.kind, mechanism.noise_multiplier, mechanism.sample_rate)
            repeats = mechanism.steps
        elif isinstance(mechanism, GaussianQuery):
            unit = _unit_curve(mechanism.kind, mechanism.noise_multiplier, 1.0)
            repeats = mechanism.count
        else:
            raise ValueError(f"the auditor has no accountant for mechanism kind {mechanism.kind!r}")
        total = total + repeats * unit
    return total


def recompute_epsilon(mechanisms: Iterable[Any], delta: float) -> float:
    """ε of the composed mechanisms at ``delta`` according to dp-accounting's RDP analysis."""
    if not 0.0 < delta < 1.0:
        raise ValueError(f"δ must be in (0, 1), got {delta}")
    return epsilon_of_curve(_curve(mechanisms), delta)


_ORDERS = np.asarray(RDP_ORDERS, dtype=float)


def epsilon_of_curve(curve: np.ndarray, delta: float) -> float:
    """dp-accounting's ``compute_epsilon`` (Proposition 12 of arXiv 2004.00010, its special cases
    included), over all orders at once: the library loops over them in Python, ≈ 1 ms per call, which
    was half of an audit's time. ``tests/trust_broker/audit`` checks it against the library."""
    if not np.any(curve):
        return 0.0
    with np.errstate(all="ignore"):
        bound = curve + np.log1p(-1.0 / _ORDERS) - np.log(delta * _ORDERS) / (_ORDERS - 1.0)
        bound = np.where(_ORDERS > 1.01, bound, np.inf)
        bound = np.where(delta**2 + np.expm1(-curve) > 0, 0.0, bound)  # bounded through KL already
        bound = np.where(curve < 0, 0.0, bound)
    return max(0.0, float(np.min(bound)))


def library_epsilon_of_curve(curve: np.ndarray, delta: float) -> float:
    """The library's own loop, for the check above."""
    epsilon, _ = rdp_privacy_accountant.compute_epsilon(list(RDP_ORDERS), list(curve), delta)
    return max(0.0, float(epsilon))


@lru_cache(maxsize=8192)
def _spelled_curve(text: str) -> np.ndarray:
    curve = _curve([mechanism_of(text)])
    curve.setflags(write=False)
    return curve


def charged_epsilon(charged: Mapping[str, int], delta: float) -> float:
    """ε of an account's charge (mechanism spelling → how many), by dp-accounting's analysis."""
    total = np.zeros(len(RDP_ORDERS), dtype=float)
    for text, count in charged.items():
        if count:
            total = total + count * _spelled_curve(text)
    return epsilon_of_curve(total, delta)


def pld_epsilon(mechanisms: Iterable[Any], delta: float) -> float:
    """ε by privacy loss distributions (dp-accounting's PLD accountant), reported beside RDP's."""
    from trust_broker.ledger.accountant import get_accountant

    return get_accountant("pld").epsilon(list(mechanisms), delta)
