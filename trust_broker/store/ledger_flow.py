"""The ledger's operations (reserve, commit, release) once, for every store.

A store gives a ``LedgerBook`` (its rows as of the operation's transaction, and the writes it will
make) and these functions do the rest: they read, ask ``trust_broker.ledger.decisions`` and
``ledger.state``, and only then write (the group commit's contract: a ``StoreError`` before anything
that matters was written). The events they record are the audit chain's ``budget.*`` events.

A reservation row has the columns of ``models.ReservationRow`` (database row or namespace alike);
an account, those of ``models.BudgetAccountRow`` (``id``, ``site``, ``dataset``, ``period``).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections import Counter
from types import SimpleNamespace
from typing import Any, Protocol

from trust_broker.audit.chain import AuditEvent
from trust_broker.audit.receipts import make_receipt
from trust_broker.grants import Grant
from trust_broker.ledger.account import AccountKey, LedgerError
from trust_broker.ledger.analysis import REPEAT_FIELD
from trust_broker.ledger.decisions import (
    Composed,
    Composer,
    Refusal,
    decide_commit,
    decide_reserve,
    release_refusal,
    replay_refusal,
)
from trust_broker.ledger.state import Ledger, LedgerEvent, next_state, spelling
from trust_broker.store.changes import aware, dumps, now
from trust_broker.store.linking import PendingEvent
from trust_broker.store.records import ReservationRecord, ReserveRequest, StoreError


class LedgerBook(Protocol):
    """A store's rows for one ledger operation, inside the transaction (or lock) that holds them."""

    @property
    def ledger(self) -> Ledger:
        """The charges the store keeps current (``spending`` loads an account's into it)."""

    def check_granted(self, study_id: str) -> None:
        """Raise the ``StoreError`` naming the rule unless the study's grant stands now."""

    def grant(self, study_id: str) -> Grant | None:
        """A study's grant, None if it has none."""

    def account(self, key: AccountKey) -> Any:
        """The account (created on first use)."""

    def spending(self, account: Any) -> Counter[str]:
        """The account's charge as ``self.ledger`` holds it (loaded when it does not)."""

    def study_spending(self, account: Any, study_id: str) -> Counter[str]:
        """The part of the account's charge spent by ``study_id`` (a fresh counter)."""

    def claim(self, row: SimpleNamespace) -> bool:
        """Insert a reservation unless its (requester, request_id) is taken; False when taken."""

    def previous(self, requester: str, request_id: str) -> Any:
        """The reservation that took (requester, request_id)."""

    def reservation(self, reservation_id: str) -> tuple[Any, Any]:
        """(reservation, its account), locked; ``NotFound`` (budget.unknown_reservation) if none."""

    def update(self, row: Any, changes: dict[str, Any]) -> Any:
        """Write ``changes`` to a reservation; the row as it now is."""

    def record(self, event: PendingEvent) -> None:
        """Append an event to the operation's (linked when its transaction ends)."""

    def keep(self, row: Any, account: Any) -> None:
        """A live reservation this store may be asked to settle next."""

    def forget(self, reservation_id: str) -> None:
        """A reservation that is no longer live."""


def refuse(refusal: Refusal, *, status: int | None = None) -> StoreError:
    return StoreError(refusal.rule, refusal.detail, status=status)


def key_of(account: Any) -> AccountKey:
    return AccountKey(account.site, account.dataset, account.period)


def transition(status: str, kind: str, where: str, *, same_mechanism: bool = False) -> bool:
    """The ledger's transition table on a row's status: True to go on, False when the request is a
    repeat of what was done already; a refused transition is a ``budget.not_reserved`` refusal."""
    try:
        return next_state(status, kind, same_mechanism=same_mechanism, where=where) is not None
    except LedgerError as exc:
        raise StoreError("budget.not_reserved", str(exc)) from exc


def history(counts: Counter[str]) -> list[dict[str, Any]]:
    """The spent mechanisms, identical ones merged by multiplying their repeat field (steps,
    count): exact under RDP composition, and a long history costs one entry per distinct
    parameter set instead of one per round."""
    merged: list[dict[str, Any]] = []
    for raw, count in counts.items():
        if count < 0:  # the group's bookkeeping drifted from the rows: stop rather than guess
            raise RuntimeError(f"negative spent count {count} for {raw}")
        if count == 0:
            continue
        mechanism = json.loads(raw)
        repeat = REPEAT_FIELD.get(str(mechanism.get("kind")))
        if repeat is None:
            merged.extend([mechanism] * count)
            continue
        mechanism[repeat] = int(mechanism.get(repeat, 1)) * count
        merged.append(mechanism)
    return merged


