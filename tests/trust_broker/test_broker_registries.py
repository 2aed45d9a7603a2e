"""Opt-out and consent registries: nodes add for their own site, everyone authorized reads by cursor."""

from __future__ import annotations

import pytest
from broker_support import Broker

from trust_broker.audit.chain import EVENT_KINDS
from trust_broker.roles import Role


def test_opt_outs_are_listed_after_a_cursor_and_added_once(broker: Broker) -> None:
    apec = broker.client(Role.NODE, "apec")
    france_travail = broker.client(Role.NODE, "france_travail")
    first = apec.add_opt_out("p" * 32)
    assert apec.add_opt_out("p" * 32) == first  # idempotent
    france_travail.add_opt_out("q" * 32, purpose="autodiagnostic_mobilite")
    everything, cursor = france_travail.opt_outs()
    assert everything == ["p" * 32, "q" * 32]
    apec.add_opt_out("s" * 32, purpose="adult_income")
    newer, newer_cursor = apec.opt_outs(since=cursor)
    assert newer == ["s" * 32]
    assert newer_cursor > cursor
    for_purpose, _ = apec.opt_outs(purpose="autodiagnostic_mobilite")
    assert for_purpose == ["p" * 32, "q" * 32]


def test_opt_out_events_carry_a_digest_never_the_pseudonym(broker: Broker) -> None:
    broker.client(Role.NODE, "apec").add_opt_out("z" * 40)
    events = [e for e in broker.context.store.audit_events() if e.kind == "optout.added"]
    assert len(events) == 1
    assert events[0].payload["site"] == "apec"
    assert "z" * 40 not in str(events[0].payload)


def test_opt_out_listing_pages_through_large_registries(broker: Broker) -> None:
    node = broker.client(Role.NODE, "apec")
    for i in range(7):
        node.add_opt_out(f"{i:032d}")
    page = broker.http.get(
        "/v1/optouts",
        params={"since": 0, "limit": 3},
        auth=__import__("broker_support").signer(broker.folder, Role.NODE, "apec"),
    ).json()
    assert len(page["items"]) == 3
    everything, _ = node.opt_outs()
    assert len(everything) == 7


@pytest.mark.skipif(
    "consent.given" not in EVENT_KINDS,
    reason="the audit chain has no consent event kinds yet (see CONTRACTS.md)",
)
def test_consents_given_and_withdrawn_are_listed_in_order(broker: Broker) -> None:
    node = broker.client(Role.NODE, "missions_locales")
    node.record_consent("c" * 32, "adult_income")
    node.record_consent("c" * 32, "adult_income", action="withdrawn")
    node.record_consent("d" * 32, "other_purpose")
    items, cursor = node.consents("adult_income")
    assert [(i.linkage_pseudonym, i.action) for i in items] == [("c" * 32, "given"), ("c" * 32, "withdrawn")]
    assert node.consents("adult_income", since=cursor)[0] == []
