"""RDP of the recorded mechanisms with Opacus' analysis (``opacus/accountants/analysis/rdp.py``), torch-free.

The ledger uses the same analysis as the nodes, who calibrate with Opacus' RDP accountant, so a node
and the broker agree on what a round costs. Auditors recompute with another library (dp-accounting).

That analysis is pure functions over math, NumPy and SciPy, but importing it as
``opacus.accountants.analysis.rdp`` runs ``opacus/__init__.py``, which imports torch (≈ 10 s and
400 MB per broker process). ``_opacus_rdp`` loads the very same file on its own, so the broker and
the auditor never import torch (issue 17; ``tests/trust_broker/ledger`` checks it).

Every curve is checked before it is used: an RDP value is never negative (a Rényi divergence is
not) and never NaN; a value the analysis cannot bound is +∞ (the mechanism then costs ε = ∞ and is
refused). So composition is monotone: adding a mechanism never lowers an account's ε.

``RDP_ORDERS`` is fixed, so that an ε recorded today can be recomputed identically later: Opacus'
default orders (1.1 … 10.9 by 0.1, then 12 … 63) plus 128, 256, 512 and 1024, which keep the bound
tight for small ε (heavily noised, few steps) where the optimal order is large.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from absl import logging as absl_logging

from trust_broker.ledger.mechanisms import GaussianQuery, SubsampledGaussian

_OPACUS_RDP_MODULE = "trust_broker.ledger._opacus_rdp"


def _opacus_rdp() -> ModuleType:
    """Opacus' ``accountants/analysis/rdp.py``, loaded from its file without the ``opacus`` package."""
    loaded = sys.modules.get(_OPACUS_RDP_MODULE)
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec("opacus")  # locates the package; does not run its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("Opacus is not installed: the ledger needs its RDP analysis")
    path = Path(next(iter(spec.submodule_search_locations))) / "accountants" / "analysis" / "rdp.py"
    module_spec = importlib.util.spec_from_file_location(_OPACUS_RDP_MODULE, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[_OPACUS_RDP_MODULE] = module
    module_spec.loader.exec_module(module)
    return module


opacus_rdp = _opacus_rdp()


def _dp_accounting_rdp() -> ModuleType:
    """dp-accounting's ``rdp/rdp_privacy_accountant.py`` (pure: math, NumPy, SciPy's special functions),
    without running ``dp_accounting/__init__.py``, which imports the PLD and calibration modules and so
    ``scipy.stats``: 55 MB per broker process for functions the broker never calls.

    If the package is already imported (an auditor, a node), its module is used. Otherwise the RDP
    module is imported under a bare package object that is removed again afterwards, so a later
    ``import dp_accounting`` elsewhere in the process gets the real package.
    """
    if "dp_accounting" in sys.modules:
        return importlib.import_module("dp_accounting.rdp.rdp_privacy_accountant")
    spec = importlib.util.find_spec("dp_accounting")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("dp-accounting is not installed: the ledger needs its RDP analysis")
    bare = ModuleType("dp_accounting")
    bare.__path__ = list(spec.submodule_search_locations)
    sys.modules["dp_accounting"] = bare
    try:
        return importlib.import_module("dp_accounting.rdp.rdp_privacy_accountant")
    finally:
        for name in [
            name for name in sys.modules if name == "dp_accounting" or name.startswith("dp_accounting.")
        ]:
            del sys.modules[name]


dp_rdp = _dp_accounting_rdp()
# dp-accounting logs (absl) every order it cannot bound; the curve already says so (+∞).
absl_logging.set_verbosity(absl_logging.ERROR)

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
    """The larger, order by order, of Opacus' and dp-accounting's RDP of one subsampled Gaussian step.

    Both implement Mironov et al. 2019, but Opacus' series for fractional orders does not check its
    convergence: near q = 0.5 it returned values up to 2 % too small (ε under-stated), where
    dp-accounting says it could not bound the order (+∞, the order is then not used). Taking the
    larger of the two makes the ledger's ε never below either library's, so the auditor can hold the
    broker to its books exactly (``audit.recompute``).
    """
    opacus = np.asarray(
        opacus_rdp.compute_rdp(
            q=mechanism.sample_rate,
            noise_multiplier=mechanism.noise_multiplier,
            steps=1,
            orders=list(orders),
        ),
        dtype=float,
    )
    google = np.asarray(
        dp_rdp._compute_rdp_poisson_subsampled_gaussian(  # noqa: SLF001 - the pure curve, no accountant
            mechanism.sample_rate, mechanism.noise_multiplier, list(orders)
        ),
        dtype=float,
    )
    curve: np.ndarray = np.fmax(sound_curve(opacus), sound_curve(google)) * mechanism.steps
    return curve


@rdp_of("gaussian")
def _gaussian(mechanism: GaussianQuery, orders: tuple[float, ...]) -> np.ndarray:
    # The Gaussian mechanism is the subsampled one at q = 1: RDP α/(2σ²) per release (closed form).
    return np.asarray(orders, dtype=float) / (2.0 * mechanism.noise_multiplier**2) * mechanism.count


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
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        values = np.asarray(curve(unit, orders), dtype=float)
    values = sound_curve(values)
    values.setflags(write=False)
    return values


def sound_curve(values: np.ndarray) -> np.ndarray:
    """An RDP curve as the ledger may use it: NaN (no bound) is +∞, and nothing is below 0."""
    bounded: np.ndarray = np.maximum(np.where(np.isnan(values), np.inf, values), 0.0)
    return bounded


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


@lru_cache(maxsize=8192)
def _spelled_curve(text: str, orders: tuple[float, ...]) -> np.ndarray:
    from trust_broker.ledger.state import mechanism_of  # state reads spellings; no cycle at import

    curve = rdp_curve([mechanism_of(text)], orders)
    curve.setflags(write=False)
    return curve


def charged_curve(charged: Mapping[str, int], orders: tuple[float, ...] = RDP_ORDERS) -> np.ndarray:
    """RDP of an account's charge (mechanism spelling → how many): the ledger's hot path, one cached
    curve per distinct mechanism, no model built per call."""
    total = np.zeros(len(orders), dtype=float)
    for text, count in charged.items():
        if count < 0:
            raise ValueError(f"negative charge {count} for {text}")
        if count:
            total = total + count * _spelled_curve(text, orders)
    return total


def epsilon_from_rdp(rdp: np.ndarray, delta: float, orders: tuple[float, ...] = RDP_ORDERS) -> float:
    """Convert an RDP curve to ε at ``delta`` (Balle et al. 2020, Thm 21, as Opacus does)."""
    rdp = sound_curve(np.asarray(rdp, dtype=float))
    if not np.any(rdp):
        return 0.0
    if not np.any(np.isfinite(rdp)):
        return math.inf
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # Opacus warns when the optimum sits at an end of the orders; the fixed list is documented above.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        eps, _ = opacus_rdp.get_privacy_spent(orders=list(orders), rdp=rdp, delta=delta)
    eps = float(eps)
    return math.inf if math.isnan(eps) else max(0.0, eps)
