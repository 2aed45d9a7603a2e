"""Statistics released from a node under the Gaussian mechanism, with randomness secret to the node.

Everything about a site's records that leaves the node — evaluation metrics, histograms, group
rates, record counts, query answers — goes through :func:`release`: values are clamped by the
caller to the bounds their sensitivity assumes, noise N(0, (σ·Δ₂)²) is drawn from
:class:`NodeRandomness`, and the ledger records a ``gaussian`` mechanism (:meth:`GaussianRelease.
mechanism`) reserved *before* the noise is drawn and committed after. The coordinator never chooses
this randomness: a seed it could know would let it subtract the noise (issue 10, finding 2).
"""

from __future__ import annotations

import fcntl
import json
import math
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from policies.models import EvaluationBudget
from tasks.noisy import NoisyValue

from .declined import NodeDeclined

if TYPE_CHECKING:  # torch loads only where a model trains: a query message never pays for it
    import torch


class NodeRandomness:
    """The node's source of protective randomness.

    By default every generator is seeded with 128 fresh bits from the operating system's CSPRNG
    (``secrets``), drawn at the node, per use. A ``reproducible_seed`` exists only for tests and
    debugging; it is a node-side setting, and anything trained with it is not private
    (``private`` is False and reports must say so).
    """

    def __init__(self, reproducible_seed: int | None = None) -> None:
        self._seed = reproducible_seed
        self._draws = 0

    @classmethod
    def for_node(cls, reproducible_seed: int | None, stream: int = 0) -> NodeRandomness:
        """Secret unless the node's own settings ask for reproducible (and then not private) runs;
        ``stream`` (a round, say) keeps a reproducible node's draws apart from one use to the next."""
        if reproducible_seed is None:
            return cls()
        return cls(reproducible_seed=reproducible_seed * 1000 + stream)

    @property
    def private(self) -> bool:
        return self._seed is None

    def _next_seed(self) -> int:
        self._draws += 1
        if self._seed is None:
            return secrets.randbits(128)
        return (self._seed * 1_000_003 + self._draws) % (1 << 63)

    def numpy(self) -> np.random.Generator:
        return np.random.default_rng(self._next_seed())

    def torch(self) -> torch.Generator:
        import torch

        return torch.Generator().manual_seed(self._next_seed() % (1 << 63))


@dataclass(frozen=True)
class GaussianRelease:
    """``count`` Gaussian releases, each of L2 sensitivity ``l2_sensitivity``, at noise multiplier σ.

    ``count`` is how many such vectors one reservation covers (e.g. one per evaluation); σ is
    relative to the sensitivity, as the ledger records it.
    """

    noise_multiplier: float
    l2_sensitivity: float
    delta: float
    count: int = 1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.noise_multiplier) and self.noise_multiplier > 0):
            raise ValueError(f"noise multiplier must be finite and > 0, got {self.noise_multiplier}")
        if not (math.isfinite(self.l2_sensitivity) and self.l2_sensitivity > 0):
            raise ValueError(f"L2 sensitivity must be finite and > 0, got {self.l2_sensitivity}")
        if self.count < 1:
            raise ValueError(f"count must be ≥ 1, got {self.count}")

    @property
    def noise_std(self) -> float:
        return self.noise_multiplier * self.l2_sensitivity

    def mechanism(self) -> dict[str, float | int | str]:
        """The ledger's record of these releases (kind ``gaussian``, docs/CONTRACTS.md)."""
        return {
            "kind": "gaussian",
            "noise_multiplier": self.noise_multiplier,
            "count": self.count,
            "delta": self.delta,
        }


def release(values: np.ndarray, spec: GaussianRelease, randomness: NodeRandomness) -> list[NoisyValue]:
    """Add the mechanism's noise to ``values`` (already clamped by the caller to the sensitivity's bounds)."""
    flat = np.asarray(values, dtype=float).reshape(-1)
    if not np.all(np.isfinite(flat)):
        raise ValueError("a released statistic is not finite: clamp before releasing")
    noisy = flat + randomness.numpy().normal(0.0, spec.noise_std, size=flat.shape)
    return [NoisyValue(float(v), spec.noise_std) for v in noisy]


def noise_multiplier_for(epsilon: float, delta: float, count: int = 1) -> float:
    """σ such that ``count`` Gaussian releases compose to (ε, δ) under RDP — the ledger's accountant."""
    import dp_accounting
    from dp_accounting.rdp import RdpAccountant

    if not (epsilon > 0 and 0 < delta < 1 and count >= 1):
        raise ValueError(f"cannot calibrate for ε={epsilon}, δ={delta}, count={count}")
    return float(
        dp_accounting.mechanism_calibration.calibrate_dp_mechanism(
            RdpAccountant,
            lambda sigma: dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(sigma), count),
            epsilon,
            delta,
            bracket_interval=dp_accounting.mechanism_calibration.LowerEndpointAndGuess(1e-3, 1.0),
        )
    )


def evaluation_release(
    budget: EvaluationBudget, target_epsilon: float, delta: float, l2_sensitivity: float
) -> GaussianRelease | None:
    """One holdout evaluation's Gaussian release, calibrated so that the grant's number of them
    composes to the budget's share of the site's study ε (None: no evaluation is paid for, or the
    node runs non-private benchmark training, ε = ∞, whose evaluations are exact and say so)."""
    if budget.evaluations == 0 or not math.isfinite(target_epsilon):
        return None
    sigma = noise_multiplier_for(budget.epsilon_share * target_epsilon, delta, budget.evaluations)
    return GaussianRelease(noise_multiplier=sigma, l2_sensitivity=l2_sensitivity, delta=delta, count=1)


class ReleaseCounter:
    """The node's own count of one study's releases of one kind, kept on the node's disk.

    In deployment every message runs in a fresh process, and the coordinator may send the same
    evaluation again or open a new run of the study: the count must outlive both, so it lives in a
    file the node owns (locked while it is read and bumped). A number is claimed *before* the
    release is reserved, and never given back: a crash between the two costs the site an
    evaluation, never a person a release the grant did not pay for.
    """

    def __init__(self, folder: Path, study_id: str, kind: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", study_id)
        self.path = folder / f"{safe}.{kind}.json"
        self.kind = kind

    def used(self) -> int:
        if not self.path.exists():
            return 0
        return int(json.loads(self.path.read_text(encoding="utf-8"))["used"])

    def claim(self, granted: int) -> int:
        """The next release's number (1-based); NodeDeclined ``grant.<kind>s`` past ``granted``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            used = self.used()
            if used >= granted:
                raise NodeDeclined(
                    f"grant.{self.kind}s",
                    f"{self.kind} {used + 1} refused: the grant pays for {granted} and {used} were released",
                )
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"used": used + 1}), encoding="utf-8")
            tmp.replace(self.path)
            return used + 1


def gaussian_epsilon(releases: list[tuple[float, int]], delta: float) -> float:
    """ε of (σ, count) Gaussian releases composed under RDP at ``delta`` (what the ledger computes)."""
    import dp_accounting
    from dp_accounting.rdp import RdpAccountant

    accountant = RdpAccountant()
    for sigma, count in releases:
        accountant.compose(dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(sigma), count))
    return float(accountant.get_epsilon(delta))