def reservation_record(row: Any, account: Any) -> ReservationRecord:
    """A record from a reservation and its account (ORM objects, Core rows or namespaces alike)."""
    committed = row.committed_mechanism_json
    return ReservationRecord(
        reservation_id=row.id,
        request_id=row.request_id,
        study_id=row.study_id,
        site=account.site,
        dataset=account.dataset,
        period=account.period,
        status=row.status,
        mechanism=json.loads(row.mechanism_json),
        committed_mechanism=json.loads(committed) if committed else None,
        examples=row.examples,
        epsilon_after=row.epsilon_after,
        cap=row.cap,
        created_at=aware(row.created_at),  # type: ignore[arg-type]
        expires_at=aware(row.expires_at),  # type: ignore[arg-type]
        refusal=json.loads(row.refusal_json) if row.refusal_json else None,
    )


def with_receipt(
    record: ReservationRecord, events: list[AuditEvent], head_jws: str | None
) -> ReservationRecord:
    """The answer with the broker's receipt for the event it recorded (none for a repeat of a request
    already answered: that answer's receipt stands)."""
    if not events or head_jws is None:
        return record
    return dataclasses.replace(record, receipt=make_receipt(events[-1], head_jws))


def reserve(book: LedgerBook, composer: Composer, request: ReserveRequest) -> ReservationRecord:
    """Hold a mechanism's cost on an account, or store the refusal (answered again on a repeat)."""
    book.check_granted(request.study_id)
    mechanism_json = dumps(request.mechanism)
    key = AccountKey(request.site, request.dataset, request.period)
    account = book.account(key)
    new = spelling(mechanism_json)
    composed, refusal = decide_reserve(
        composer,
        book.spending(account),
        new,
        account=key,
        study_id=request.study_id,
        cap=request.cap,
        study_cap=request.study_cap,
        delta=request.delta,
        study_spent=lambda: book.study_spending(account, request.study_id),
    )
    created = now()
    row = SimpleNamespace(
        id=uuid.uuid4().hex,
        account_id=account.id,
        requester=request.requester,
        request_id=request.request_id,
        study_id=request.study_id,
        status="refused" if refusal else "reserved",
        mechanism_json=mechanism_json,
        examples=request.examples,
        epsilon_after=composed.epsilon,
        cap=request.cap,
        delta=request.delta,
        refusal_json=dumps(refusal.body()) if refusal else None,
        created_at=created,
        expires_at=created + request.ttl,
        committed_mechanism_json=None,
        settled_at=None,
    )
    # The request id is claimed by the insert itself (no look-up first): a request id seen before
    # inserts nothing and the earlier reservation answers, or the reuse is refused.
    if not book.claim(row):
        return _replayed(book, request, account, mechanism_json)
    payload = {
        "reservation_id": row.id,
        "request_id": request.request_id,
        "epsilon": composed.epsilon,
        "study_id": request.study_id,
        "account": key.to_json(),
        "mechanism": request.mechanism,
        "examples": request.examples,
        "cap": request.cap,
        "study_cap": request.study_cap,
        "delta": composed.delta,
        "expires_at": row.expires_at.isoformat(),
    }
    if refusal:
        payload["refusal"] = refusal.body()
        book.record(PendingEvent("budget.refused", request.requester, payload))
    else:
        book.record(PendingEvent("budget.reserved", request.requester, payload))
        book.ledger.apply(LedgerEvent("budget.reserved", key, row.id, new, request.study_id))
        book.keep(row, account)  # for its commit or release
    return reservation_record(row, account)


def _replayed(
    book: LedgerBook, request: ReserveRequest, account: Any, mechanism_json: str
) -> ReservationRecord:
    """The earlier reservation of a request id, if this request is the same one sent again."""
    previous = book.previous(request.requester, request.request_id)
    same = (previous.study_id, previous.account_id, previous.mechanism_json, previous.examples) == (
        request.study_id,
        account.id,
        mechanism_json,
        request.examples,
    )
    refusal = replay_refusal(request.request_id, same_request=same, previous_status=previous.status)
    if refusal is not None:
        raise refuse(refusal)
    return reservation_record(previous, account)


