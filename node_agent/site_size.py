"""The site's size, released once per study under the Gaussian mechanism: what the DP plan rests on.

Why: every number of the training plan leaves the node. A plan computed from the exact number n of
training records gives it away — q = 1/⌈n/B⌉ travels in each train reply and ledger record (and
FedAvg weighs sites by 1/q), δ = min(δ₀, 1/(10·n)), a divisor q·n scales every update — so a curious
coordinator learned n to within a batch, and whether one person was added when n crossed a batch
boundary. Sites do differ in size, and FedAvg needs to know roughly how much (equal weights cost
about a point on non-IID Adult), so n is released *once*, noisily: n + N(0, SIZE_NOISE²), a
``gaussian`` mechanism of sensitivity 1 (add/remove one person) reserved at the broker before the
noise is drawn and committed after, composed in the study's ε like every other release. The plan is
then a function of that release alone (post-processing costs nothing).

Kept on the node's disk, under its state folder: in deployment every message runs in a fresh
process, and a fresh draw per process would let the coordinator average the noise away. A lost
file is not redrawn for free either: the size's request id is fixed per study and site, and the
broker refuses a settled request id.
"""

from __future__ import annotations

import fcntl
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dp_release import GaussianRelease, NodeRandomness, release
from .gate import StudyGate

#: Standard deviation, in records, of the noise on the released size. Its cost is small against
#: DP-SGD's (Rényi ε(α) = α/800; about 0.02 of ε = 1 on Adult, where it is composed in the plan);
#: its error, ±40 records at 95 %, moves the plan's q of a 1 000-record site by ±4 % at most.
SIZE_NOISE = 20.0
#: δ ≤ 1/(10·n) is applied to this many noise standard deviations above the released size.
UPPER_BOUND_STDS = 3.0


@dataclass(frozen=True)
class ReleasedSize:
    """What the node disclosed of its training set's size: a noisy count, or the exact one when the
    study is not private (ε = ∞, public benchmark data), which its reports already mark."""

    value: float
    noise_std: float

    @property
    def upper(self) -> float:
        """A bound the true size is under but for a 0.13 % chance: what δ's 1/(10·n) rule reads."""
        return max(self.value + UPPER_BOUND_STDS * self.noise_std, 1.0)

    @property
    def examples(self) -> int:
        """What the node tells the broker's ledger of the records a mechanism runs over."""
        return max(1, round(self.value))

    def step(self) -> tuple[float, float, int]:
        """Its (σ, q, count) in the accountant's terms (nothing when it was not noised)."""
        return (self.noise_std, 1.0, 1 if self.noise_std > 0 else 0)


def size_release(delta: float) -> GaussianRelease:
    return GaussianRelease(noise_multiplier=SIZE_NOISE, l2_sensitivity=1.0, delta=delta)


def released_size(
    folder: Path,
    study_id: str,
    site: str,
    records: int,
    *,
    private: bool,
    delta: float,
    randomness: NodeRandomness,
    gate: StudyGate,
) -> ReleasedSize:
    """The study's released size at this site: read from the node's disk, or released now (once)."""
    if not private:
        return ReleasedSize(float(records), 0.0)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', study_id)}.size.json"
    with open(path.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes opening the study: one release, not two
        if path.exists():
            stored = json.loads(path.read_text(encoding="utf-8"))
            return ReleasedSize(float(stored["value"]), float(stored["noise_std"]))
        spec = size_release(delta)
        mechanism = spec.mechanism()
        # The ledger hears of no count before this release is paid for (examples: one record).
        reservation = gate.reserve(f"{study_id}:{site}:size", mechanism, 1)
        try:
            (noisy,) = release(np.array([float(records)]), spec, randomness)
        except BaseException:
            gate.release(reservation)
            raise
        size = ReleasedSize(noisy.value if math.isfinite(noisy.value) else 0.0, spec.noise_std)
        gate.commit(reservation, mechanism)  # paid for before it is kept: no value is used unpaid
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"value": size.value, "noise_std": size.noise_std}), "utf-8")
        temporary.replace(path)  # lost after the commit: the broker refuses a second draw (fails closed)
        return size
