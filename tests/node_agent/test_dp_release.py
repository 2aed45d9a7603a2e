"""The node's Gaussian releases: noise at the stated σ, secret seeds, calibration against the ledger."""

from __future__ import annotations

import numpy as np
import pytest
from dp_accounting import GaussianDpEvent, SelfComposedDpEvent
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant

from node_agent.dp_release import GaussianRelease, NodeRandomness, noise_multiplier_for, release
from tasks.noisy import NoisyValue, ratio_interval


def test_noise_has_the_stated_standard_deviation():
    spec = GaussianRelease(noise_multiplier=2.0, l2_sensitivity=3.0, delta=1e-6)
    noisy = release(np.zeros(20_000), spec, NodeRandomness())
    values = np.array([v.value for v in noisy])
    assert abs(values.std() - 6.0) < 0.15
    assert abs(values.mean()) < 0.15
    assert all(v.noise_std == 6.0 for v in noisy[:5])


def test_secret_randomness_never_repeats_and_reproducible_is_marked_not_private():
    spec = GaussianRelease(noise_multiplier=1.0, l2_sensitivity=1.0, delta=1e-6)
    secret = NodeRandomness()
    assert secret.private
    first, second = release(np.zeros(4), spec, secret), release(np.zeros(4), spec, secret)
    assert [v.value for v in first] != [v.value for v in second]
    # Two nodes given the same instructions draw different noise: nothing outside chooses it.
    assert [v.value for v in release(np.zeros(4), spec, NodeRandomness())] != [v.value for v in first]
    a, b = NodeRandomness(reproducible_seed=7), NodeRandomness(reproducible_seed=7)
    assert not a.private
    same_a = [v.value for v in release(np.zeros(3), spec, a)]
    assert same_a == [v.value for v in release(np.zeros(3), spec, b)]


def test_non_finite_statistics_are_refused():
    spec = GaussianRelease(noise_multiplier=1.0, l2_sensitivity=1.0, delta=1e-6)
    with pytest.raises(ValueError, match="clamp"):
        release(np.array([1.0, np.inf]), spec, NodeRandomness())
    with pytest.raises(ValueError):
        GaussianRelease(noise_multiplier=float("nan"), l2_sensitivity=1.0, delta=1e-6)


@pytest.mark.parametrize(("epsilon", "count"), [(0.5, 1), (1.0, 4), (3.0, 10)])
def test_calibration_meets_the_target_under_rdp_and_pld(epsilon, count):
    delta = 1e-6
    sigma = noise_multiplier_for(epsilon, delta, count)
    event = SelfComposedDpEvent(GaussianDpEvent(sigma), count)
    rdp = RdpAccountant().compose(event).get_epsilon(delta)
    assert epsilon * 0.98 <= rdp <= epsilon * 1.0001
    # An independent, tighter accountant never reports more than the ledger's RDP figure.
    assert PLDAccountant().compose(event).get_epsilon(delta) <= rdp + 1e-9


def test_interval_coverage_on_repeated_releases():
    spec = GaussianRelease(noise_multiplier=1.5, l2_sensitivity=1.0, delta=1e-6)
    randomness = NodeRandomness()
    covered = 0
    for _ in range(2_000):
        (noisy,) = release(np.array([10.0]), spec, randomness)
        low, high = noisy.interval()
        covered += low <= 10.0 <= high
    assert 0.93 <= covered / 2_000 <= 0.97


def test_site_sums_add_variances_and_shares_have_intervals():
    total = NoisyValue(30.0, 3.0) + NoisyValue(50.0, 4.0)
    assert total.value == 80.0 and total.noise_std == 5.0
    share, low, high = ratio_interval(NoisyValue(40.0, 2.0), NoisyValue(80.0, 2.0))
    assert share == 0.5 and low < 0.5 < high
    assert all(np.isnan(x) for x in ratio_interval(NoisyValue(1.0, 1.0), NoisyValue(-2.0, 1.0)))
