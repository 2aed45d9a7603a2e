"""The ledger's ε is never below dp-accounting's (so the auditor can hold the broker to it exactly)."""

from __future__ import annotations

import itertools

import pytest

from trust_broker.audit.recompute import pld_epsilon, recompute_epsilon, tolerance
from trust_broker.ledger import GaussianQuery, SubsampledGaussian, compose_epsilon

DELTA = 1e-6
GRID = list(itertools.product((0.3, 0.8, 1.1, 2.0, 4.0), (0.002, 0.01, 0.05, 0.5), (1, 100, 1000)))


@pytest.mark.parametrize(("sigma", "rate", "steps"), GRID)
def test_ledger_epsilon_is_never_below_dp_accounting(sigma: float, rate: float, steps: int) -> None:
    """Where Opacus' fractional-order series under-states (q = 0.5: up to 2 % here before issue 11),
    the ledger takes dp-accounting's bound: the broker's ε ≥ the auditor's, to rounding."""
    history = [SubsampledGaussian(noise_multiplier=sigma, sample_rate=rate, steps=steps, delta=DELTA)] * 2
    ledger, auditor = compose_epsilon(history, DELTA), recompute_epsilon(history, DELTA)
    assert ledger >= auditor - tolerance(auditor), (ledger, auditor)


def test_mixed_histories_agree_closely_and_pld_is_tighter() -> None:
    history = [
        SubsampledGaussian(noise_multiplier=1.1, sample_rate=0.01, steps=300, delta=DELTA),
        GaussianQuery(noise_multiplier=12.0, count=30, delta=DELTA),
        SubsampledGaussian(noise_multiplier=1.5, sample_rate=0.004, steps=900, delta=DELTA),
    ]
    ledger, auditor = compose_epsilon(history, DELTA), recompute_epsilon(history, DELTA)
    assert auditor - tolerance(auditor) <= ledger <= auditor * 1.001
    assert 0.3 * ledger < pld_epsilon(history, DELTA) <= ledger


def test_the_two_accountants_really_are_different_code() -> None:
    import trust_broker.audit.recompute as recompute

    assert "opacus" not in " ".join(sorted(vars(recompute)))


@pytest.mark.parametrize("delta", [1e-5, 1e-8, 1e-12])
@pytest.mark.parametrize(("sigma", "rate", "steps"), GRID[::5])
def test_vectorized_conversion_is_dp_accountings_own(
    sigma: float, rate: float, steps: int, delta: float
) -> None:
    from trust_broker.audit.recompute import _curve, epsilon_of_curve, library_epsilon_of_curve

    curve = _curve([SubsampledGaussian(noise_multiplier=sigma, sample_rate=rate, steps=steps, delta=DELTA)])
    assert epsilon_of_curve(curve, delta) == pytest.approx(library_epsilon_of_curve(curve, delta), rel=1e-12)
