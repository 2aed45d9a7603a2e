"""Reweighing as a DP-SGD sampling plan: who is drawn more often, never anyone more often than q.

Kamiran & Calders (2012) weigh each record by w(g, y) = P(g)·P(y) / P(g, y) over the cells g of the
granted protected attributes crossed, so that group and outcome are independent in the weighted
training set. DP-SGD has no place for a loss weight that would leave the clipping bound intact for
a record of weight > 1, so the weights act on *sampling* instead: normalised by their largest
value (w_i ∈ (0, 1]), record i enters each Poisson batch with probability q·w_i
(``node_agent.training.InclusionSampler``). No record is drawn more often than q, the rate the
ledger records, so the round's ε is the one the accountant already computes (see the sampler).

The counts behind the weights are the node's own training split: whether one person's record is in
it moves every weight of its cell by a factor of about 1 ± 1/n(g, y). The accountant's bound holds
for the record itself (its probability is at most q); the small shift of *other* records'
probabilities with its presence is not in the subsampled-Gaussian analysis. Passing counts that do
not depend on the training records (``counts=``: e.g. the node's already released noisy holdout
cells, whose people are disjoint from the training split) removes that dependence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np


def joint_cells(groups: Mapping[str, np.ndarray]) -> np.ndarray:
    """Each record's crossed protected cell, as one string ("F|26-35")."""
    columns = [np.asarray(v).astype(str) for v in groups.values()]
    if not columns:
        raise ValueError("reweighing needs at least one protected attribute")
    return np.array(["|".join(parts) for parts in zip(*columns, strict=True)])


def kamiran_calders_weights(
    labels: np.ndarray,
    groups: Mapping[str, np.ndarray],
    counts: Mapping[tuple[str, int], float] | None = None,
) -> np.ndarray:
    """w_i = P(g)·P(y) / P(g, y) for each record's cell, divided by the largest: in (0, 1].

    ``counts`` maps (cell, label) to a count; by default the records' own. A cell whose count is
    unknown or not positive keeps weight 1 before normalisation (nothing to correct it towards).
    """
    cells = joint_cells(groups)
    y = np.asarray(labels).astype(int).reshape(-1)
    if len(cells) != len(y):
        raise ValueError(f"{len(y)} labels for {len(cells)} protected cells")
    if counts is None:
        counts = {key: float(c) for key, c in Counter(zip(cells.tolist(), y.tolist(), strict=True)).items()}
    table = {(str(g), int(label)): max(float(c), 0.0) for (g, label), c in counts.items()}
    total = sum(table.values())
    if total <= 0:
        return np.ones(len(y))
    p_g: dict[str, float] = {}
    p_y: dict[int, float] = {}
    for (g, label), c in table.items():
        p_g[g] = p_g.get(g, 0.0) + c / total
        p_y[label] = p_y.get(label, 0.0) + c / total
    raw = np.array(
        [
            p_g[g] * p_y[label] / (table[(g, label)] / total) if table.get((g, label), 0.0) > 0 else 1.0
            for g, label in zip(cells.tolist(), y.tolist(), strict=True)
        ]
    )
    normalised: np.ndarray = raw / raw.max()
    return normalised
