"""The hash chain and the broker-signed heads."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trust_broker.audit.chain import (
    GENESIS,
    HeadSignatureError,
    canonical_json,
    compute_event_hash,
    next_event,
    sign_head,
    verify_head,
)

AT = dt.datetime(2026, 5, 4, 12, 30, tzinfo=dt.UTC)


def test_events_link_from_genesis_and_each_hash_covers_the_previous() -> None:
    first = next_event(None, kind="study.requested", actor="coordinator", payload={"study_id": "s"}, at=AT)
    second = next_event(first, kind="study.decided", actor="broker", payload={"allowed": True}, at=AT)
    assert (first.seq, first.prev_hash) == (1, GENESIS)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert second.hash == compute_event_hash(
        2, second.at, "study.decided", "broker", {"allowed": True}, first.hash
    )


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 2},
        {"at": "2026-05-04T12:30:00.000001Z"},
        {"kind": "grant.issued"},
        {"actor": "x"},
        {"prev_hash": "sha256:" + "1" * 64},
    ],
)
def test_the_hash_covers_every_field(change: dict[str, object]) -> None:
    event = next_event(None, kind="study.requested", actor="coordinator", payload={"a": 1}, at=AT)
    fields = {"seq": 1, "at": event.at, "kind": event.kind, "actor": event.actor, "payload": {"a": 1}}
    fields["prev_hash"] = GENESIS
    assert compute_event_hash(**{**fields, **change}) != event.hash  # type: ignore[arg-type]
    assert compute_event_hash(**{**fields, "payload": {"a": 2}}) != event.hash  # type: ignore[arg-type]


def test_the_hash_ignores_key_order_and_number_spelling() -> None:
    a = next_event(None, kind="node.report", actor="n", payload={"x": 1.0, "y": [1, 2]}, at=AT)
    b = next_event(None, kind="node.report", actor="n", payload={"y": [1, 2], "x": 1}, at=AT)
    assert a.hash == b.hash
    assert canonical_json({"b": 1, "a": 2}) == b'{"a":2,"b":1}'


def test_times_are_stored_in_one_utc_spelling() -> None:
    paris = AT.astimezone(dt.timezone(dt.timedelta(hours=2)))
    event = next_event(None, kind="node.report", actor="n", payload={}, at=paris)
    assert event.at == "2026-05-04T12:30:00.000000Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        next_event(None, kind="node.report", actor="n", payload={}, at=dt.datetime(2026, 5, 4))


def test_unknown_event_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown audit event kind 'budget.stolen'"):
        next_event(None, kind="budget.stolen", actor="broker", payload={}, at=AT)


def test_a_head_verifies_with_the_broker_key_only() -> None:
    broker, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    event = next_event(None, kind="study.requested", actor="c", payload={}, at=AT)
    head = sign_head(broker, event, "broker")
    assert verify_head(head, broker.public_key()) == {"seq": 1, "hash": event.hash, "at": event.at}
    with pytest.raises(HeadSignatureError, match="does not verify"):
        verify_head(head, other.public_key())
    with pytest.raises(HeadSignatureError, match="not a compact JWS"):
        verify_head("garbage", broker.public_key())
