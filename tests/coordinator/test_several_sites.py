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


def test_the_pairs_of_a_hundred_sites_cost_one_curve_per_site(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 100 sites the report's 4 950 pairs ran one RDP accountant each (tens of minutes, the
    region-scale study seemed to hang after its last round); each site's curve is now computed once
    and the pairs add curves. Same ε as an accountant per pair."""
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis import rdp

    from coordinator.journal import StudyJournal
    from coordinator.report import privacy_section

    names = [f"site_{i:03d}" for i in range(100)]
    journal = StudyJournal(tuple(names), None, {})
    for i, name in enumerate(names):
        journal.sites[name] = _site(1.0 + i / 50, 1 / (5 + i % 7), 5 + i % 7, 3, 4.6, 2e-7)
    calls = []
    real = rdp.compute_rdp
    monkeypatch.setattr(rdp, "compute_rdp", lambda **kw: calls.append(1) or real(**kw))
    pairs = privacy_section(journal)["several_sites"]["by_pair"]
    assert len(pairs) == 100 * 99 // 2
    assert len(calls) <= 2 * 100  # a DP-SGD curve and an evaluation curve per site, no more
    monkeypatch.setattr(rdp, "compute_rdp", real)
    for a, b in (("site_000", "site_099"), ("site_017", "site_042")):
        accountant = RDPAccountant()
        for site in (journal.sites[a], journal.sites[b]):
            steps = site.steps_per_round * len(site.rounds_trained)
            accountant.history.append((site.noise_multiplier, site.sample_rate, steps))
            accountant.history.append((4.6, 1.0, 1))
        assert pairs[f"{a}+{b}"] == pytest.approx(accountant.get_epsilon(4e-7), rel=1e-9)
