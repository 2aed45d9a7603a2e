"""Metrics of a binary outcome model: quality, and the gaps across groups the fairness report shows."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .encoding import Categorical, TabularEncoder
from .noisy import NoisyValue, simulated_intervals


def binary_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, AUC, log-loss and positive rate; AUC is NaN when only one class is present."""
    from sklearn.metrics import log_loss, roc_auc_score  # scikit-learn: 1 s to import, used here only

    y_true = np.asarray(y_true).astype(int)
    scores = np.clip(np.asarray(scores, dtype=float), 1e-7, 1 - 1e-7)
    predicted = (scores >= threshold).astype(int)
    both_classes = len(np.unique(y_true)) == 2
    return {
        "accuracy": float((predicted == y_true).mean()) if len(y_true) else float("nan"),
        "auc": float(roc_auc_score(y_true, scores)) if both_classes else float("nan"),
        "log_loss": float(log_loss(y_true, scores, labels=[0, 1])) if len(y_true) else float("nan"),
        "positive_rate": float(predicted.mean()) if len(y_true) else float("nan"),
    }


#: Score bins of the holdout histograms nodes release, from which the coordinator pools an AUC,
#: the accuracy, the positive rate and a binned log-loss. Even, so that the 0.5 threshold is a bin
#: edge; 10 rather than 50 since every bin is a noisy, suppressible cell: on use case 1's holdouts
#: (≈1 250 people, noise std ≈ 9 per cell) 10 bins cost 0.003 of AUC in binning and cut the
#: noise's pull towards 0.5 that 20 bins suffer (−0.008 against −0.046: benchmarks/federated/
#: evaluation_noise.py).
ROC_BINS = 10


def score_histograms(y_true: np.ndarray, scores: np.ndarray, bins: int = ROC_BINS) -> dict[str, list[int]]:
    """Counts of positives and negatives per score bin: enough to pool an AUC across sites
    (a mean of per-site AUCs is not an AUC, and is undefined where a holdout has one class)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    y_true = np.asarray(y_true).astype(int)
    scores = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
    return {
        "positive": np.histogram(scores[y_true == 1], edges)[0].astype(int).tolist(),
        "negative": np.histogram(scores[y_true == 0], edges)[0].astype(int).tolist(),
    }


def auc_from_histograms(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties within a bin counted half."""
    positive, negative = np.asarray(positive, dtype=float), np.asarray(negative, dtype=float)
    if positive.sum() == 0 or negative.sum() == 0:
        return float("nan")
    negatives_below = np.concatenate(([0.0], np.cumsum(negative)[:-1]))
    wins = (positive * (negatives_below + 0.5 * negative)).sum()
    return float(wins / (positive.sum() * negative.sum()))


# --- What an evaluation releases (issue 10, item 4) -------------------------------------------------
#
# A node's evaluation is one Gaussian release of a vector made of *blocks*. Each block is a partition
# count: every record falls in at most one of its cells, so adding or removing one person's record
# moves each block by at most 1 in L2, and the whole vector by at most √(number of blocks) — the
# sensitivity the noise is scaled to. (A clamped log-loss sum would be one more block and √5 instead
# of 2 in the noise of every cell; the log-loss is read from the score histogram instead.)
# Under replacement of one record by another the bound would be √2 per block; the project's unit is
# add/remove, as for DP-SGD with Poisson sampling.
#
# Which cells exist is fixed by public vocabularies (the task's encoder), never by the data: a group
# with nobody in it is released as a noisy zero like any other, so its presence is not disclosed.

#: Scores are clamped to [1/100, 99/100] for the binned log-loss (a bin's mid-point stands for its scores).
SCORE_CLAMP = 0.01
#: A group's four cells: (observed outcome, predicted outcome) = (0,0), (0,1), (1,0), (1,1).
OUTCOME_CELLS = ("o0p0", "o0p1", "o1p0", "o1p1")
#: Where each record of the site went: trained on, held out, or not used (opt-outs, missing consent,
#: rejected identifiers) — a partition of the records the node loaded.
RECORD_CELLS = ("train", "holdout", "not_used")


