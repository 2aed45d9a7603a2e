"""The node's gate against a real broker on loopback: admission, revocation between rounds, forgery."""

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.grant import request_grant
from coordinator.study_config import StudyConfig
from node_agent.broker_gate import BrokerGate
from node_agent.declined import NodeDeclined
from node_agent.settings import NodeSettings
from tasks.registry import get_task
from trust_broker.client import BrokerClient
from trust_broker.embedded import EmbeddedBroker
from trust_broker.grants import Grant, issue_grant, verify_grant
from trust_broker.provision import provision
from trust_broker.roles import Role

SITES = ("france_travail", "missions_locales")


@pytest.fixture
def granted(tmp_path):
    keys = provision(tmp_path / "keys", SITES)
    with EmbeddedBroker(f"sqlite:///{tmp_path / 'broker.db'}", keys.root) as broker:
        config = StudyConfig(study_id="gate-test", task="employment_outcome", sites=SITES, study_dir=tmp_path)
        config = request_grant(
            config, purpose="autodiagnostic_mobilite", broker_url=broker.url, keys=keys.root
        )
        settings = NodeSettings(
            site="missions_locales",
            data_dir=tmp_path,
            keys_dir=keys.node_dir("missions_locales"),
            broker_url=broker.url,
        )
        yield keys, broker, config, settings


def test_an_admitted_site_gets_the_grants_terms_and_stops_once_the_grant_is_revoked(granted):
    keys, broker, config, settings = granted
    gate = BrokerGate(settings)
    terms = gate.admit(config.instructions(), get_task("employment_outcome"))
    assert terms.target_epsilon == config.target_epsilon and terms.fields == config.fields
    assert terms.legal_basis == "public_interest"
    gate.still_granted()  # round 2 may go on
    with BrokerClient.from_folder(keys.root, Role.REGION, base_url=broker.url) as region:
        region.revoke(config.study_id, "withdrawn by the Region")
    with pytest.raises(NodeDeclined) as declined:
        gate.still_granted()
    assert declined.value.rule.startswith("grant.")


def test_a_grant_signed_by_another_key_is_refused_before_any_record_is_read(granted):
    keys, _, config, settings = granted
    genuine = verify_grant(config.grant, keys.broker_public_key(), site="missions_locales")
    forged = issue_grant(
        Grant(**{**genuine.model_dump(), "kid": ""}), Ed25519PrivateKey.generate(), kid="broker"
    )
    instructions = replace(config.instructions(), grant=forged)
    with pytest.raises(NodeDeclined) as declined:
        BrokerGate(settings).admit(instructions, get_task("employment_outcome"))
    assert declined.value.rule == "grant.invalid"


def test_a_round_without_a_grant_is_declined(granted):
    _, _, config, settings = granted
    instructions = replace(config.instructions(), grant="")
    with pytest.raises(NodeDeclined) as declined:
        BrokerGate(settings).admit(instructions, get_task("employment_outcome"))
    assert declined.value.rule == "grant.missing"


def test_the_local_veto_reads_the_sites_own_policy_never_the_bundles_copy(granted):
    """Issue 12, item 6: a node without its own policy declined nothing — it read the shipped copy,
    which in deployment is the app bundle the Region submitted."""
    keys, _, config, settings = granted
    own = keys.node_dir("missions_locales") / "site-policy.yaml"
    text = own.read_text(encoding="utf-8")
    own.unlink()
    with pytest.raises(NodeDeclined) as declined:
        BrokerGate(settings).admit(config.instructions(), get_task("employment_outcome"))
    assert declined.value.rule == "site.policy_missing"
    # the site's own edit is what decides: refusing the purpose in its own file declines the study
    own.write_text(text.replace("  - autodiagnostic_mobilite\n", ""), encoding="utf-8")
    with pytest.raises(NodeDeclined) as declined:
        BrokerGate(settings).admit(config.instructions(), get_task("employment_outcome"))
    assert declined.value.rule.startswith("site.")


@pytest.mark.parametrize(
    "field, value",
    [("learning_rate", 0.0), ("learning_rate", 5.0), ("local_epochs", 500), ("batch_size", 1)],
)
def test_training_hyper_parameters_outside_the_grants_bounds_are_refused(granted, field, value):
    """lr = 0 with crafted weights once made a round a targeted query; the grant bounds lr, epochs, batch."""
    _, _, config, settings = granted
    instructions = replace(config.instructions(), **{field: value})
    with pytest.raises(NodeDeclined) as declined:
        BrokerGate(settings).admit(instructions, get_task("employment_outcome"))
    assert declined.value.rule == "grant.dp_bounds"
