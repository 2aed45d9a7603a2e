"""The report's worst case for a person present at several sites (issue 10, item 9), checked against
an independent accountant (Google's dp-accounting) composing the same mechanisms."""

from __future__ import annotations

import pytest
from dp_accounting import GaussianDpEvent, PoissonSampledDpEvent, SelfComposedDpEvent
from dp_accounting.rdp import RdpAccountant

from coordinator.journal import SiteRecord
from coordinator.report import several_sites_epsilon
from tasks.metrics import HoldoutLayout, HoldoutRelease

LAYOUT = HoldoutLayout(bins=10, groups=(("sex", ("F", "M")),))


def _site(sigma: float, q: float, steps: int, rounds: int, eval_sigma: float, delta: float) -> SiteRecord:
    release = HoldoutRelease(LAYOUT, (), eval_sigma * LAYOUT.l2_sensitivity, 1, 1, 3.0, delta, 11)
    return SiteRecord(
        epsilon=3.0,
        delta=delta,
        noise_multiplier=sigma,
        sample_rate=q,
        steps_per_round=steps,
        rounds_trained=list(range(1, rounds + 1)),
        evaluation=release,
    )


def test_a_person_at_several_sites_composes_every_sites_mechanisms():
    sites = [
        _site(1.4, 1 / 12, 12, 3, 4.6, 2e-7),
        _site(2.4, 1 / 5, 5, 3, 4.6, 2e-7),
        _site(3.0, 1 / 3, 3, 3, 4.6, 2e-7),
    ]
    events = []
    for s in sites:
        steps = s.steps_per_round * len(s.rounds_trained)
        events.append(
            SelfComposedDpEvent(
                PoissonSampledDpEvent(s.sample_rate, GaussianDpEvent(s.noise_multiplier)), steps
            )
        )
        events.append(GaussianDpEvent(4.6))
    independent = RdpAccountant()
    for event in events:
        independent.compose(event)
    expected = independent.get_epsilon(sum(s.delta for s in sites))
    assert several_sites_epsilon(sites) == pytest.approx(expected, rel=0.03)
    one, two = several_sites_epsilon(sites[:1]), several_sites_epsilon(sites[:2])
    assert one < two < several_sites_epsilon(sites)  # more sites, more exposure
    assert two < one + several_sites_epsilon(sites[1:2])  # and less than the sum of the two