@dataclass(frozen=True)
class HoldoutLayout:
    """The cells of an evaluation release, in order, from public vocabularies only."""

    bins: int
    #: (attribute, its categories) for each fairness attribute; a value outside them is in no cell.
    groups: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def for_encoder(cls, encoder: TabularEncoder, bins: int = ROC_BINS) -> HoldoutLayout:
        vocabularies = {
            **encoder.group_vocabularies,
            **{f.column: tuple(f.vocabulary) for f in encoder.features if isinstance(f, Categorical)},
        }
        groups = tuple(
            (name, vocabularies[column])
            for name, column in encoder.group_columns.items()
            if column in vocabularies
        )
        return cls(bins, groups)

    def blocks(self) -> list[tuple[str, int]]:
        return [
            ("scores", 2 * self.bins),
            ("records", len(RECORD_CELLS)),
            *((f"group:{name}", len(OUTCOME_CELLS) * len(categories)) for name, categories in self.groups),
        ]

    @property
    def l2_sensitivity(self) -> float:
        """One person moves each block by at most 1 in L2 (add/remove), hence √(blocks) in all."""
        return math.sqrt(len(self.blocks()))

    def slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for name, size in self.blocks():
            out[name] = slice(start, start + size)
            start += size
        return out

    @property
    def size(self) -> int:
        return sum(size for _, size in self.blocks())

    def to_dict(self) -> dict[str, object]:
        return {"bins": self.bins, "groups": {name: list(categories) for name, categories in self.groups}}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> HoldoutLayout:
        groups = data["groups"]
        assert isinstance(groups, Mapping)
        return cls(int(data["bins"]), tuple((str(k), tuple(map(str, v))) for k, v in groups.items()))  # type: ignore[call-overload]


def score_bins(scores: np.ndarray, bins: int) -> np.ndarray:
    """Bin of each score in [0, 1]: bin b covers [b/bins, (b+1)/bins), the last one includes 1."""
    clipped = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
    bin_of: np.ndarray = np.minimum((clipped * bins).astype(int), bins - 1)
    return bin_of


def holdout_statistics(
    layout: HoldoutLayout,
    y_true: np.ndarray,
    scores: np.ndarray,
    groups: Mapping[str, np.ndarray],
    records: Sequence[int],
    threshold: float = 0.5,
) -> np.ndarray:
    """The exact vector an evaluation releases, every block clamped to its sensitivity's bound.

    ``records`` are the counts of :data:`RECORD_CELLS` (one person in exactly one of them).
    """
    y = np.asarray(y_true).astype(int).clip(0, 1)
    scores = np.asarray(scores, dtype=float)
    predicted = (scores >= threshold).astype(int)
    out = np.zeros(layout.size)
    where = layout.slices()
    out[where["scores"]] = np.bincount(
        y * layout.bins + score_bins(scores, layout.bins), minlength=2 * layout.bins
    )
    out[where["records"]] = np.clip(np.asarray(records, dtype=float), 0, None)
    for name, categories in layout.groups:
        index = {c: i for i, c in enumerate(categories)}
        codes = np.array([index.get(str(v), -1) for v in groups[name]], dtype=int)
        known = codes >= 0
        cells = codes[known] * len(OUTCOME_CELLS) + 2 * y[known] + predicted[known]
        out[where[f"group:{name}"]] = np.bincount(cells, minlength=len(OUTCOME_CELLS) * len(categories))
    return out


