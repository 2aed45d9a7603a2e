"""A pooled AUC from the sites' score histograms matches the AUC of the pooled scores."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tasks.metrics import (
    HoldoutLayout,
    HoldoutRelease,
    PooledHoldout,
    auc_from_histograms,
    holdout_statistics,
    pooled_fairness,
    pooled_quality,
    score_bins,
    score_histograms,
    suppress_small_cells,
)


def test_pooled_histograms_give_the_auc_of_the_pooled_scores_even_with_a_one_class_site():
    rng = np.random.default_rng(1)
    sites = []
    for n, share in ((800, 0.3), (500, 0.6), (200, 0.0)):  # the last holdout has no positive at all
        y = (rng.random(n) < share).astype(int)
        scores = 1 / (1 + np.exp(-(1.5 * y - 0.7 + rng.normal(size=n))))
        sites.append((y, scores))
    pooled = [score_histograms(y, s, bins=50) for y, s in sites]
    positive = np.sum([h["positive"] for h in pooled], axis=0)
    negative = np.sum([h["negative"] for h in pooled], axis=0)
    y_all = np.concatenate([y for y, _ in sites])
    s_all = np.concatenate([s for _, s in sites])
    assert auc_from_histograms(positive, negative) == pytest.approx(roc_auc_score(y_all, s_all), abs=0.01)


def test_auc_is_undefined_without_both_classes():
    assert np.isnan(auc_from_histograms(np.zeros(5), np.ones(5)))


LAYOUT = HoldoutLayout(bins=10, groups=(("sex", ("F", "M")), ("age_band", ("16-25", "26-35", "56+"))))


def _release(values, noise_std=0.0) -> HoldoutRelease:
    return HoldoutRelease(LAYOUT, tuple(values), noise_std, 1, 1, 1.0, 1e-6, 11)


def test_noise_free_releases_pool_to_the_metrics_of_the_pooled_holdouts():
    rng = np.random.default_rng(3)
    releases, ys, scores, sexes = {}, [], [], []
    for site, n in (("a", 400), ("b", 250)):
        y = (rng.random(n) < 0.5).astype(int)
        s = 1 / (1 + np.exp(-(1.2 * y - 0.6 + rng.normal(size=n))))
        sex = rng.choice(["F", "M"], n)
        ages = rng.choice(["16-25", "26-35"], n)
        exact = holdout_statistics(LAYOUT, y, s, {"sex": sex, "age_band": ages}, [1000, n, 5])
        releases[site] = _release(exact)
        ys, scores, sexes = [*ys, *y], [*scores, *s], [*sexes, *sex]
    pooled = PooledHoldout.of(releases)
    quality = pooled_quality(pooled)
    y, s, sex = np.array(ys), np.array(scores), np.array(sexes)
    # sklearn on the binned scores (ties count half in both): the same AUC, independently computed.
    assert quality["auc"]["value"] == pytest.approx(roc_auc_score(y, score_bins(s, 10)), abs=1e-9)
    assert quality["accuracy"]["value"] == pytest.approx(((s >= 0.5) == y).mean(), abs=1e-9)
    fairness = pooled_fairness(pooled)["sex"]
    selection = {g: (s[sex == g] >= 0.5).mean() for g in ("F", "M")}
    assert fairness["demographic_parity_gap"] == pytest.approx(abs(selection["F"] - selection["M"]), abs=1e-9)
    assert fairness["groups"]["F"]["n"] == (sex == "F").sum()


def test_small_groups_and_cells_are_withheld_at_the_node_on_noisy_values():
    y = np.array([1] * 30 + [0] * 30 + [1] * 4 + [0] * 2)
    s = np.full(len(y), 0.7)
    ages = np.array(["16-25"] * 60 + ["56+"] * 6)
    exact = holdout_statistics(LAYOUT, y, s, {"sex": np.array(["F"] * 66), "age_band": ages}, [500, 66, 3])
    kept = suppress_small_cells(LAYOUT, exact, 11)
    release = _release(kept)
    ages_cells = release.block("group:age_band")
    assert ages_cells[0] is not None  # 16-25: 60 people, 30 positives
    assert all(c is None for c in ages_cells[4:])  # 26-35 (nobody) and 56+ (6 people) withheld
    assert release.block("records")[2] is None  # 3 records not used: under 11
    pooled = pooled_fairness(PooledHoldout.of({"a": release}))["age_band"]
    assert set(pooled["groups"]) == {"16-25"} and set(pooled["suppressed_groups"]) == {"26-35", "56+"}
