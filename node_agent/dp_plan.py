"""Noise calibration for a whole study at one site.

The site's ε target holds for the *study*, all rounds composed, not per round: σ is chosen once
from the total number of DP-SGD steps the study will take, with the same RDP accountant the
ledger composes with, so that the node's own figure never undercuts the broker's.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass


class PrivacyPlanError(ValueError):
    """The study cannot be run under DP at this site as configured (named parameter at fault)."""


@dataclass(frozen=True)
class DpPlan:
    """What a site will spend: one subsampled Gaussian mechanism per round."""

    noise_multiplier: float
    sample_rate: float
    steps_per_epoch: int
    local_epochs: int
    rounds: int
    delta: float
    target_epsilon: float
    max_grad_norm: float
    #: The site's size the plan rests on: the node's noisy release of its record count
    #: (node_agent.site_size), never the exact count, unless the study is not private (ε = ∞).
    records: float

    @property
    def expected_batch(self) -> float:
        """q × the released size: what a DP-SGD step's noisy sum is divided by. Public, like q: an
        exact divisor q·n would make every update's scale a function of the exact count."""
        return self.sample_rate * self.records

    @property
    def steps_per_round(self) -> int:
        return self.steps_per_epoch * self.local_epochs

    @property
    def private(self) -> bool:
        return math.isfinite(self.target_epsilon)

    def round_mechanism(self) -> dict[str, float | int | str]:
        """The ledger's record of one round (see docs/CONTRACTS.md)."""
        return {
            "kind": "subsampled_gaussian",
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "steps": self.steps_per_round,
            "delta": self.delta,
        }

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def site_delta(requested_delta: float, n_records: float) -> float:
    """δ ≤ 1/(10·n): the design's rule, applied to the records this site trains on — at a node, to
    an upper bound of its released size (δ leaves the node with every reply and ledger record)."""
    if n_records <= 0:
        raise PrivacyPlanError("no training record left at this site")
    return min(requested_delta, 1.0 / (10.0 * n_records))


def plan_study(
    *,
    n_train: float,
    batch_size: int,
    local_epochs: int,
    rounds: int,
    target_epsilon: float,
    delta: float,
    max_grad_norm: float,
    min_records: int = 100,
) -> DpPlan:
    """Calibrate σ so that `rounds` rounds of `local_epochs` epochs compose to `target_epsilon`.

    ``n_train`` is the site's *released* size at a node (node_agent.site_size): q, the steps, σ and
    everything else in the plan leave the node, so none may be a function of the exact count.
    """
    if n_train < min_records:
        raise PrivacyPlanError(
            f"{n_train:.0f} training records, fewer than the {min_records} needed for a meaningful DP update"
        )
    if batch_size <= 0 or local_epochs <= 0 or rounds <= 0:
        raise PrivacyPlanError("batch-size, local-epochs and rounds must be positive")
    steps_per_epoch = math.ceil(n_train / batch_size)
    # Opacus' DPDataLoader samples each record with q = 1 / len(loader): keep exactly that.
    sample_rate = 1.0 / steps_per_epoch
    steps_per_round = steps_per_epoch * local_epochs
    sigma = 0.0  # ε = ∞: a run that is not private adds no noise
    if math.isfinite(target_epsilon):
        if target_epsilon <= 0:
            raise PrivacyPlanError(f"target ε must be positive, got {target_epsilon}")
        from opacus.accountants.utils import get_noise_multiplier  # Opacus loads torch: only when calibrating

        with warnings.catch_warnings():
            # The binary search visits tiny σ whose best RDP order is the largest one: expected, harmless.
            warnings.simplefilter("ignore", UserWarning)
            sigma = get_noise_multiplier(
                target_epsilon=target_epsilon,
                target_delta=delta,
                sample_rate=sample_rate,
                steps=steps_per_round * rounds,
                accountant="rdp",
                epsilon_tolerance=0.005,
            )
    return DpPlan(
        sigma,
        sample_rate,
        steps_per_epoch,
        local_epochs,
        rounds,
        delta,
        target_epsilon,
        max_grad_norm,
        n_train,
    )


def epsilon_spent(history: Sequence[tuple[float, float, int]], delta: float) -> float:
    """ε of a history of (σ, q, steps) subsampled Gaussian mechanisms, composed with RDP.

    Entries of the same (σ, q) are one entry of their summed steps (RDP is linear in the steps) and
    cost one sweep over the orders, not one per round trained before. An entry of steps without
    noise, or whose σ or q is not a number, makes ε infinite: leaving it out would count it as free."""
    steps: dict[tuple[float, float], int] = {}
    for s, q, k in history:
        if k <= 0:
            continue
        if not (math.isfinite(s) and s > 0 and math.isfinite(q) and 0 <= q <= 1):
            return math.inf  # a release without noise (σ = 0), or a record that does not say: no bound
        steps[(s, q)] = steps.get((s, q), 0) + k
    if not steps:
        return 0.0
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = [(s, q, k) for (s, q), k in steps.items()]
    return float(accountant.get_epsilon(delta))