def commit(
    book: LedgerBook,
    composer: Composer,
    reservation_id: str,
    mechanism: dict[str, Any],
    site: str,
    actor: str,
) -> ReservationRecord:
    """Charge the parameters actually used in place of the reserved ones (a late commit, after
    expiry, is accepted: it can only lower the charge, never raise it)."""
    mechanism_json = dumps(mechanism)
    row, account = _owned(book, reservation_id, site)
    same = row.committed_mechanism_json == mechanism_json
    if not transition(row.status, "budget.committed", f"reservation {reservation_id}", same_mechanism=same):
        return reservation_record(row, account)
    reserved = json.loads(row.mechanism_json)
    grant = book.grant(row.study_id)
    refused_by_grant = grant.mechanism_refusal(mechanism) if grant is not None else None
    if refused_by_grant is not None:
        raise StoreError(*refused_by_grant, status=403)
    key = key_of(account)
    old, new = spelling(row.mechanism_json), spelling(mechanism_json)
    composed, refusal = decide_commit(
        composer,
        book.spending(account),
        reservation_id=reservation_id,
        account=key,
        study_id=row.study_id,
        reserved=reserved,
        actual=mechanism,
        spellings=(old, new),
        cap=row.cap,
        study_cap=grant.epsilon.get(key.site) if grant is not None else None,
        delta=row.delta,
        study_spent=lambda: book.study_spending(account, row.study_id),
    )
    if refusal is not None:
        raise refuse(refusal)
    payload = {"mechanism": mechanism, "reserved_mechanism": reserved, "examples": row.examples}
    event = PendingEvent("budget.committed", actor, payload)
    changes = {"status": "committed", "committed_mechanism_json": mechanism_json}
    return _settle(book, composer, row, account, event, charged=new, changes=changes, composed=composed)


def release(
    book: LedgerBook, composer: Composer, reservation_id: str, site: str, actor: str
) -> ReservationRecord:
    """Give a live reservation back (nothing is charged); an expired one stays charged."""
    row, account = _owned(book, reservation_id, site)
    if not transition(row.status, "budget.released", f"reservation {reservation_id}"):
        return reservation_record(row, account)
    refusal = release_refusal(reservation_id, aware(row.expires_at), now())  # type: ignore[arg-type]
    if refusal is not None:
        raise refuse(refusal)
    event = PendingEvent("budget.released", actor, {"reserved_mechanism": json.loads(row.mechanism_json)})
    return _settle(book, composer, row, account, event, charged=None, changes={"status": "released"})


def _owned(book: LedgerBook, reservation_id: str, site: str) -> tuple[Any, Any]:
    row, account = book.reservation(reservation_id)
    if account.site != site:
        raise StoreError("auth.site", f"reservation {reservation_id} belongs to another site", status=403)
    return row, account


def _settle(
    book: LedgerBook,
    composer: Composer,
    row: Any,
    account: Any,
    event: PendingEvent,
    *,
    charged: str | None,
    changes: dict[str, Any],
    composed: Composed | None = None,
) -> ReservationRecord:
    """End a live reservation: its charge becomes ``charged`` (a mechanism's spelling; None when it
    is given back), the row gets ``changes`` and the account's new ε, and the event records both."""
    spent = book.spending(account)  # loaded before the ledger applies the change to it
    key = key_of(account)
    reserved = spelling(row.mechanism_json)
    book.ledger.apply(
        LedgerEvent(event.kind, key, row.id, charged, row.study_id, reserved_mechanism=reserved)
    )
    if composed is None:
        delta = composer.charged_delta(spent, row.delta)  # the grant's δ, kept with the row
        composed = Composed(delta, composer.charged_epsilon(spent, delta))
    row = book.update(row, {**changes, "settled_at": now(), "epsilon_after": composed.epsilon})
    book.forget(row.id)
    payload = {
        "reservation_id": row.id,
        "request_id": row.request_id,
        "study_id": row.study_id,
        "account": key.to_json(),
        **event.payload,
        "cap": row.cap,
        "delta": composed.delta,
        "epsilon": composed.epsilon,
    }
    book.record(PendingEvent(event.kind, event.actor, payload))
    return reservation_record(row, account)
