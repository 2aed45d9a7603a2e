"""No overspend under concurrency: 50 reserves race for the last of a budget, on SQLite and PostgreSQL.

The racers are shared between two broker contexts on one database, as two broker processes would be:
each has its own writer, so the database's locks, not one writer's order, decide who gets the slot.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from broker_support import DELTA, Broker, dpsgd, make_context

from trust_broker.accounting import LedgerAccountant
from trust_broker.audit.chain import GENESIS
from trust_broker.audit.verify import verify_export
from trust_broker.provision import ProvisionedFolder
from trust_broker.roles import Role
from trust_broker.store.records import ReserveRequest

RACERS = 50


def _request(i: int, cap: float) -> ReserveRequest:
    return ReserveRequest(
        requester="node.apec",
        request_id=f"race-{i}",
        study_id="s-race",
        site="apec",
        dataset="parcours",
        period="2026",
        mechanism=dpsgd(),
        examples=100,
        cap=cap,
        study_cap=cap,
        delta=DELTA,
        ttl=dt.timedelta(minutes=5),
    )


def test_fifty_concurrent_reserves_for_the_last_slot_grant_exactly_one(
    db_url: str, folder: ProvisionedFolder
) -> None:
    accountant = LedgerAccountant()
    eps = [accountant.epsilon([dpsgd()] * k, DELTA) for k in (3, 4)]
    cap = (eps[0] + eps[1]) / 2  # room for exactly three reservations
    context, other = make_context(db_url, folder), make_context(db_url, folder)
    store = context.store
    try:
        Broker(context, folder).grant("s-race", sites=("apec",))
        for i in range(2):
            assert asyncio.run(store.reserve(_request(1000 + i, cap))).accepted
        barrier = threading.Barrier(RACERS)

        def race(i: int) -> bool:
            barrier.wait(timeout=30)
            return asyncio.run((store if i % 2 else other.store).reserve(_request(i, cap))).accepted

        with ThreadPoolExecutor(max_workers=RACERS) as pool:
            outcomes = list(pool.map(race, range(RACERS)))
        assert sum(outcomes) == 1
        balance = store.balance("apec", "parcours", "2026", DELTA)
        assert balance.charged == 3
        assert balance.epsilon <= cap
        # the chain stayed a line: consecutive seqs, each event linked to the one before
        previous_hash, expected_seq = GENESIS, 1
        for event in store.audit_events():
            assert (event.seq, event.prev_hash) == (expected_seq, previous_hash)
            assert event.hash == event.expected_hash()
            previous_hash, expected_seq = event.hash, expected_seq + 1
        kinds = [e.kind for e in store.audit_events() if e.kind.startswith("budget.")]
        assert kinds.count("budget.reserved") == 3
        assert kinds.count("budget.refused") == RACERS - 1
    finally:
        context.close()
        other.close()


def test_concurrent_retries_of_one_request_id_count_once(db_url: str, folder: ProvisionedFolder) -> None:
    context = make_context(db_url, folder)
    try:
        Broker(context, folder).grant("s-race", sites=("apec",))
        barrier = threading.Barrier(10)

        def retry(_: int) -> str:
            barrier.wait(timeout=30)
            return asyncio.run(context.store.reserve(_request(7, cap=100.0))).reservation_id

        with ThreadPoolExecutor(max_workers=10) as pool:
            ids = set(pool.map(retry, range(10)))
        assert len(ids) == 1
        assert context.store.balance("apec", "parcours", "2026", DELTA).charged == 1
    finally:
        context.close()


def test_grouped_reserves_commits_and_releases_keep_books_the_auditor_recomputes(
    db_url: str, folder: ProvisionedFolder, tmp_path: Path
) -> None:
    """Many nodes at once, so their operations share groups (and two writers share the database):
    every ε the broker records must be the one the auditor recomputes from the events before it."""
    context, other = make_context(db_url, folder), make_context(db_url, folder)
    broker = Broker(context, folder)
    try:
        study = broker.grant("s-mixed", sites=("apec", "france_travail"), target_epsilon=4.0)
        barrier = threading.Barrier(24)

        def node(i: int) -> None:
            store = (context if i % 2 else other).store
            site = ("apec", "france_travail")[i % 4 // 2]
            request = dataclasses.replace(
                _request(i, cap=100.0), study_id=study, site=site, requester=f"node.{site}", study_cap=100.0
            )
            barrier.wait(timeout=30)
            reserved = asyncio.run(store.reserve(request))
            actor = request.requester
            if i % 3 == 0:
                asyncio.run(store.release(reserved.reservation_id, site=site, actor=actor))
            else:  # commit what was reserved, or fewer steps than reserved
                used = dpsgd() if i % 3 == 1 else dpsgd(steps=4)
                asyncio.run(store.commit(reserved.reservation_id, used, site=site, actor=actor))

        with ThreadPoolExecutor(max_workers=24) as pool:
            list(pool.map(node, range(24)))
        export = broker.client(Role.AUDITOR).export_audit(tmp_path / "audit.jsonl")
        report = verify_export(export)
        assert report.ok, report.problems
        kinds = [e.kind for e in context.store.audit_events() if e.kind.startswith("budget.")]
        assert (kinds.count("budget.reserved"), kinds.count("budget.released")) == (24, 8)
        assert kinds.count("budget.committed") == 16
    finally:
        broker.close()
        other.close()


def test_a_reserve_sees_what_another_broker_process_spent_since(
    db_url: str, folder: ProvisionedFolder
) -> None:
    """Each process keeps the account's spending between its groups; another process's spending in
    between must make it read them again, or the two would overspend together."""
    accountant = LedgerAccountant()
    eps = [accountant.epsilon([dpsgd()] * k, DELTA) for k in (3, 4)]
    cap = (eps[0] + eps[1]) / 2  # room for exactly three reservations
    context, other = make_context(db_url, folder), make_context(db_url, folder)
    try:
        Broker(context, folder).grant("s-race", sites=("apec",))
        for i in range(2):  # this process now knows the account holds two
            assert asyncio.run(context.store.reserve(_request(i, cap))).accepted
        assert asyncio.run(other.store.reserve(_request(2, cap))).accepted  # the third, elsewhere
        refused = asyncio.run(context.store.reserve(_request(3, cap)))
        assert not refused.accepted
        assert refused.refusal is not None and refused.refusal["rule"] == "budget.cap"
        assert context.store.balance("apec", "parcours", "2026", DELTA).charged == 3
    finally:
        context.close()
        other.close()


def test_a_nonce_sent_many_times_at_once_is_accepted_once(db_url: str, folder: ProvisionedFolder) -> None:
    """Waiting nonces are inserted together, one statement per group: a replay inside one batch
    must still be caught."""
    context = make_context(db_url, folder)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)

    async def send(nonces: list[str]) -> list[bool]:
        return list(
            await asyncio.gather(*(context.store.remember_nonce("node.apec", n, expires) for n in nonces))
        )

    try:
        outcomes = asyncio.run(send(["replayed-nonce-0001"] * 8 + [f"fresh-nonce-{i:04d}" for i in range(8)]))
        assert sum(outcomes[:8]) == 1
        assert all(outcomes[8:])
        assert asyncio.run(send(["replayed-nonce-0001"])) == [False]
        # the same batch as one group would run it, whatever the timing above did
        batch = [
            {"kid": "node.apec", "nonce": n, "expires_at": expires} for n in ("a" * 16, "b" * 16, "a" * 16)
        ]
        with context.store.engine.begin() as connection:
            assert context.store._insert_nonces(connection, batch) == [True, True, False]
    finally:
        context.close()


def test_each_process_composes_what_the_others_reserved_committed_and_released(
    db_url: str, folder: ProvisionedFolder
) -> None:
    """A process follows the other's events to keep its spending current: every ε it records must be
    the composition of what the account really holds, whatever happened in between."""
    accountant = LedgerAccountant()
    context, other = make_context(db_url, folder), make_context(db_url, folder)
    here, there = context.store, other.store
    held: list[dict[str, object]] = []  # what the account is charged for, in truth

    def reserve(store, i: int) -> str:  # noqa: ANN001
        reserved = asyncio.run(store.reserve(_request(i, cap=100.0)))
        held.append(dpsgd())
        assert reserved.epsilon_after == pytest.approx(accountant.epsilon(held, DELTA), rel=1e-9)
        return reserved.reservation_id

    def settle(store, reservation_id: str, committed: dict[str, object] | None) -> None:  # noqa: ANN001
        held.remove(dpsgd())
        if committed is None:
            record = asyncio.run(store.release(reservation_id, site="apec", actor="node.apec"))
        else:
            held.append(committed)
            record = asyncio.run(store.commit(reservation_id, committed, site="apec", actor="node.apec"))
        assert record.epsilon_after == pytest.approx(accountant.epsilon(held, DELTA), rel=1e-9)

    try:
        Broker(context, folder).grant("s-race", sites=("apec",))
        # σ = 1.0: the chain's canonical JSON spells it 1, the rows 1.0; both must count as one mechanism
        settle(there, reserve(here, 10), dpsgd(steps=4))  # reserved here, committed there
        reserve(here, 11)
        settle(here, reserve(there, 12), dpsgd(steps=2))  # reserved there, committed here
        reserve(here, 0)
        settle(there, reserve(there, 1), dpsgd(steps=4))  # committed with fewer steps elsewhere
        kept_here = reserve(here, 2)
        settle(there, reserve(there, 3), dpsgd())
        settle(there, reserve(there, 4), None)  # given back elsewhere
        settle(here, kept_here, dpsgd(steps=7))
        settle(there, reserve(here, 5), None)  # reserved here, released there
        reserve(here, 6)
    finally:
        context.close()
        other.close()
