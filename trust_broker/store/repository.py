"""The broker's store, as one small interface per concept; ``BrokerStore`` is all of them.

- ``ParticipantStore``: who may sign requests, and the nonces that stop a signed request's replay;
- ``StudyStore``: studies, their grants and revocations, and the nodes' reports under them;
- ``RegistryStore``: opt-outs and consents (linkage pseudonyms only);
- ``LedgerStore``: privacy-budget accounts and their reservations (reserve, commit, release);
- ``AuditLog``: the hash chain every change above is recorded in, and the broker's signed heads.

Implementations: ``sql.SqlBrokerStore`` (SQLite, PostgreSQL) and ``memory.InMemoryBrokerStore``;
``factory.open_store`` picks one from a URL. Every method that changes state appends its audit event
in the same transaction, so the chain records exactly the changes that happened. The ledger's rules
are ``trust_broker.ledger``'s (``decisions``, ``state``): a store persists and locks, it does not
decide. The contract every implementation keeps is ``tests/trust_broker/store``.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

from trust_broker.audit.chain import AuditEvent
from trust_broker.store.records import (
    AccountBalance,
    ListPage,
    Participant,
    ReservationRecord,
    ReserveRequest,
    StudyRecord,
)


class ParticipantStore(ABC):
    """The registry of participants' keys, and replay protection for their signatures."""

    @abstractmethod
    def register_participant(self, participant: Participant, *, actor: str) -> bool:
        """Add or update a participant; True when something changed (and was audited)."""

    @abstractmethod
    def participant(self, kid: str) -> Participant | None: ...

    @abstractmethod
    def remove_participant(self, kid: str, *, actor: str) -> bool:
        """Take a key out of the registry (audited, ``participant.removed``); False if unknown."""

    @abstractmethod
    def participants(self) -> list[Participant]: ...

    @abstractmethod
    async def remember_nonce(self, kid: str, nonce: str, expires_at: dt.datetime) -> bool:
        """Record a signature nonce; False when it was already seen (a replay)."""


class StudyStore(ABC):
    """Studies as decided, their grants, revocations, and the per-site reports made under them."""

    @abstractmethod
    def record_study(self, study: StudyRecord, *, actor: str) -> None:
        """Keep a decided study (``study.exists`` if its id is taken): requested, decided, granted."""

    @abstractmethod
    def study(self, study_id: str) -> StudyRecord | None: ...

    @abstractmethod
    async def grant_state(self, study_id: str) -> tuple[str, str | None] | None:
        """(status, grant claims JSON) of a study, or None when unknown."""

    @abstractmethod
    def revoke_study(self, study_id: str, *, actor: str, reason: str) -> StudyRecord:
        """Revoke a study's grant (idempotent); ``study.unknown``, or ``study.refused`` for no grant."""

    @abstractmethod
    def record_node_report(self, study_id: str, site: str, report: dict[str, Any], *, actor: str) -> int:
        """Append a node's per-site counters to the audit chain; return the event's sequence number."""


class RegistryStore(ABC):
    """Opt-outs and consents, readable by nodes in pages after a cursor."""

    @abstractmethod
    def add_opt_out(self, pseudonym: str, purpose: str | None, *, site: str, actor: str) -> int:
        """Record an opt-out (None: every purpose); its sequence number, the earlier one if known."""

    @abstractmethod
    def opt_outs(self, since: int, limit: int) -> ListPage: ...

    @abstractmethod
    def record_consent(self, pseudonym: str, purpose: str, action: str, *, site: str, actor: str) -> int:
        """Append consent ``given`` or ``withdrawn``; its sequence number."""

    @abstractmethod
    def consents(self, since: int, limit: int, purpose: str | None = None) -> ListPage: ...


class LedgerStore(ABC):
    """The privacy-budget ledger's accounts and reservations."""

    @abstractmethod
    async def reserve(self, request: ReserveRequest) -> ReservationRecord:
        """Atomic and idempotent on (requester, request_id); a refusal is stored and answered again."""

    @abstractmethod
    async def commit(
        self, reservation_id: str, mechanism: dict[str, Any], *, site: str, actor: str
    ) -> ReservationRecord:
        """Record the parameters actually used; refused when they cost more than the reservation."""

    @abstractmethod
    async def release(self, reservation_id: str, *, site: str, actor: str) -> ReservationRecord:
        """Give a live reservation back; an expired one stays charged."""

    @abstractmethod
    def balance(self, site: str, dataset: str, period: str, delta: float) -> AccountBalance: ...

    @abstractmethod
    def held_epsilon(self, site: str, dataset: str, period: str, delta: float, now: dt.datetime) -> float:
        """ε a new grant cannot take on an account: what studies no longer live spent, plus the whole
        per-site ε of every live grant (a grant holds its budget from issue: red-team finding 5)."""


class AuditLog(ABC):
    """The audit chain of every change, and the heads the broker signed over it."""

    @abstractmethod
    def audit_events(self) -> Iterator[AuditEvent]:
        """Every audit event in chain order."""

    @abstractmethod
    def audit_heads(self) -> list[str]:
        """Broker-signed heads (compact JWS) in chain order."""

    @abstractmethod
    def sign_current_head(self) -> str | None:
        """Sign the chain's current last event (e.g. before an export)."""


class BrokerStore(ParticipantStore, StudyStore, RegistryStore, LedgerStore, AuditLog):
    """The broker's whole state. The request hot path (nonces, grant checks, reserve, commit, release)
    is ``async``: the service awaits it on its event loop instead of parking a thread per request."""

    #: What the store keeps its state in (``sqlite``, ``postgresql``, ``memory``), as /v1/health says.
    database_name: str = "unknown"

    def close(self) -> None:  # noqa: B027 - a store without background work has nothing to stop
        """Stop background work (the ledger's writer threads) once queued operations are done."""
