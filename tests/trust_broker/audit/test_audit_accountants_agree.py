"""The ledger's Opacus-based composition and the auditor's dp-accounting agree within the tolerance."""

from __future__ import annotations

import itertools

import pytest

from trust_broker.audit.recompute import RELATIVE_TOLERANCE, recompute_epsilon, tolerance
from trust_broker.ledger import GaussianQuery, SubsampledGaussian, compose_epsilon

DELTA = 1e-6
GRID = list(itertools.product((0.8, 1.1, 2.0, 4.0), (0.002, 0.01, 0.05), (1, 100, 1000)))


@pytest.mark.parametrize(("sigma", "rate", "steps"), GRID)
def test_dp_sgd_epsilons_agree_within_tolerance(sigma: float, rate: float, steps: int) -> None:
    history = [SubsampledGaussian(noise_multiplier=sigma, sample_rate=rate, steps=steps, delta=DELTA)] * 2
    ledger, auditor = compose_epsilon(history, DELTA), recompute_epsilon(history, DELTA)
    assert abs(ledger - auditor) <= tolerance(auditor), (ledger, auditor)


def test_mixed_histories_agree_far_inside_the_tolerance() -> None:
    history = [
        SubsampledGaussian(noise_multiplier=1.1, sample_rate=0.01, steps=300, delta=DELTA),
        GaussianQuery(noise_multiplier=12.0, count=30, delta=DELTA),
        SubsampledGaussian(noise_multiplier=1.5, sample_rate=0.004, steps=900, delta=DELTA),
    ]
    ledger, auditor = compose_epsilon(history, DELTA), recompute_epsilon(history, DELTA)
    assert abs(ledger - auditor) <= 0.01 * RELATIVE_TOLERANCE * auditor


def test_the_two_accountants_really_are_different_code() -> None:
    import trust_broker.audit.recompute as recompute

    assert "opacus" not in " ".join(sorted(vars(recompute)))
    assert (
        recompute.to_dp_event(
            [SubsampledGaussian(noise_multiplier=1.0, sample_rate=0.1, steps=3, delta=DELTA)]
        )
        .events[0]
        .count
        == 3
    )
