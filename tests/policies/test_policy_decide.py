"""``decide()``: the yes path, and each refusal rule on its own, naming rule, subject and limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from policies import decide, load_purposes, load_site_policies
from policies.models import DeltaRule, Purpose, SitePolicy, StudyRequest
from policies.rules import RULES

PURPOSES = load_purposes()
SITES = load_site_policies()
UC1 = PURPOSES["autodiagnostic_mobilite"]


def _request(**changes: Any) -> StudyRequest:
    base = {
        "study_id": "etude-2026-001",
        "purpose_id": "autodiagnostic_mobilite",
        "task": "employment_outcome",
        "dataset": "parcours",
        "fields": ["age_band", "sex", "zone_emploi", "education_level", "employed_6m"],
        "sites": ["france_travail", "apec", "missions_locales"],
        "rounds": 5,
        "target_epsilon": 3.0,
        "delta": 1e-7,
        "coordinator": "coordinator",
        "requested_by": "region.dee",
    }
    return StudyRequest.model_validate({**base, **changes})


def _without(values: tuple[str, ...], name: str) -> tuple[str, ...]:
    return tuple(value for value in values if value != name)


def _site(name: str, **changes: Any) -> dict[str, SitePolicy]:
    return {**SITES, name: SITES[name].model_copy(update=changes)}


def test_a_request_within_every_policy_is_allowed_with_no_reason() -> None:
    decision = decide(_request(), UC1, SITES)
    assert decision.allowed
    assert decision.reasons == ()
    assert decision.per_site_epsilon == {"france_travail": 3.0, "apec": 3.0, "missions_locales": 3.0}
    assert decision.delta == 1e-7
    assert decision.policy_digest.startswith("sha256:") and len(decision.policy_digest) == 7 + 64


Case = tuple[StudyRequest, Purpose, dict[str, SitePolicy], dict[str, float] | None]

REFUSALS: dict[str, tuple[Callable[[], Case], str, object]] = {
    "purpose.id": (
        lambda: (_request(purpose_id="autre"), UC1, SITES, None),
        "autre",
        "autodiagnostic_mobilite",
    ),
    "purpose.task": (
        lambda: (_request(task="income_classification"), UC1, SITES, None),
        "income_classification",
        "employment_outcome",
    ),
    "purpose.field": (
        lambda: (
            _request(),
            UC1.model_copy(update={"allowed_fields": _without(UC1.allowed_fields, "sex")}),
            SITES,
            None,
        ),
        "sex",
        None,
    ),
    "site.unknown": (
        lambda: (_request(sites=["france_travail", "cap_emploi"]), UC1, SITES, None),
        "cap_emploi",
        None,
    ),
    "site.purpose": (
        lambda: (_request(), UC1, _site("apec", accepted_purposes=("besoins_competences_tpe_pme",)), None),
        "apec",
        "besoins_competences_tpe_pme",
    ),
    "site.coordinator": (
        lambda: (_request(coordinator="prestataire"), UC1, SITES, None),
        "france_travail",
        None,
    ),
    "site.dataset": (
        lambda: (
            _request(sites=["france_travail", "carif_oref"]),
            UC1,
            _site("carif_oref", accepted_purposes=("autodiagnostic_mobilite",)),
            None,
        ),
        "carif_oref",
        "formations, entreprises",
    ),
    "site.field": (
        lambda: (_request(fields=["age_band", "mobility_km"]), UC1, SITES, None),
        "apec.mobility_km",
        None,
    ),
    "budget.purpose_cap": (
        lambda: (_request(target_epsilon=7.0, sites=["france_travail"]), UC1, SITES, None),
        "autodiagnostic_mobilite",
        6.0,
    ),
    "budget.site_cap": (lambda: (_request(target_epsilon=5.0), UC1, SITES, None), "apec", 4.0),
    "budget.remaining": (
        lambda: (_request(target_epsilon=3.0), UC1, SITES, {"missions_locales": 4.5}),
        "missions_locales.parcours",
        1.5,
    ),
    "budget.person_cap": (
        lambda: (
            _request(target_epsilon=3.0),
            UC1.model_copy(update={"person_epsilon_cap": 8.0}),
            SITES,
            None,
        ),
        "autodiagnostic_mobilite",
        8.0,
    ),
    "delta.max": (
        lambda: (
            _request(delta=1e-7),
            UC1.model_copy(update={"delta_rule": DeltaRule(max_delta=1e-8)}),
            SITES,
            None,
        ),
        "delta",
        1e-8,
    ),
    "delta.size": (lambda: (_request(delta=1e-6), UC1, SITES, None), "france_travail", 1 / (10 * 450_000)),
}


@pytest.mark.parametrize("rule_id", sorted(REFUSALS))
def test_each_rule_refuses_alone_and_names_rule_subject_and_limit(rule_id: str) -> None:
    build, subject, limit = REFUSALS[rule_id]
    request, purpose, sites, spent = build()
    decision = decide(request, purpose, sites, spent=spent)
    assert not decision.allowed
    assert {reason.rule for reason in decision.reasons} == {rule_id}
    reason = decision.reasons[0]
    assert reason.subject == subject
    assert reason.limit == pytest.approx(limit) if isinstance(limit, float) else reason.limit == limit
    assert reason.detail


def test_every_registered_rule_has_a_refusal_case() -> None:
    assert {rule.rule_id for rule in RULES} == set(REFUSALS)


def test_all_refusals_are_reported_together() -> None:
    request = _request(task="autre", fields=["age_band", "mobility_km"], target_epsilon=5.0)
    rules = {reason.rule for reason in decide(request, UC1, SITES).reasons}
    assert rules == {"purpose.task", "site.field", "budget.site_cap"}


def test_per_site_epsilon_shrinks_to_what_remains() -> None:
    decision = decide(_request(target_epsilon=2.0), UC1, SITES, spent={"apec": 3.0})
    assert not decision.allowed
    assert decision.per_site_epsilon["apec"] == pytest.approx(1.0)
    assert decision.per_site_epsilon["france_travail"] == 2.0


def test_the_training_purpose_is_allowed_at_carif_oref_but_not_at_apec() -> None:
    purpose = PURPOSES["commande_publique_formation"]
    request = _request(
        purpose_id=purpose.id,
        task="training_outcome_stats",
        dataset="formations",
        fields=["training_domain", "zone_emploi", "employed_6m"],
        sites=["carif_oref", "missions_locales"],
        target_epsilon=1.0,
        delta=1e-7,
    )
    assert decide(request, purpose, SITES).allowed
    refused = decide(request.model_copy(update={"sites": ("carif_oref", "apec")}), purpose, SITES)
    assert ("site.purpose", "apec") in {(reason.rule, reason.subject) for reason in refused.reasons}