def suppress_small_cells(layout: HoldoutLayout, noisy: np.ndarray, min_cell: int) -> list[float | None]:
    """The small-cell rule, applied to *noisy* values (post-processing, no privacy cost).

    Score-histogram and record cells under ``min_cell`` are withheld one by one; a fairness group is
    withheld whole when its noisy size or its noisy number of observed positives is under ``min_cell``
    (the rates the report shows divide by them).
    """
    out: list[float | None] = [float(v) for v in noisy]
    where = layout.slices()
    for name in ("scores", "records"):
        for i in range(where[name].start, where[name].stop):
            if noisy[i] < min_cell:
                out[i] = None
    for name, categories in layout.groups:
        block = where[f"group:{name}"]
        for g in range(len(categories)):
            start = block.start + g * len(OUTCOME_CELLS)
            cells = noisy[start : start + len(OUTCOME_CELLS)]
            if cells.sum() < min_cell or cells[2] + cells[3] < min_cell:
                out[start : start + len(OUTCOME_CELLS)] = [None] * len(OUTCOME_CELLS)
    return out


@dataclass(frozen=True)
class HoldoutRelease:
    """One site's evaluation as it leaves the node: noisy cells (None where the node suppressed them),
    the standard deviation of the noise on each, and the privacy it cost."""

    layout: HoldoutLayout
    values: tuple[float | None, ...]
    noise_std: float
    #: This evaluation's number, and how many the grant pays for.
    evaluation: int
    evaluations_granted: int
    #: ε this site has composed on the study so far (DP-SGD rounds and evaluations), at ``delta``.
    epsilon: float
    delta: float
    min_cell: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "layout": self.layout.to_dict(),
                "values": list(self.values),
                "noise_std": self.noise_std,
                "evaluation": self.evaluation,
                "evaluations_granted": self.evaluations_granted,
                "epsilon": self.epsilon,
                "delta": self.delta,
                "min_cell": self.min_cell,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> HoldoutRelease:
        data = json.loads(text)
        return cls(
            layout=HoldoutLayout.from_dict(data["layout"]),
            values=tuple(None if v is None else float(v) for v in data["values"]),
            noise_std=float(data["noise_std"]),
            evaluation=int(data["evaluation"]),
            evaluations_granted=int(data["evaluations_granted"]),
            epsilon=float(data["epsilon"]),
            delta=float(data["delta"]),
            min_cell=int(data["min_cell"]),
        )

    def block(self, name: str) -> list[NoisyValue | None]:
        return [
            None if v is None else NoisyValue(v, self.noise_std)
            for v in self.values[self.layout.slices()[name]]
        ]


@dataclass(frozen=True)
class PooledHoldout:
    """Sites' releases summed cell by cell (suppressed cells count as 0 and add no noise)."""

    layout: HoldoutLayout
    values: np.ndarray
    stds: np.ndarray
    #: Cells at least one site released.
    released: np.ndarray
    #: (site, attribute, group) withheld at a site by the small-cell rule.
    suppressed_groups: tuple[tuple[str, str, str], ...]
    suppressed_cells: int

    @classmethod
    def of(cls, releases: Mapping[str, HoldoutRelease]) -> PooledHoldout | None:
        if not releases:
            return None
        layout = next(iter(releases.values())).layout
        values, variances = np.zeros(layout.size), np.zeros(layout.size)
        released = np.zeros(layout.size, dtype=bool)
        suppressed: list[tuple[str, str, str]] = []
        hidden = 0
        for site, release in sorted(releases.items()):
            if release.layout != layout:
                raise ValueError(f"site {site} released another layout than the other sites")
            for i, v in enumerate(release.values):
                if v is None:
                    hidden += 1
                    continue
                values[i] += v
                variances[i] += release.noise_std**2
                released[i] = True
            where = layout.slices()
            for name, categories in layout.groups:
                start = where[f"group:{name}"].start
                for g, category in enumerate(categories):
                    if release.values[start + g * len(OUTCOME_CELLS)] is None:
                        suppressed.append((site, name, category))
        return cls(layout, values, np.sqrt(variances), released, tuple(suppressed), hidden)


