"""RDP of the recorded mechanisms with Opacus' analysis (``opacus.accountants.analysis.rdp``).

The ledger uses the same analysis as the nodes, who calibrate with Opacus' RDP accountant, so a node
and the broker agree on what a round costs. Auditors recompute with another library (dp-accounting).

``RDP_ORDERS`` is fixed, so that an ε recorded today can be recomputed identically later: Opacus'
default orders (1.1 … 10.9 by 0.1, then 12 … 63) plus 128, 256, 512 and 1024, which keep the bound
tight for small ε (heavily noised, few steps) where the optimal order is large.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

import numpy as np
from opacus.accountants.analysis import rdp as opacus_rdp

from trust_broker.ledger.mechanisms import GaussianQuery, SubsampledGaussian

RDP_ORDERS: tuple[float, ...] = (
    tuple(1 + x / 10.0 for x in range(1, 100))
    + tuple(float(a) for a in range(12, 64))
    + (128.0, 256.0, 512.0, 1024.0)
)

RdpOf = Callable[[Any, tuple[float, ...]], np.ndarray]

RDP_OF_KIND: dict[str, RdpOf] = {}


def rdp_of(kind: str) -> Callable[[RdpOf], RdpOf]:
    """Register the RDP curve of one mechanism kind (a registry, so new kinds need no if-chain)."""

    def register(fn: RdpOf) -> RdpOf:
        RDP_OF_KIND[kind] = fn
        return fn

    return register


@rdp_of("subsampled_gaussian")
def _subsampled_gaussian(mechanism: SubsampledGaussian, orders: tuple[float, ...]) -> np.ndarray:
    return np.asarray(
        opacus_rdp.compute_rdp(
            q=mechanism.sample_rate,
            noise_multiplier=mechanism.noise_multiplier,
            steps=mechanism.steps,
            orders=list(orders),
        ),
        dtype=float,
    )


@rdp_of("gaussian")
def _gaussian(mechanism: GaussianQuery, orders: tuple[float, ...]) -> np.ndarray:
    # The Gaussian mechanism is the subsampled one at q = 1: RDP α/(2σ²) per release.
    return np.asarray(
        opacus_rdp.compute_rdp(
            q=1.0, noise_multiplier=mechanism.noise_multiplier, steps=mechanism.count, orders=list(orders)
        ),
        dtype=float,
    )


REPEAT_FIELD: dict[str, str] = {"subsampled_gaussian": "steps", "gaussian": "count"}
"""The field that counts self-compositions of a kind; identical mechanisms merge by adding it."""


def merge_repeats(mechanisms: Iterable[Any]) -> list[Any]:
    """Merge mechanisms that differ only in repetitions (and δ, which RDP does not depend on).

    Exact for RDP (a k-fold composition has k times the curve) and it makes a long history of
    identical rounds cost one curve evaluation.
    """
    merged: dict[tuple[Any, ...], Any] = {}
    for mechanism in mechanisms:
        repeat = REPEAT_FIELD.get(mechanism.kind)
        if repeat is None:
            raise ValueError(f"no RDP analysis for mechanism kind {mechanism.kind!r}")
        key = tuple(sorted(mechanism.model_dump(exclude={repeat, "delta"}).items()))
        seen = merged.get(key)
        if seen is None:
            merged[key] = mechanism
        else:
            merged[key] = seen.model_copy(update={repeat: getattr(seen, repeat) + getattr(mechanism, repeat)})
    return list(merged.values())


@lru_cache(maxsize=1024)
def _single_application_curve(unit: Any, orders: tuple[float, ...]) -> np.ndarray:
    """RDP of one application (steps = 1 or count = 1); cached, since a broker sees the same few often."""
    try:
        curve = RDP_OF_KIND[unit.kind]
    except KeyError as exc:
        raise ValueError(f"no RDP analysis for mechanism kind {unit.kind!r}") from exc
    values = curve(unit, orders)
    values.setflags(write=False)
    return values


def rdp_curve(mechanisms: Iterable[Any], orders: tuple[float, ...] = RDP_ORDERS) -> np.ndarray:
    """RDP of the composition: the sum of each mechanism's curve (RDP composes additively per order).

    A k-fold repetition has exactly k times the curve of one application (as Opacus computes it).
    """
    total = np.zeros(len(orders), dtype=float)
    for mechanism in merge_repeats(mechanisms):
        repeat = REPEAT_FIELD[mechanism.kind]
        unit = mechanism.model_copy(update={repeat: 1, "delta": 0.5})  # δ plays no part in RDP
        total = total + getattr(mechanism, repeat) * _single_application_curve(unit, orders)
    return total


def epsilon_from_rdp(rdp: np.ndarray, delta: float, orders: tuple[float, ...] = RDP_ORDERS) -> float:
    """Convert an RDP curve to ε at ``delta`` (Balle et al. 2020, Thm 21, as Opacus does)."""
    if not np.any(rdp):
        return 0.0
    with warnings.catch_warnings():
        # Opacus warns when the optimum sits at an end of the orders; the fixed list is documented above.
        warnings.simplefilter("ignore", UserWarning)
        eps, _ = opacus_rdp.get_privacy_spent(orders=list(orders), rdp=rdp, delta=delta)
    return float(eps)
