"""Policy digests: RFC 8785 makes them independent of key order, sensitive to every value."""

from __future__ import annotations

from pathlib import Path

import yaml

from policies import decide, load_purposes, load_site_policies, policy_digest
from policies.loader import DOCUMENTS_DIR, load_document
from policies.models import Purpose, StudyRequest


def test_digest_does_not_depend_on_key_order_in_the_yaml(tmp_path: Path) -> None:
    source = DOCUMENTS_DIR / "purposes" / "autodiagnostic_mobilite.yaml"
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    reordered = dict(reversed(list(data.items())))
    assert list(reordered) != list(data)
    copy = tmp_path / "autodiagnostic_mobilite.yaml"
    copy.write_text(yaml.safe_dump(reordered, sort_keys=False, allow_unicode=True), encoding="utf-8")
    assert policy_digest(load_document(copy, Purpose)) == policy_digest(load_document(source, Purpose))


def test_digest_of_a_mapping_does_not_depend_on_insertion_order() -> None:
    sites = load_site_policies()
    forward = {name: sites[name] for name in sorted(sites)}
    backward = {name: sites[name] for name in sorted(sites, reverse=True)}
    assert policy_digest(forward) == policy_digest(backward)


def test_digest_changes_when_any_value_changes() -> None:
    purpose = load_purposes()["autodiagnostic_mobilite"]
    base = policy_digest(purpose)
    assert policy_digest(purpose.model_copy(update={"epsilon_cap_per_period": 6.5})) != base
    assert policy_digest(purpose.model_copy(update={"min_cell_size": 12})) != base
    assert policy_digest(purpose.model_copy(update={"allowed_fields": purpose.allowed_fields[:-1]})) != base


def test_a_decision_digest_covers_the_requested_sites_only() -> None:
    purposes, sites = load_purposes(), load_site_policies()
    request = StudyRequest(
        study_id="s",
        purpose_id="autodiagnostic_mobilite",
        task="employment_outcome",
        dataset="parcours",
        fields=("age_band",),
        sites=("france_travail", "missions_locales"),
        rounds=1,
        target_epsilon=1.0,
        delta=1e-7,
        coordinator="coordinator",
        requested_by="region",
    )
    purpose = purposes["autodiagnostic_mobilite"]
    base = decide(request, purpose, sites).policy_digest
    other_site_changed = {**sites, "apec": sites["apec"].model_copy(update={"epsilon_cap": 1.0})}
    assert decide(request, purpose, other_site_changed).policy_digest == base
    listed_site_changed = {
        **sites,
        "france_travail": sites["france_travail"].model_copy(update={"epsilon_cap": 7.0}),
    }
    assert decide(request, purpose, listed_site_changed).policy_digest != base