def _quality(layout: HoldoutLayout) -> tuple[list[str], object]:
    where, half = layout.slices(), layout.bins // 2
    middle = np.clip((np.arange(layout.bins) + 0.5) / layout.bins, SCORE_CLAMP, 1.0 - SCORE_CLAMP)

    def statistic(v: np.ndarray) -> np.ndarray:
        cells = np.clip(v[where["scores"]], 0.0, None)
        negative, positive = cells[: layout.bins], cells[layout.bins :]
        total = cells.sum()
        if total <= 0:
            return np.full(4, np.nan)
        correct = positive[half:].sum() + negative[:half].sum()
        selected = positive[half:].sum() + negative[half:].sum()
        loss = (positive @ -np.log(middle) + negative @ -np.log(1.0 - middle)) / total
        return np.array([auc_from_histograms(positive, negative), correct / total, loss, selected / total])

    return ["auc", "accuracy", "log_loss", "positive_rate"], statistic


def pooled_quality(pooled: PooledHoldout, level: float = 0.95) -> dict[str, dict[str, float]]:
    """AUC, accuracy, log-loss and positive rate of the pooled holdouts, each with its interval
    for the DP noise (first-order: the spread of the statistic over fresh noise of the same law)."""
    names, statistic = _quality(pooled.layout)
    estimate, low, high = simulated_intervals(statistic, pooled.values, pooled.stds, level=level)  # type: ignore[arg-type]
    return {
        n: {"value": float(e), "low": float(lo), "high": float(hi)}
        for n, e, lo, hi in zip(names, estimate, low, high, strict=True)
    }


def pooled_fairness(pooled: PooledHoldout, level: float = 0.95) -> dict[str, dict[str, object]]:
    """Per attribute: each released group's noisy size and rates, and the gaps the report shows,
    each with its interval for the DP noise. Groups withheld at every site are listed, never used."""
    out: dict[str, dict[str, object]] = {}
    where = pooled.layout.slices()
    rates = ("selection_rate", "true_positive_rate", "observed_rate", "accuracy")
    for name, categories in pooled.layout.groups:
        block = where[f"group:{name}"]
        shown = [g for g in range(len(categories)) if pooled.released[block.start + g * len(OUTCOME_CELLS)]]

        def statistic(v: np.ndarray, block: slice = block, shown: list[int] = shown) -> np.ndarray:
            cells = np.clip(v[block], 0.0, None).reshape(-1, len(OUTCOME_CELLS))[shown]
            n = cells.sum(axis=1)
            positives = cells[:, 2] + cells[:, 3]
            with np.errstate(invalid="ignore", divide="ignore"):
                per_group = np.stack(
                    [
                        n,
                        (cells[:, 1] + cells[:, 3]) / n,
                        cells[:, 3] / positives,
                        positives / n,
                        (cells[:, 0] + cells[:, 3]) / n,
                    ],
                    axis=1,
                )
            gaps = [
                float(np.nanmax(per_group[:, k]) - np.nanmin(per_group[:, k])) if len(shown) >= 2 else np.nan
                for k in (1, 2, 3)
            ]
            return np.concatenate([per_group.ravel(), gaps])

        estimate, low, high = simulated_intervals(statistic, pooled.values, pooled.stds, level=level)
        groups: dict[str, dict[str, object]] = {}
        for i, g in enumerate(shown):
            row = estimate[i * 5 : i * 5 + 5]
            lo, hi = low[i * 5 : i * 5 + 5], high[i * 5 : i * 5 + 5]
            groups[categories[g]] = {
                "n": float(row[0]),
                **{r: float(row[k + 1]) for k, r in enumerate(rates)},
                "intervals": {key: [float(lo[k]), float(hi[k])] for k, key in enumerate(("n", *rates))},
            }
        tail = len(shown) * 5
        gap_names = ("demographic_parity_gap", "equal_opportunity_gap", "observed_outcome_gap")
        out[name] = {
            "groups": groups,
            "suppressed_groups": [c for g, c in enumerate(categories) if g not in shown],
            "suppressed_at_sites": [
                f"{site}:{group}" for site, attribute, group in pooled.suppressed_groups if attribute == name
            ],
            **{gap: float(estimate[tail + k]) for k, gap in enumerate(gap_names)},
            "gap_intervals": {
                gap: [float(low[tail + k]), float(high[tail + k])] for k, gap in enumerate(gap_names)
            },
        }
    return out
