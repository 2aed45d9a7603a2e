"""Metrics of a binary outcome model: quality, and the gaps across groups the fairness report shows."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score


def binary_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, AUC, log-loss and positive rate; AUC is NaN when only one class is present."""
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


#: Score bins of the holdout histograms nodes release, from which the coordinator pools an AUC.
ROC_BINS = 50


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


def group_rates(
    y_true: np.ndarray, scores: np.ndarray, groups: np.ndarray, threshold: float = 0.5
) -> dict[str, dict[str, float]]:
    """Per group: size, predicted positive rate, true positive rate, observed rate and accuracy.

    Sizes are returned so that the caller can suppress small groups before anything is released.
    """
    y_true = np.asarray(y_true).astype(int)
    predicted = (np.asarray(scores) >= threshold).astype(int)
    out: dict[str, dict[str, float]] = {}
    for group in sorted(set(np.asarray(groups).tolist())):
        mask = np.asarray(groups) == group
        positives = mask & (y_true == 1)
        out[str(group)] = {
            "n": float(mask.sum()),
            "n_positive": float(positives.sum()),
            "selected": float(predicted[mask].sum()),
            "true_selected": float(predicted[positives].sum()),
            "correct": float((predicted[mask] == y_true[mask]).sum()),
            "observed_positive": float(y_true[mask].sum()),
        }
    return out


def fairness_gaps(pooled: Mapping[str, Mapping[str, float]], min_group: int = 11) -> dict[str, object]:
    """Demographic-parity and equal-opportunity gaps from per-group counts summed across sites.

    Groups smaller than `min_group` are reported as suppressed, never used (small-cell rule).
    """
    rates: dict[str, dict[str, float]] = {}
    suppressed: list[str] = []
    for group, c in pooled.items():
        if c["n"] < min_group or c["n_positive"] < min_group:
            suppressed.append(group)
            continue
        rates[group] = {
            "n": c["n"],
            "selection_rate": c["selected"] / c["n"],
            "true_positive_rate": c["true_selected"] / c["n_positive"],
            "observed_rate": c["observed_positive"] / c["n"],
            "accuracy": c["correct"] / c["n"],
        }

    def gap(key: str) -> float:
        values = [r[key] for r in rates.values()]
        return float(max(values) - min(values)) if len(values) >= 2 else float("nan")

    return {
        "groups": rates,
        "suppressed_groups": suppressed,
        "demographic_parity_gap": gap("selection_rate"),
        "equal_opportunity_gap": gap("true_positive_rate"),
        "observed_outcome_gap": gap("observed_rate"),
    }
