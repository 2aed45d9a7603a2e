"""A pooled AUC from the sites' score histograms matches the AUC of the pooled scores."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tasks.metrics import auc_from_histograms, fairness_gaps, score_histograms


def test_pooled_histograms_give_the_auc_of_the_pooled_scores_even_with_a_one_class_site():
    rng = np.random.default_rng(1)
    sites = []
    for n, share in ((800, 0.3), (500, 0.6), (200, 0.0)):  # the last holdout has no positive at all
        y = (rng.random(n) < share).astype(int)
        scores = 1 / (1 + np.exp(-(1.5 * y - 0.7 + rng.normal(size=n))))
        sites.append((y, scores))
    pooled = [score_histograms(y, s) for y, s in sites]
    positive = np.sum([h["positive"] for h in pooled], axis=0)
    negative = np.sum([h["negative"] for h in pooled], axis=0)
    y_all = np.concatenate([y for y, _ in sites])
    s_all = np.concatenate([s for _, s in sites])
    assert auc_from_histograms(positive, negative) == pytest.approx(roc_auc_score(y_all, s_all), abs=0.01)


def test_auc_is_undefined_without_both_classes():
    assert np.isnan(auc_from_histograms(np.zeros(5), np.ones(5)))


def test_small_groups_are_suppressed_from_the_fairness_gaps():
    counts = {
        "n": 100,
        "n_positive": 50,
        "selected": 40,
        "true_selected": 30,
        "correct": 70,
        "observed_positive": 50,
    }
    tiny = {"n": 5, "n_positive": 2, "selected": 5, "true_selected": 2, "correct": 2, "observed_positive": 2}
    gaps = fairness_gaps({"F": counts, "M": counts, "X": tiny})
    assert gaps["suppressed_groups"] == ["X"] and gaps["demographic_parity_gap"] == 0.0
