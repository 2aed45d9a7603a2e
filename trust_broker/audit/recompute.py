"""The auditor's own accountant: Google's ``dp-accounting`` RDP, independent of Opacus.

The ledger and the nodes use Opacus' analysis; the auditor recomputes each account's ε from the
recorded parameters with another implementation, so a bug (or a thumb on the scale) in one is not
silently shared by the other. A DP-SGD round is ``PoissonSampledDpEvent(q, GaussianDpEvent(σ))``
self-composed ``steps`` times; a Gaussian query is ``GaussianDpEvent(σ)`` self-composed ``count`` times.

The two libraries use slightly different RDP orders and numerics, hence a tolerance:
``|recorded − recomputed| ≤ RELATIVE_TOLERANCE · recomputed + ABSOLUTE_TOLERANCE`` (2 % + 1e-3). The
measured gap on a grid of (σ, q, steps) is far below it (see tests/trust_broker/audit).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from absl import logging as absl_logging
from dp_accounting import dp_event
from dp_accounting.rdp import rdp_privacy_accountant

# dp-accounting logs (absl) every RDP order it drops as non-converging; the recomputed ε already
# accounts for them, and an auditor's or a demo's output should show verdicts, not that noise.
absl_logging.set_verbosity(absl_logging.ERROR)

RELATIVE_TOLERANCE = 0.02
ABSOLUTE_TOLERANCE = 1e-3

DpEventOf = Callable[[Any], tuple[dp_event.DpEvent, int]]
"""Maps a recorded mechanism to (one application as a DpEvent, how many times it was applied)."""

DP_EVENT_OF_KIND: dict[str, DpEventOf] = {
    "subsampled_gaussian": lambda m: (
        dp_event.PoissonSampledDpEvent(m.sample_rate, dp_event.GaussianDpEvent(m.noise_multiplier)),
        m.steps,
    ),
    "gaussian": lambda m: (dp_event.GaussianDpEvent(m.noise_multiplier), m.count),
}


def tolerance(epsilon: float) -> float:
    """How far two accountants may disagree on ``epsilon`` before the auditor calls it a mismatch."""
    return RELATIVE_TOLERANCE * abs(epsilon) + ABSOLUTE_TOLERANCE


def _merged(mechanisms: Iterable[Any]) -> tuple[tuple[dp_event.DpEvent, int], ...]:
    counts: Counter[dp_event.DpEvent] = Counter()
    for mechanism in mechanisms:
        try:
            event, repeats = DP_EVENT_OF_KIND[mechanism.kind](mechanism)
        except KeyError as exc:
            raise ValueError(f"the auditor has no accountant for mechanism kind {mechanism.kind!r}") from exc
        counts[event] += repeats
    return tuple(sorted(counts.items(), key=repr))


def to_dp_event(mechanisms: Iterable[Any]) -> dp_event.ComposedDpEvent:
    """The composition of ``mechanisms`` as one dp-accounting event (identical applications merged)."""
    return dp_event.ComposedDpEvent([dp_event.SelfComposedDpEvent(e, n) for e, n in _merged(mechanisms)])


@lru_cache(maxsize=4096)
def _epsilon_of(merged: tuple[tuple[dp_event.DpEvent, int], ...], delta: float) -> float:
    # Cached: replaying an account re-composes mostly the same histories (reserve, then commit).
    accountant = rdp_privacy_accountant.RdpAccountant()
    accountant.compose(dp_event.ComposedDpEvent([dp_event.SelfComposedDpEvent(e, n) for e, n in merged]))
    return float(accountant.get_epsilon(delta))


def recompute_epsilon(mechanisms: Iterable[Any], delta: float) -> float:
    """ε of the composed mechanisms at ``delta`` according to dp-accounting's RDP accountant."""
    if not 0.0 < delta < 1.0:
        raise ValueError(f"δ must be in (0, 1), got {delta}")
    merged = _merged(mechanisms)
    if not merged:
        return 0.0
    return _epsilon_of(merged, delta)
