"""Skill-needs prediction of use case 2: which ROME domains a company will find hard to hire next year.

The model is a table of rates per released company type and ROME grand domaine, learnt from a
Gaussian release of counts at each node:

- ``A[t, d]``: companies of type t that seek domain d now and found it hard to hire the next year;
- ``B[t, d]``: companies of type t that seek d now (at most ``MAX_SOUGHT`` domains per company);
- ``C[t, d]``: companies of type t that do not seek d now but found it hard to hire;
- ``N[t]``: companies of type t.

One company adds at most ``MAX_SOUGHT`` to B, ``MAX_SKILL_NEEDS`` to A + C and 1 to N, hence the
L2 sensitivity √(MAX_SOUGHT + MAX_SKILL_NEEDS + 1). A company's score for d is its type's rate
given whether it seeks d; the prediction is the three best domains. Evaluation happens at each
node on its held-out companies; only noisy sums of precision@3 and hit@3 and a noisy count leave.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .companies import MAX_SKILL_NEEDS, ROME_DOMAINS

MAX_SOUGHT = 3
TOP = 3
#: Public rule of the held-out split: the last hex digit of the company's linkage pseudonym.
HOLDOUT_DIGITS = frozenset("012")
EVALUATION_SENSITIVITY = math.sqrt(3.0)  # precision, hit (each ≤ 1) and a count of 1 per company


def table_sensitivity() -> float:
    return math.sqrt(MAX_SOUGHT + MAX_SKILL_NEEDS + 1)


def in_holdout(pseudonyms: np.ndarray) -> np.ndarray:
    return np.array([str(p)[-1] in HOLDOUT_DIGITS for p in pseudonyms], dtype=bool)


def top_sought(shares: np.ndarray) -> np.ndarray:
    """0/1 per domain: the company's ``MAX_SOUGHT`` largest sought domains (shares > 0 only)."""
    out = np.zeros_like(shares)
    order = np.argsort(-shares, axis=1, kind="stable")[:, :MAX_SOUGHT]
    rows = np.arange(len(shares))[:, None]
    out[rows, order] = 1.0
    return out * (shares > 0)


def table_statistics(types: np.ndarray, sought: np.ndarray, needs: np.ndarray, n_types: int) -> np.ndarray:
    """Flattened A, B, C (n_types × domains each) then N (n_types): the released layout."""
    d = len(ROME_DOMAINS)
    a, b, c = (np.zeros((n_types, d)) for _ in range(3))
    np.add.at(a, types, sought * needs)
    np.add.at(b, types, sought)
    np.add.at(c, types, (1 - sought) * needs)
    n = np.bincount(types, minlength=n_types).astype(float)
    return np.concatenate([a.reshape(-1), b.reshape(-1), c.reshape(-1), n])


@dataclass(frozen=True)
class SkillNeedsModel:
    """Rates of "hard to hire next year" per (type, domain), given whether the domain is sought now."""

    rate_sought: np.ndarray  # n_types × domains
    rate_other: np.ndarray

    @classmethod
    def from_statistics(cls, vector: np.ndarray, n_types: int) -> SkillNeedsModel:
        d = len(ROME_DOMAINS)
        v = np.asarray(vector, dtype=float)
        if v.shape != (n_types * (3 * d + 1),):
            raise ValueError(f"expected {n_types * (3 * d + 1)} values, got {v.shape}")
        a, b, c = (v[i * n_types * d : (i + 1) * n_types * d].reshape(n_types, d) for i in range(3))
        n = v[3 * n_types * d :][:, None]
        b = np.clip(b, 0, None)
        rest = np.clip(n - b, 0, None)
        # Post-processing of noisy counts: clipped, then smoothed towards ½ by one pseudo-company.
        return cls(
            rate_sought=np.clip((np.clip(a, 0, None) + 0.5) / (b + 1.0), 0, 1),
            rate_other=np.clip((np.clip(c, 0, None) + 0.5) / (rest + 1.0), 0, 1),
        )

    def to_list(self) -> list[float]:
        return [*self.rate_sought.reshape(-1).tolist(), *self.rate_other.reshape(-1).tolist()]

    @classmethod
    def from_list(cls, values: list[float], n_types: int) -> SkillNeedsModel:
        d = len(ROME_DOMAINS)
        v = np.asarray(values, dtype=float)
        return cls(v[: n_types * d].reshape(n_types, d), v[n_types * d :].reshape(n_types, d))

    def scores(self, types: np.ndarray, sought: np.ndarray) -> np.ndarray:
        rates: np.ndarray = np.where(sought > 0, self.rate_sought[types], self.rate_other[types])
        return rates

    def predict(self, types: np.ndarray, sought: np.ndarray) -> np.ndarray:
        """Indices of the ``TOP`` most likely hard-to-hire domains per company."""
        return np.argsort(-self.scores(types, sought), axis=1, kind="stable")[:, :TOP]


def evaluation_statistics(predicted: np.ndarray, needs: np.ndarray) -> np.ndarray:
    """[Σ precision@3, Σ hit@3, count] over companies with at least one skill need."""
    has_need = needs.sum(axis=1) > 0
    hits = np.take_along_axis(needs, predicted, axis=1).sum(axis=1)
    precision = hits / TOP
    hit = (hits > 0).astype(float)
    return np.array([precision[has_need].sum(), hit[has_need].sum(), float(has_need.sum())])
