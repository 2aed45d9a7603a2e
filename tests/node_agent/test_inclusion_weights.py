"""Reweighing at the node as per-record Poisson inclusion q·w_i: nobody is drawn more often than the
ledger's q, so the round's recorded mechanism and ε do not change when reweighing is on."""

from __future__ import annotations

import numpy as np
import pytest

from node_agent.dp_plan import plan_study
from node_agent.dp_release import NodeRandomness
from node_agent.reweighing import kamiran_calders_weights
from node_agent.training import InclusionSampler, inclusion_probabilities, train_round
from tasks.models import mlp

Q = 0.1


def skewed(n: int, seed: int = 5) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Outcome strongly tied to group: the case reweighing corrects (weights far from 1)."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], size=n, p=[0.3, 0.7])
    age = rng.choice(["16-25", "26-35", "56+"], size=n)
    p = np.where(sex == "F", 0.25, 0.6) - np.where(age == "56+", 0.15, 0.0)
    return (rng.random(n) < p).astype(np.float32), {"sex": sex, "age_band": age}


def test_kamiran_calders_weights_make_group_and_outcome_independent():
    y, groups = skewed(4000)
    w = kamiran_calders_weights(y, groups)
    assert w.max() == pytest.approx(1.0) and w.min() > 0.0
    weighted = {g: np.average(y[groups["sex"] == g], weights=w[groups["sex"] == g]) for g in ("F", "M")}
    plain = {g: y[groups["sex"] == g].mean() for g in ("F", "M")}
    assert abs(plain["F"] - plain["M"]) > 0.25
    assert abs(weighted["F"] - weighted["M"]) < 0.02


def test_no_record_is_included_more_often_than_q_over_many_draws():
    y, groups = skewed(80)
    w = kamiran_calders_weights(y, groups)
    draws = 40_000
    sampler = InclusionSampler(
        probabilities=inclusion_probabilities(Q, w, len(w)), steps=draws, generator=NodeRandomness().torch()
    )
    seen = np.zeros(len(w))
    for batch in sampler:
        seen[batch] += 1
    frequency = seen / draws
    margin = 4.5 * np.sqrt(Q * (1 - Q) / draws)  # one-sided, over 80 records
    assert frequency.max() <= Q + margin
    assert np.all(np.abs(frequency - Q * w) <= margin)  # and each at its own rate q·w_i
    assert w.min() < 0.7  # the weights did lower someone's rate


@pytest.mark.parametrize("bad", [np.full(200, 1.5), np.zeros(200), np.full(200, np.nan), np.ones(199)])
def test_weights_that_would_draw_a_record_more_often_than_q_are_refused(bad):
    x = np.zeros((200, 4), dtype=np.float32)
    y = np.zeros(200, dtype=np.float32)
    plan = plan_study(
        n_train=200,
        batch_size=20,
        local_epochs=1,
        rounds=1,
        target_epsilon=3.0,
        delta=1e-5,
        max_grad_norm=1.0,
    )
    with pytest.raises(ValueError, match="inclusion weights"):
        train_round(
            mlp(4, (8,)), x, y, plan, learning_rate=0.01, randomness=NodeRandomness(), inclusion_weights=bad
        )


def test_a_reweighed_round_takes_exactly_the_plans_steps():
    """The ledger charges the plan's mechanism (σ, q, steps): a reweighed round must run exactly
    those steps, or the charge would not be what was spent. (σ and q are the plan's by
    construction; the step count is what the weighted sampler could get wrong.)"""
    y, groups = skewed(2000)
    x = np.random.default_rng(2).normal(size=(2000, 6)).astype(np.float32)
    plan = plan_study(
        n_train=2000,
        batch_size=200,
        local_epochs=1,
        rounds=2,
        target_epsilon=3.0,
        delta=1e-5,
        max_grad_norm=1.0,
    )
    for weights in (None, kamiran_calders_weights(y, groups)):
        outcome = train_round(
            mlp(6, (8,)),
            x,
            y,
            plan,
            learning_rate=0.01,
            randomness=NodeRandomness(),
            inclusion_weights=weights,
        )
        assert outcome.steps == plan.steps_per_round
