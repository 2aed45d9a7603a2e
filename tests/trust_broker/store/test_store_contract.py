"""The broker store's contract, run against every implementation (in memory, SQLite, PostgreSQL).

The stores share no code for their rows, so each behaviour here is a promise each one keeps on its
own; the ledger's rules are shared (``ledger.decisions``), and these tests show each store asks them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trust_broker.accounting import LedgerAccountant
from trust_broker.audit.chain import GENESIS, verify_head
from trust_broker.audit.export import write_export
from trust_broker.audit.receipts import verify_receipt
from trust_broker.audit.verify import verify_export
from trust_broker.grants import DPBounds, Grant, issue_grant
from trust_broker.roles import Role
from trust_broker.store.records import NotFound, Participant, ReserveRequest, StoreError, StudyRecord
from trust_broker.store.repository import BrokerStore

BROKER_KID = "broker"  # as the fixtures sign heads

T = TypeVar("T")
SITE, OTHER_SITE, DATASET, PERIOD = "apec", "france_travail", "parcours", "2026"
DELTA = 1e-6


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def gaussian(sigma: float = 2.0, count: int = 1) -> dict[str, Any]:
    return {"kind": "gaussian", "noise_multiplier": sigma, "count": count, "delta": DELTA}


def granted_study(
    key: Ed25519PrivateKey, study_id: str, *, epsilon: float = 5.0, expires_in: dt.timedelta | None = None
) -> StudyRecord:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expires = now + (expires_in or dt.timedelta(days=7))
    grant = Grant(
        study_id=study_id,
        purpose="autodiagnostic_mobilite",
        policy_digest="sha256:" + "1" * 64,
        task="employment_outcome",
        dataset=DATASET,
        fields=("age_band",),
        sites=(SITE, OTHER_SITE),
        epsilon={SITE: epsilon, OTHER_SITE: epsilon},
        delta=DELTA,
        dp_bounds=DPBounds(min_noise_multiplier=0.3, max_grad_norm_min=0.01, max_grad_norm_max=10.0),
        rounds=3,
        coordinator="coordinator",
        issued_at=now,
        expires_at=expires,
    )
    return StudyRecord(
        study_id=study_id,
        status="granted",
        purpose=grant.purpose,
        dataset=DATASET,
        requested_by="coordinator",
        request={"study_id": study_id, "dataset": DATASET},
        decision={"allowed": True, "reasons": [], "per_site_epsilon": grant.epsilon, "delta": DELTA},
        grant_jws=issue_grant(grant, key, kid=BROKER_KID),
        grant=grant.to_claims(),
        created_at=now,
        expires_at=expires,
    )


def refused_study(study_id: str) -> StudyRecord:
    now = dt.datetime.now(dt.UTC)
    return StudyRecord(
        study_id=study_id,
        status="refused",
        purpose="autodiagnostic_mobilite",
        dataset=DATASET,
        requested_by="coordinator",
        request={"study_id": study_id},
        decision={"allowed": False, "reasons": ["purpose.unknown"]},
        grant_jws=None,
        grant=None,
        created_at=now,
        expires_at=None,
    )


def reserve_request(study_id: str, request_id: str, **overrides: Any) -> ReserveRequest:
    values: dict[str, Any] = {
        "requester": "node-apec",
        "request_id": request_id,
        "study_id": study_id,
        "site": SITE,
        "dataset": DATASET,
        "period": PERIOD,
        "mechanism": gaussian(),
        "examples": 100,
        "cap": 10.0,
        "study_cap": 10.0,
        "delta": DELTA,
        "ttl": dt.timedelta(minutes=30),
    }
    values.update(overrides)
    return ReserveRequest(**values)


def kinds(store: BrokerStore) -> list[str]:
    return [event.kind for event in store.audit_events()]


def rule_of(call: Any) -> str:
    with pytest.raises(StoreError) as refused:
        call()
    return refused.value.rule


# -- participants ------------------------------------------------------------------------------------
def test_a_participant_is_registered_once_and_removed(store: BrokerStore) -> None:
    node = Participant(kid="node-apec", role=Role.NODE, site=SITE, public_key="a" * 43)
    assert store.register_participant(node, actor="broker") is True
    assert store.register_participant(node, actor="broker") is False  # nothing changed: not audited
    assert store.participant("node-apec") == node
    rotated = Participant(kid="node-apec", role=Role.NODE, site=SITE, public_key="b" * 43)
    assert store.register_participant(rotated, actor="broker") is True
    assert store.participants() == [rotated]
    assert store.remove_participant("node-apec", actor="broker") is True
    assert store.remove_participant("node-apec", actor="broker") is False
    assert store.participant("node-apec") is None
    assert kinds(store) == ["participant.registered", "participant.registered", "participant.removed"]


def test_a_nonce_is_accepted_once(store: BrokerStore) -> None:
    until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    assert run(store.remember_nonce("node-apec", "n1", until)) is True
    assert run(store.remember_nonce("node-apec", "n1", until)) is False
    assert run(store.remember_nonce("node-other", "n1", until)) is True


# -- studies and grants ------------------------------------------------------------------------------
def test_a_study_is_recorded_once_revoked_and_reported_on(
    store: BrokerStore, broker_key: Ed25519PrivateKey
) -> None:
    study = granted_study(broker_key, "s-1")
    store.record_study(study, actor="region")
    assert rule_of(lambda: store.record_study(study, actor="region")) == "study.exists"
    kept = store.study("s-1")
    assert kept is not None and kept.grant == study.grant and kept.status == "granted"
    status, claims = run(store.grant_state("s-1"))  # type: ignore[misc]
    assert status == "granted" and claims is not None and json.loads(claims) == study.grant
    seq = store.record_node_report("s-1", SITE, {"round": 1, "rows": 10}, actor="node-apec")
    assert seq == len(kinds(store))

    revoked = store.revoke_study("s-1", actor="region", reason="consent withdrawn")
    assert (revoked.status, revoked.revoke_reason) == ("revoked", "consent withdrawn")
    assert store.revoke_study("s-1", actor="region", reason="again").revoke_reason == "consent withdrawn"
    assert kinds(store).count("grant.revoked") == 1
    assert run(store.grant_state("s-1"))[0] == "revoked"  # type: ignore[index]
    assert rule_of(lambda: run(store.reserve(reserve_request("s-1", "r-1")))) == "grant.revoked"


def test_refused_and_unknown_studies(store: BrokerStore) -> None:
    store.record_study(refused_study("s-no"), actor="region")
    assert rule_of(lambda: store.revoke_study("s-no", actor="region", reason="x")) == "study.refused"
    assert rule_of(lambda: run(store.reserve(reserve_request("s-no", "r-1")))) == "grant.refused"
    with pytest.raises(NotFound):
        store.revoke_study("s-unknown", actor="region", reason="x")
    with pytest.raises(NotFound):
        store.record_node_report("s-unknown", SITE, {}, actor="node-apec")
    assert store.study("s-unknown") is None and run(store.grant_state("s-unknown")) is None
    assert kinds(store) == ["study.requested", "study.decided"]  # no grant.issued for a refusal


# -- registries --------------------------------------------------------------------------------------
def test_opt_outs_page_after_a_cursor_and_never_log_the_pseudonym(store: BrokerStore) -> None:
    pseudonyms = [f"pseudonym-{i:02d}" for i in range(5)]
    seqs = [
        store.add_opt_out(p, None if i % 2 else "research", site=SITE, actor="n")
        for i, p in enumerate(pseudonyms)
    ]
    assert (
        store.add_opt_out(pseudonyms[0], "research", site=SITE, actor="n") == seqs[0]
    )  # known: no new entry
    seen: list[dict[str, Any]] = []
    cursor = 0
    while True:
        page = store.opt_outs(cursor, 2)
        if not page.items:
            break
        assert len(page.items) <= 2 and page.cursor > cursor
        seen.extend(page.items)
        cursor = page.cursor
    assert [item["linkage_pseudonym"] for item in seen] == pseudonyms
    assert [item["purpose"] for item in seen] == ["research", None, "research", None, "research"]
    assert store.opt_outs(cursor, 10).cursor == cursor
    chain = json.dumps([event.payload for event in store.audit_events()])
    assert kinds(store).count("optout.added") == 5
    assert not any(p in chain for p in pseudonyms)


def test_consents_are_appended_and_filtered_by_purpose(store: BrokerStore) -> None:
    first = store.record_consent("p-1", "research", "given", site=SITE, actor="n")
    second = store.record_consent("p-1", "research", "withdrawn", site=SITE, actor="n")
    store.record_consent("p-2", "other", "given", site=SITE, actor="n")
    assert second > first
    page = store.consents(0, 10, purpose="research")
    assert [(i["linkage_pseudonym"], i["action"]) for i in page.items] == [
        ("p-1", "given"),
        ("p-1", "withdrawn"),
    ]
    assert len(store.consents(0, 10).items) == 3
    with pytest.raises(StoreError) as refused:
        store.record_consent("p-1", "research", "maybe", site=SITE, actor="n")
    assert (refused.value.rule, refused.value.status) == ("consent.action", 422)
    assert kinds(store) == ["consent.given", "consent.withdrawn", "consent.given"]


# -- ledger ------------------------------------------------------------------------------------------
def test_reserve_then_commit_charges_the_parameters_used(
    store: BrokerStore, broker_key: Ed25519PrivateKey, accountant: LedgerAccountant
) -> None:
    store.record_study(granted_study(broker_key, "s-1"), actor="region")
    reserved = run(store.reserve(reserve_request("s-1", "r-1", mechanism=gaussian(sigma=2.0))))
    assert reserved.status == "reserved" and reserved.receipt is not None
    verify_receipt(reserved.receipt, broker_key.public_key())
    balance = store.balance(SITE, DATASET, PERIOD, DELTA)
    assert balance.charged == 1
    assert balance.epsilon == pytest.approx(accountant.epsilon([gaussian(sigma=2.0)], DELTA))

    committed = run(store.commit(reserved.reservation_id, gaussian(sigma=3.0), site=SITE, actor="node-apec"))
    assert committed.status == "committed" and committed.committed_mechanism == gaussian(sigma=3.0)
    assert store.balance(SITE, DATASET, PERIOD, DELTA).epsilon == pytest.approx(
        accountant.epsilon([gaussian(sigma=3.0)], DELTA)
    )
    events = len(kinds(store))
    again = run(store.commit(reserved.reservation_id, gaussian(sigma=3.0), site=SITE, actor="node-apec"))
    assert again.status == "committed" and again.receipt is None and len(kinds(store)) == events
    assert (
        rule_of(
            lambda: run(
                store.commit(reserved.reservation_id, gaussian(sigma=4.0), site=SITE, actor="node-apec")
            )
        )
        == "budget.not_reserved"
    )


def test_a_commit_is_held_to_its_reservation_its_site_and_its_grant(
    store: BrokerStore, broker_key: Ed25519PrivateKey
) -> None:
    store.record_study(granted_study(broker_key, "s-1"), actor="region")
    reserved = run(store.reserve(reserve_request("s-1", "r-1", mechanism=gaussian(sigma=2.0))))
    rid = reserved.reservation_id
    assert rule_of(lambda: run(store.commit(rid, gaussian(sigma=1.0), site=SITE, actor="n"))) == (
        "budget.commit_exceeds_reservation"
    )
    assert (
        rule_of(lambda: run(store.commit(rid, gaussian(sigma=0.1), site=SITE, actor="n")))
        == "grant.dp_bounds"
    )
    assert rule_of(lambda: run(store.commit(rid, gaussian(), site=OTHER_SITE, actor="n"))) == "auth.site"
    with pytest.raises(NotFound):
        run(store.commit("no-such-reservation", gaussian(), site=SITE, actor="n"))
    assert store.balance(SITE, DATASET, PERIOD, DELTA).charged == 1  # refusals changed nothing
    assert run(store.release(rid, site=SITE, actor="n")).status == "released"
    assert store.balance(SITE, DATASET, PERIOD, DELTA).charged == 0


def test_an_overspend_is_refused_with_its_rule_and_answered_again(
    store: BrokerStore, broker_key: Ed25519PrivateKey, accountant: LedgerAccountant
) -> None:
    store.record_study(granted_study(broker_key, "s-1"), actor="region")
    one = accountant.epsilon([gaussian()], DELTA)
    first = run(store.reserve(reserve_request("s-1", "r-1", cap=one * 1.01)))
    assert first.status == "reserved"
    over = run(store.reserve(reserve_request("s-1", "r-2", cap=one * 1.01)))
    assert over.status == "refused" and over.refusal is not None
    assert over.refusal["rule"] == "budget.cap" and over.refusal["value"] > over.refusal["limit"]
    assert run(store.reserve(reserve_request("s-1", "r-2", cap=one * 1.01))).refusal == over.refusal
    study_over = run(store.reserve(reserve_request("s-1", "r-3", study_cap=one * 1.01)))
    assert study_over.refusal is not None and study_over.refusal["rule"] == "budget.study_cap"
    assert store.balance(SITE, DATASET, PERIOD, DELTA).charged == 1
    assert kinds(store).count("budget.refused") == 2  # the repeat recorded nothing


def test_a_request_id_is_reserved_once(store: BrokerStore, broker_key: Ed25519PrivateKey) -> None:
    store.record_study(granted_study(broker_key, "s-1"), actor="region")
    first = run(store.reserve(reserve_request("s-1", "r-1")))
    assert run(store.reserve(reserve_request("s-1", "r-1"))).reservation_id == first.reservation_id
    other = reserve_request("s-1", "r-1", mechanism=gaussian(sigma=5.0))
    assert rule_of(lambda: run(store.reserve(other))) == "budget.request_id_reused"
    run(store.commit(first.reservation_id, gaussian(), site=SITE, actor="n"))
    assert rule_of(lambda: run(store.reserve(reserve_request("s-1", "r-1")))) == "budget.request_settled"
    assert kinds(store).count("budget.reserved") == 1


def test_an_expired_reservation_stays_charged(
    store: BrokerStore, broker_key: Ed25519PrivateKey, accountant: LedgerAccountant
) -> None:
    store.record_study(granted_study(broker_key, "s-1"), actor="region")
    expired = run(store.reserve(reserve_request("s-1", "r-1", ttl=dt.timedelta(seconds=-1))))
    rid = expired.reservation_id
    assert rule_of(lambda: run(store.release(rid, site=SITE, actor="n"))) == "budget.reservation_expired"
    assert store.balance(SITE, DATASET, PERIOD, DELTA).charged == 1
    late = run(store.commit(rid, gaussian(sigma=3.0), site=SITE, actor="n"))  # may only lower the charge
    assert late.status == "committed"
    assert store.balance(SITE, DATASET, PERIOD, DELTA).epsilon == pytest.approx(
        accountant.epsilon([gaussian(sigma=3.0)], DELTA)
    )


def test_a_live_grant_holds_its_share_until_it_ends(
    store: BrokerStore, broker_key: Ed25519PrivateKey, accountant: LedgerAccountant
) -> None:
    now = dt.datetime.now(dt.UTC)
    store.record_study(granted_study(broker_key, "s-live", epsilon=1.5), actor="region")
    store.record_study(granted_study(broker_key, "s-old", epsilon=2.0), actor="region")
    run(store.reserve(reserve_request("s-old", "r-1")))
    store.revoke_study("s-old", actor="region", reason="done")
    spent = accountant.epsilon([gaussian()], DELTA)
    assert store.held_epsilon(SITE, DATASET, PERIOD, DELTA, now) == pytest.approx(1.5 + spent)
    later = now + dt.timedelta(days=30)  # the live grant has expired by then
    assert store.held_epsilon(SITE, DATASET, PERIOD, DELTA, later) == pytest.approx(spent)
    assert store.held_epsilon("elsewhere", DATASET, PERIOD, DELTA, now) == 0.0


# -- audit log ---------------------------------------------------------------------------------------
def test_the_chain_is_continuous_signed_and_passes_the_auditor(
    store: BrokerStore, broker_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    assert store.sign_current_head() is None  # nothing to sign yet
    store.record_study(granted_study(broker_key, "s-1"), actor="region")
    store.add_opt_out("p-1", None, site=SITE, actor="n")
    reserved = run(store.reserve(reserve_request("s-1", "r-1")))
    run(store.commit(reserved.reservation_id, gaussian(sigma=3.0), site=SITE, actor="n"))
    second = run(store.reserve(reserve_request("s-1", "r-2")))
    run(store.release(second.reservation_id, site=SITE, actor="n"))

    events = list(store.audit_events())
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert events[0].prev_hash == GENESIS
    for previous, event in zip(events, events[1:], strict=False):
        assert event.prev_hash == previous.hash
    assert all(event.hash == event.expected_hash() for event in events)
    head = store.sign_current_head()
    assert head is not None and store.sign_current_head() == head
    assert verify_head(head, broker_key.public_key())["seq"] == events[-1].seq

    export = io.StringIO()
    write_export(
        export,
        broker_public_key=broker_key.public_key(),
        kid=BROKER_KID,
        events=events,
        heads=store.audit_heads(),
    )
    path = tmp_path / "audit.jsonl"
    path.write_text(export.getvalue(), encoding="utf-8")
    report = verify_export(path)
    assert report.ok, report.problems
    assert report.events == len(events)


# -- concurrency -------------------------------------------------------------------------------------
def test_concurrent_reserves_for_the_last_slot_grant_exactly_one(
    store: BrokerStore, broker_key: Ed25519PrivateKey, accountant: LedgerAccountant
) -> None:
    store.record_study(granted_study(broker_key, "s-1", epsilon=100.0), actor="region")
    eps = [accountant.epsilon([gaussian()] * k, DELTA) for k in (3, 4)]
    cap = (eps[0] + eps[1]) / 2  # room for exactly three reservations
    for i in range(2):
        assert run(store.reserve(reserve_request("s-1", f"r-{i}", cap=cap))).accepted
    racers = 16
    barrier = threading.Barrier(racers)

    def race(i: int) -> bool:
        barrier.wait(timeout=30)
        return run(store.reserve(reserve_request("s-1", f"race-{i}", cap=cap))).accepted

    with ThreadPoolExecutor(max_workers=racers) as pool:
        outcomes = list(pool.map(race, range(racers)))
    assert sum(outcomes) == 1
    assert store.balance(SITE, DATASET, PERIOD, DELTA).charged == 3
    events = list(store.audit_events())
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(events, events[1:], strict=False))
