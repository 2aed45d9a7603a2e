"""``BrokerStore`` in memory: the same contract as the SQL store, for tests, demos and one-process
simulations (its state dies with the process, so never for a broker whose ledger must outlive it).

One lock guards everything, so each call is a transaction: it reads, asks the ledger's decisions
(``ledger_flow``, ``ledger.decisions``, the same code the SQL store runs) and only then writes its
rows and links its events to the chain, hashed and signed as ``audit.chain`` does. The charges are
a full ``ledger.state.Ledger``, the auditor's own kind: every reservation since the start.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, NamedTuple

from trust_broker.accounting import LedgerAccountant
from trust_broker.audit.chain import GENESIS, AuditEvent
from trust_broker.grants import Grant
from trust_broker.ledger.account import AccountKey
from trust_broker.ledger.decisions import LiveGrant, grant_holds
from trust_broker.ledger.state import CHARGED_STATES, Ledger
from trust_broker.store import changes, ledger_flow
from trust_broker.store.linking import Extended, HeadSigner, HeadSigning, PendingEvent, Tip, link
from trust_broker.store.records import (
    AccountBalance,
    ListPage,
    NotFound,
    Participant,
    ReservationRecord,
    ReserveRequest,
    StudyRecord,
    granted_claims,
)
from trust_broker.store.repository import BrokerStore

NONCE_SWEEP_EVERY = 500


class _Entry(NamedTuple):
    """A registry's line: an opt-out (``action`` None) or a consent."""

    seq: int
    pseudonym: str
    purpose: str
    site: str
    at: dt.datetime
    action: str | None = None


class _Book:
    """``ledger_flow.LedgerBook`` on the store's dictionaries, under its lock; events wait in ``pending``."""

    def __init__(self, store: InMemoryBrokerStore) -> None:
        self.store = store
        self.pending: list[PendingEvent] = []

    @property
    def ledger(self) -> Ledger:
        return self.store._ledger

    def check_granted(self, study_id: str) -> None:
        granted_claims(study_id, self.store._grant_state(study_id))

    def grant(self, study_id: str) -> Grant | None:
        return self.store._grant(study_id)

    def account(self, key: AccountKey) -> Any:
        accounts = self.store._accounts
        if key not in accounts:
            account = SimpleNamespace(id=len(accounts) + 1, **key._asdict(), created_at=changes.now())
            accounts[key] = self.store._account_ids[account.id] = account
        return accounts[key]

    def spending(self, account: Any) -> Counter[str]:
        key = ledger_flow.key_of(account)
        charged = self.ledger.accounts.get(key)
        return self.ledger.load(key, Counter()) if charged is None else charged

    def study_spending(self, account: Any, study_id: str) -> Counter[str]:
        return self.store._charged(ledger_flow.key_of(account), lambda study: study == study_id)

    def claim(self, row: SimpleNamespace) -> bool:
        request = (row.requester, row.request_id)
        if request in self.store._requests:
            return False
        self.store._requests[request] = row.id
        self.store._reservations[row.id] = row
        return True

    def previous(self, requester: str, request_id: str) -> Any:
        return self.store._reservations[self.store._requests[requester, request_id]]

    def reservation(self, reservation_id: str) -> tuple[Any, Any]:
        row = self.store._reservations.get(reservation_id)
        if row is None:
            raise NotFound("budget.unknown_reservation", f"no reservation {reservation_id}")
        return row, self.store._account_ids[row.account_id]

    def update(self, row: Any, changes: dict[str, Any]) -> Any:
        for name, value in changes.items():
            setattr(row, name, value)
        return row

    def record(self, event: PendingEvent) -> None:
        self.pending.append(event)

    def keep(self, row: Any, account: Any) -> None:
        """Every reservation is kept (in ``_reservations``)."""

    def forget(self, reservation_id: str) -> None:
        """Nothing to forget: the rows are the store's state."""


