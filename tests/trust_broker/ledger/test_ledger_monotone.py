"""Composition is monotone over the whole parameter space the ledger accepts (hypothesis).

Red-team finding 1: σ = 1e6, q = 0.5, 2^53 − 1 steps composed to ε = −5 770 and cancelled every cap.
Now such a mechanism is out of bounds, and for every one within them ε ≥ 0 and adding a mechanism
never lowers an account's ε.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from trust_broker.ledger import GaussianQuery, SubsampledGaussian, compose_epsilon, parse_mechanism
from trust_broker.ledger.mechanisms import MAX_COUNT, MAX_NOISE_MULTIPLIER, MAX_STEPS

DELTA = 1e-8
sigmas = st.floats(min_value=0.05, max_value=MAX_NOISE_MULTIPLIER, allow_nan=False)
dp_sgd = st.builds(
    SubsampledGaussian,
    noise_multiplier=sigmas,
    sample_rate=st.floats(min_value=1e-9, max_value=1.0, exclude_min=False),
    steps=st.integers(min_value=1, max_value=MAX_STEPS),
    delta=st.just(DELTA),
)
queries = st.builds(
    GaussianQuery, noise_multiplier=sigmas, count=st.integers(1, MAX_COUNT), delta=st.just(DELTA)
)
mechanisms = st.one_of(dp_sgd, queries)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=st.lists(mechanisms, max_size=3), extra=mechanisms)
def test_adding_a_mechanism_never_lowers_epsilon(history: list, extra: object) -> None:
    before = compose_epsilon(history, DELTA)
    after = compose_epsilon([*history, extra], DELTA)
    assert before >= 0.0 and not math.isnan(before)
    assert after >= before * (1 - 1e-12)


def test_the_red_teams_mechanism_is_out_of_bounds() -> None:
    with pytest.raises(ValidationError):
        parse_mechanism(
            {
                "kind": "subsampled_gaussian",
                "noise_multiplier": 1e6,
                "sample_rate": 0.5,
                "steps": 2**53 - 1,
                "delta": DELTA,
            }
        )
    at_bounds = SubsampledGaussian(
        noise_multiplier=MAX_NOISE_MULTIPLIER, sample_rate=0.5, steps=MAX_STEPS, delta=DELTA
    )
    assert compose_epsilon([at_bounds], DELTA) >= 0.0
