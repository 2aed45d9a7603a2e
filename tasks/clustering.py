"""Federated DP k-means of use case 2: what a node computes, what the coordinator does with it.

One protocol, three kinds of release, each a vector of per-cell sums and counts of clamped
features (``tasks.companies.CompanyFeatures``: every company's vector has L2 norm ≤ B):

1. **coreset** — cells of a public grid (sector × difficulty band × seasonality band): a company
   falls in exactly one cell, so the release's L2 sensitivity is √(B² + 1). The coordinator turns
   the noisy cell means, weighted by noisy counts, into a DP coreset: it chooses k on it and seeds
   Lloyd with k-means++ on it. No raw record is read off a node to initialise.
2. **lloyd** — per-cluster sums and counts for the current centres: same sensitivity.
3. the skill-needs table and its evaluation (``tasks.skill_needs``).

Everything here is arithmetic on arrays; the noise is drawn at the node (``node_agent.dp_release``)
and the post-processing (centres, k, suppression) is done by the coordinator on noisy values only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .companies import SECTORS, CompanyFeatures

#: Bands of the coreset grid on the difficulty and seasonality shares (public cut points).
DIFFICULTY_CUTS = (0.5,)
SEASONAL_CUTS = (0.35,)
#: k range scanned on the coreset, and the elbow rule: the smallest k after which one more
#: cluster explains less than this fraction of the coreset's whole dispersion (its cost at k = 1).
K_RANGE = range(2, 13)
ELBOW_GAIN = 0.04


def release_sensitivity(features: CompanyFeatures) -> float:
    """L2 sensitivity of a per-cell (sums, counts) vector: one company adds ≤ B to one sum, 1 to one count."""
    return math.sqrt(features.max_norm() ** 2 + 1.0)


def cell_statistics(x: np.ndarray, cells: np.ndarray, n_cells: int) -> np.ndarray:
    """Flattened (sums of shape n_cells × d, then counts of shape n_cells) — the released layout."""
    sums = np.zeros((n_cells, x.shape[1]))
    np.add.at(sums, cells, x)
    counts = np.bincount(cells, minlength=n_cells).astype(float)
    return np.concatenate([sums.reshape(-1), counts])


def split_statistics(vector: np.ndarray, n_cells: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    vector = np.asarray(vector, dtype=float)
    if vector.shape != (n_cells * (width + 1),):
        raise ValueError(
            f"expected {n_cells * (width + 1)} values for {n_cells} cells × {width}, got {vector.shape}"
        )
    return vector[: n_cells * width].reshape(n_cells, width), vector[n_cells * width :]


def assign(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre of each row (squared Euclidean distance)."""
    d2 = (x * x).sum(1)[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)[None, :]
    nearest: np.ndarray = np.argmin(d2, axis=1)
    return nearest


def kmeans_cost(x: np.ndarray, centres: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Sum over rows of the squared distance to the nearest centre (the k-means objective)."""
    d2 = (x * x).sum(1)[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)[None, :]
    nearest = np.maximum(d2.min(axis=1), 0.0)
    return float(nearest.sum() if weights is None else (nearest * weights).sum())


@dataclass(frozen=True)
class CoresetGrid:
    """Public cells: sector group × difficulty band × seasonality band (those the fields allow)."""

    features: CompanyFeatures

    def _column(self, name: str) -> int | None:
        names = self.features.names
        return names.index(name) if name in names else None

    @property
    def n_cells(self) -> int:
        n = len(SECTORS) if self._column(f"secteur={SECTORS[0]}") is not None else 1
        if self._column("part_difficile") is not None:
            n *= len(DIFFICULTY_CUTS) + 1
        if self._column("part_saisonniere") is not None:
            n *= len(SEASONAL_CUTS) + 1
        return n

    def cells(self, x: np.ndarray) -> np.ndarray:
        cell = np.zeros(len(x), dtype=int)
        first = self._column(f"secteur={SECTORS[0]}")
        if first is not None:
            cell = np.argmax(x[:, first : first + len(SECTORS)], axis=1)
        for name, cuts in (("part_difficile", DIFFICULTY_CUTS), ("part_saisonniere", SEASONAL_CUTS)):
            column = self._column(name)
            if column is not None:
                band = np.searchsorted(np.asarray(cuts) - 0.5, x[:, column], side="right")
                cell = cell * (len(cuts) + 1) + band
        return cell


def clip_to_domain(centres: np.ndarray, features: CompanyFeatures) -> np.ndarray:
    """Post-processing: a centre outside the features' box is moved back into it."""
    out = np.array(centres, dtype=float, copy=True)
    at = 0
    for block in features.blocks:
        width = len(block.names)
        if width == 1:
            out[:, at] = np.clip(out[:, at], -0.5, 0.5)
        else:
            out[:, at : at + width] = np.clip(out[:, at : at + width], 0.0, math.sqrt(block.max_sq_norm))
        at += width
    return out


def noisy_means(
    sums: np.ndarray, counts: np.ndarray, fallback: np.ndarray, min_count: float, features: CompanyFeatures
) -> np.ndarray:
    """Cell or cluster means from noisy sums and counts; the fallback where the noisy count is small."""
    usable = counts >= min_count
    means = np.where(usable[:, None], sums / np.maximum(counts, 1.0)[:, None], fallback)
    return clip_to_domain(means, features)


@dataclass(frozen=True)
class Coreset:
    """Weighted points standing for the pooled data: noisy cell means, noisy counts as weights."""

    points: np.ndarray
    weights: np.ndarray


def build_coreset(
    sums: np.ndarray, counts: np.ndarray, min_count: float, features: CompanyFeatures
) -> Coreset:
    keep = counts >= min_count
    means = noisy_means(sums[keep], counts[keep], np.zeros((int(keep.sum()), sums.shape[1])), 0.0, features)
    return Coreset(means, counts[keep])


def weighted_kmeans(coreset: Coreset, k: int, seed: int) -> tuple[np.ndarray, float]:
    """k-means++ and Lloyd on the coreset (scikit-learn; public, already private inputs)."""
    from sklearn.cluster import KMeans

    k = min(k, len(coreset.points))
    model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(
        coreset.points, sample_weight=coreset.weights
    )
    return model.cluster_centers_, float(model.inertia_)


def choose_k(coreset: Coreset, seed: int, k_range: Sequence[int] = K_RANGE) -> tuple[int, dict[int, float]]:
    """The elbow of the coreset's cost curve: computed on DP statistics only, so it costs no ε."""
    mean = np.average(coreset.points, axis=0, weights=coreset.weights)
    curve: dict[int, float] = {1: kmeans_cost(coreset.points, mean[None, :], coreset.weights)}
    for k in k_range:
        if k > len(coreset.points):
            break
        curve[k] = weighted_kmeans(coreset, k, seed)[1]
    ks = sorted(k for k in curve if k > 1)
    for k, following in zip(ks, ks[1:], strict=False):
        if curve[1] <= 0 or (curve[k] - curve[following]) / curve[1] < ELBOW_GAIN:
            return k, curve
    return ks[-1], curve


def released_clusters(counts: np.ndarray, min_cell_size: int) -> np.ndarray:
    """Indices of the clusters whose noisy size reaches the minimum cell size (the others are withheld)."""
    return np.flatnonzero(np.asarray(counts) >= min_cell_size)