class InMemoryBrokerStore(BrokerStore):
    """The broker's state in this process's memory; thread-safe."""

    database_name = "memory"

    def __init__(
        self,
        accountant: LedgerAccountant,
        head_signer: HeadSigner | None = None,
        *,
        sign_heads_every: int = 1,
        broker_kid: str = "broker",
    ) -> None:
        self.accountant = accountant
        self.broker_kid = broker_kid
        self.heads = HeadSigning(head_signer, max(1, sign_heads_every))
        self._lock = threading.RLock()
        self._participants: dict[str, Participant] = {}
        self._nonces: dict[tuple[str, str], dt.datetime] = {}
        self._nonce_inserts = 0
        self._studies: dict[str, StudyRecord] = {}
        self._grants: dict[str, Grant] = {}
        self._opt_outs: dict[tuple[str, str], _Entry] = {}
        self._consents: list[_Entry] = []
        self._accounts: dict[AccountKey, SimpleNamespace] = {}
        self._account_ids: dict[int, SimpleNamespace] = {}
        self._reservations: dict[str, SimpleNamespace] = {}
        self._requests: dict[tuple[str, str], str] = {}
        self._ledger = Ledger(full=True)
        self._events: list[AuditEvent] = []
        self._heads: dict[int, str] = {}

    # -- the chain -------------------------------------------------------------------------------------
    def _tip(self) -> Tip:
        return Tip(self._events[-1].seq, self._events[-1].hash) if self._events else Tip(0, GENESIS)

    def _extend(self, pending: list[PendingEvent]) -> Extended:
        extended = link(self._tip(), pending, self.heads)
        self._events.extend(extended.events)
        if extended.head_jws is not None:
            self._heads[extended.events[-1].seq] = extended.head_jws
        return extended

    def _append(self, events: list[PendingEvent]) -> int:
        """One event at a time, as a single change of the SQL store links them."""
        for event in events:
            self._extend([event])
        return self._events[-1].seq

    # -- participants ----------------------------------------------------------------------------------
    def register_participant(self, participant: Participant, *, actor: str) -> bool:
        with self._lock:
            if self._participants.get(participant.kid) == participant:
                return False
            self._participants[participant.kid] = participant
            self._append([changes.participant_registered(participant, actor)])
            return True

    def participant(self, kid: str) -> Participant | None:
        with self._lock:
            return self._participants.get(kid)

    def remove_participant(self, kid: str, *, actor: str) -> bool:
        with self._lock:
            removed = self._participants.pop(kid, None)
            if removed is None:
                return False
            self._append([changes.participant_removed(kid, removed.role.value, removed.site, actor)])
            return True

    def participants(self) -> list[Participant]:
        with self._lock:
            return sorted(self._participants.values(), key=lambda p: p.kid)

    async def remember_nonce(self, kid: str, nonce: str, expires_at: dt.datetime) -> bool:
        with self._lock:
            if (kid, nonce) in self._nonces:
                return False
            self._nonces[kid, nonce] = expires_at
            self._nonce_inserts += 1
            if self._nonce_inserts >= NONCE_SWEEP_EVERY:
                self._nonce_inserts, now = 0, changes.now()
                self._nonces = {key: until for key, until in self._nonces.items() if until >= now}
            return True

    # -- studies ---------------------------------------------------------------------------------------
    def record_study(self, study: StudyRecord, *, actor: str) -> None:
        with self._lock:
            if study.study_id in self._studies:
                raise changes.study_exists(study.study_id)
            self._studies[study.study_id] = dataclasses.replace(study, revoked_at=None, revoke_reason=None)
            self._append(changes.study_recorded(study, actor, self.broker_kid))

    def study(self, study_id: str) -> StudyRecord | None:
        with self._lock:
            return self._studies.get(study_id)

    def _grant_state(self, study_id: str) -> tuple[str, str | None] | None:
        study = self._studies.get(study_id)
        if study is None:
            return None
        return study.status, None if study.grant is None else changes.dumps(study.grant)

    def _grant(self, study_id: str) -> Grant | None:
        grant = self._grants.get(study_id)
        study = self._studies.get(study_id)
        if grant is None and study is not None and study.grant is not None:
            grant = self._grants[study_id] = Grant.from_claims(study.grant, kid=self.broker_kid)
        return grant

    async def grant_state(self, study_id: str) -> tuple[str, str | None] | None:
        with self._lock:
            return self._grant_state(study_id)

    def revoke_study(self, study_id: str, *, actor: str, reason: str) -> StudyRecord:
        with self._lock:
            study = self._studies.get(study_id)
            if study is None:
                raise changes.study_unknown(study_id)
            event = changes.revocation(study_id, study.status, actor, reason)
            if event is not None:
                study = dataclasses.replace(
                    study, status="revoked", revoked_at=changes.now(), revoke_reason=reason
                )
                self._studies[study_id] = study
                self._append([event])
            return study

    def record_node_report(self, study_id: str, site: str, report: dict[str, Any], *, actor: str) -> int:
        with self._lock:
            if study_id not in self._studies:
                raise changes.study_unknown(study_id)
            return self._append([changes.node_report(study_id, site, report, actor)])

    # -- registries ------------------------------------------------------------------------------------
    def add_opt_out(self, pseudonym: str, purpose: str | None, *, site: str, actor: str) -> int:
        purpose_key = purpose or changes.ALL_PURPOSES
        with self._lock:
            known = self._opt_outs.get((pseudonym, purpose_key))
            if known is not None:
                return known.seq
            entry = _Entry(len(self._opt_outs) + 1, pseudonym, purpose_key, site, changes.now())
            self._opt_outs[pseudonym, purpose_key] = entry
            self._append([changes.opt_out_added(entry.seq, pseudonym, purpose_key, site, actor)])
            return entry.seq

    def opt_outs(self, since: int, limit: int) -> ListPage:
        with self._lock:
            entries = list(self._opt_outs.values())  # in insertion order, which is seq order
        return _page(
            entries, since, limit, lambda e: changes.opt_out_item(e.seq, e.pseudonym, e.purpose, e.site, e.at)
        )

    def record_consent(self, pseudonym: str, purpose: str, action: str, *, site: str, actor: str) -> int:
        changes.check_consent_action(action)
        with self._lock:
            entry = _Entry(len(self._consents) + 1, pseudonym, purpose, site, changes.now(), action)
            self._consents.append(entry)
            self._append([changes.consent_recorded(entry.seq, pseudonym, purpose, action, site, actor)])
            return entry.seq

    def consents(self, since: int, limit: int, purpose: str | None = None) -> ListPage:
        with self._lock:
            entries = [e for e in self._consents if purpose is None or e.purpose == purpose]
        return _page(
            entries,
            since,
            limit,
            lambda e: changes.consent_item(e.seq, e.pseudonym, e.purpose, str(e.action), e.site, e.at),
        )

    # -- ledger ----------------------------------------------------------------------------------------
    def _ledger_operation(self, operation: Callable[[_Book], ReservationRecord]) -> ReservationRecord:
        """Run one ledger operation as a transaction; a refusal (raised before any write) links nothing."""
        with self._lock:
            book = _Book(self)
            record = operation(book)
            extended = self._extend(book.pending)
            head_jws = extended.head_jws
            if extended.events and head_jws is None and self.heads.sign is not None:
                head_jws = self.heads.sign(extended.events[-1])  # for the receipt only (not kept as a head)
            return ledger_flow.with_receipt(record, extended.events, head_jws)

    async def reserve(self, request: ReserveRequest) -> ReservationRecord:
        return self._ledger_operation(lambda book: ledger_flow.reserve(book, self.accountant, request))

    async def commit(
        self, reservation_id: str, mechanism: dict[str, Any], *, site: str, actor: str
    ) -> ReservationRecord:
        return self._ledger_operation(
            lambda book: ledger_flow.commit(book, self.accountant, reservation_id, mechanism, site, actor)
        )

    async def release(self, reservation_id: str, *, site: str, actor: str) -> ReservationRecord:
        return self._ledger_operation(
            lambda book: ledger_flow.release(book, self.accountant, reservation_id, site, actor)
        )

    def _charged(self, account: AccountKey, counts: Callable[[str | None], bool]) -> Counter[str]:
        """The account's charge from the reservations of the studies ``counts`` accepts."""
        charged: Counter[str] = Counter()
        for reservation in self._ledger.reservations.values():
            if (
                reservation.account == account
                and reservation.state in CHARGED_STATES
                and counts(reservation.study_id)
            ):
                charged[reservation.mechanism] += 1
        return charged

    def balance(self, site: str, dataset: str, period: str, delta: float) -> AccountBalance:
        with self._lock:
            counts = Counter(self._ledger.charged(AccountKey(site, dataset, period)))
        history = ledger_flow.history(counts)
        epsilon = self.accountant.epsilon(history, delta) if history else 0.0
        return AccountBalance(site, dataset, period, epsilon, sum(counts.values()), history)

    def held_epsilon(self, site: str, dataset: str, period: str, delta: float, now: dt.datetime) -> float:
        with self._lock:
            grants = [
                LiveGrant(s.study_id, s.grant.get("epsilon", {}), s.expires_at)
                for s in self._studies.values()
                if s.status == "granted" and s.dataset == dataset and s.grant is not None
            ]
            holds = grant_holds(grants, site, now)
            counts = self._charged(AccountKey(site, dataset, period), lambda study: study not in holds)
        history = ledger_flow.history(counts)
        spent = self.accountant.epsilon(history, delta) if history else 0.0
        return spent + sum(holds.values())  # summing is conservative, as the SQL store's

    # -- audit -----------------------------------------------------------------------------------------
    def audit_events(self) -> Iterator[AuditEvent]:
        with self._lock:
            events = list(self._events)
        yield from events

    def audit_heads(self) -> list[str]:
        with self._lock:
            return [self._heads[seq] for seq in sorted(self._heads)]

    def sign_current_head(self) -> str | None:
        with self._lock:
            if self.heads.sign is None or not self._events:
                return None
            last = self._events[-1]
            if last.seq not in self._heads:
                self._heads[last.seq] = self.heads.sign(last)
            return self._heads[last.seq]


def _page(
    entries: list[_Entry], since: int, limit: int, item: Callable[[_Entry], dict[str, Any]]
) -> ListPage:
    """The entries after ``since`` (in seq order), at most ``limit``, and the cursor to pass next."""
    chosen = [entry for entry in entries if entry.seq > since][:limit]
    return ListPage(items=[item(entry) for entry in chosen], cursor=chosen[-1].seq if chosen else since)
