"""Use case 2 refusals: a field the purpose does not allow, a holder without company data."""

from __future__ import annotations

from policies.decide import decide
from policies.loader import load_purposes, load_site_policies
from policies.models import StudyRequest

PURPOSE = "besoins_competences_tpe_pme"
FIELDS = (
    "naf_division",
    "size_bracket",
    "hiring_projects",
    "difficult_projects_share",
    "rome_sought",
    "skill_need",
)


def _request(**changes: object) -> StudyRequest:
    base = StudyRequest(
        study_id="uc2",
        purpose_id=PURPOSE,
        task="company_clustering",
        dataset="entreprises",
        fields=FIELDS,
        sites=("france_travail", "carif_oref", "apec"),
        rounds=3,
        target_epsilon=1.0,
        delta=1e-6,
        coordinator="coordinator",
        requested_by="coordinator",
    )
    return base.model_copy(update=changes)


def test_the_three_company_holders_grant_the_study() -> None:
    decision = decide(_request(), load_purposes()[PURPOSE], load_site_policies())
    assert decision.allowed, decision.reasons


def test_an_ungranted_field_is_refused_with_its_rule() -> None:
    decision = decide(
        _request(fields=(*FIELDS, "raison_sociale")), load_purposes()[PURPOSE], load_site_policies()
    )
    assert not decision.allowed
    reasons = {(r.rule, r.subject) for r in decision.reasons}
    assert ("purpose.field", "raison_sociale") in reasons
    assert ("site.field", "carif_oref.raison_sociale") in reasons  # and each holder says so too


def test_a_partner_without_company_data_is_refused() -> None:
    decision = decide(
        _request(sites=("france_travail", "missions_locales")), load_purposes()[PURPOSE], load_site_policies()
    )
    assert {r.rule for r in decision.reasons} >= {"site.purpose"}
