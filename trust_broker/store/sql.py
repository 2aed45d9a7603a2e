"""``BrokerStore`` on SQLAlchemy 2: every change commits together with its audit event.

The ledger's hot path (signature nonces, reserve, commit, release) runs on the store's
``GroupCommitWriter``: the chain's tip first, then the accounts and reservations, in transactions
shared by whatever requests are waiting. Rarer changes (participants, studies, opt-outs, consents,
node reports) keep one short transaction each: their own rows first, then the tip. No row is
locked in both orders, so there is no deadlock; SQLite's ``BEGIN IMMEDIATE`` serializes all writers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from trust_broker.accounting import LedgerAccountant
from trust_broker.audit.chain import EVENT_KINDS, GENESIS
from trust_broker.audit.receipts import make_receipt
from trust_broker.grants import Grant
from trust_broker.ledger.account import AccountKey, LedgerError
from trust_broker.ledger.analysis import REPEAT_FIELD
from trust_broker.ledger.state import BUDGET_EVENTS, Ledger, LedgerEvent, next_state, spelling
from trust_broker.roles import Role
from trust_broker.store import chain_io
from trust_broker.store.chain_io import HeadSigning, PendingEvent
from trust_broker.store.group_commit import Group, GroupCommitWriter
from trust_broker.store.models import (
    AuditEventRow,
    AuditHeadRow,
    AuditTipRow,
    BudgetAccountRow,
    ConsentRow,
    NonceRow,
    OptOutRow,
    ParticipantRow,
    ReservationRow,
    StudyRow,
)
from trust_broker.store.records import (
    AccountBalance,
    ListPage,
    NotFound,
    Participant,
    ReservationRecord,
    ReserveRequest,
    StoreError,
    StudyRecord,
    granted_claims,
)
from trust_broker.store.repository import BrokerStore

ALL_PURPOSES = "*"
NONCE_SWEEP_EVERY = 500
PARTICIPANT_CACHE_SECONDS = 1.0  # another broker process's key change is seen within this
MAX_PARTICIPANT_CACHE = 1024  # known participants only: an unknown key id is never cached

# The ledger's hot path, built once on the tables: no ORM bookkeeping and no per-call statement
# building (SQLAlchemy then reuses the compiled form; the values travel as bound parameters).
_ACCOUNTS, _RESERVATIONS = BudgetAccountRow.__table__, ReservationRow.__table__
_LOCK_ACCOUNT = (
    select(_ACCOUNTS)
    .where(
        _ACCOUNTS.c.site == bindparam("site"),
        _ACCOUNTS.c.dataset == bindparam("dataset"),
        _ACCOUNTS.c.period == bindparam("period"),
    )
    .with_for_update()
)
_PREVIOUS_RESERVATION = select(_RESERVATIONS).where(
    _RESERVATIONS.c.requester == bindparam("requester"),
    _RESERVATIONS.c.request_id == bindparam("request_id"),
)
_CHARGED = func.coalesce(_RESERVATIONS.c.committed_mechanism_json, _RESERVATIONS.c.mechanism_json)
_SPENT = (
    select(_CHARGED, func.count())
    .where(
        _RESERVATIONS.c.account_id == bindparam("account_id"),
        _RESERVATIONS.c.status.in_(("reserved", "committed")),
    )
    .group_by(_CHARGED)
)
_STUDY_SPENT = _SPENT.where(_RESERVATIONS.c.study_id == bindparam("study_id"))
# A reservation with its account's key, in one round trip, when the writer's memo does not hold it. The
# row locks are a second line of defence: every ledger group already holds the chain's tip.
_LOCK_RESERVATION = (
    select(_RESERVATIONS, _ACCOUNTS.c.site, _ACCOUNTS.c.dataset, _ACCOUNTS.c.period)
    .select_from(_ACCOUNTS.join(_RESERVATIONS, _RESERVATIONS.c.account_id == _ACCOUNTS.c.id))
    .where(_RESERVATIONS.c.id == bindparam("reservation_id"))
    .with_for_update(of=(_ACCOUNTS, _RESERVATIONS))
)
_STUDIES = StudyRow.__table__
_GRANT_STATE = select(_STUDIES.c.status, _STUDIES.c.grant_json).where(
    _STUDIES.c.study_id == bindparam("study_id")
)
_EVENTS = AuditEventRow.__table__
_EVENTS_SINCE = (
    select(_EVENTS.c.seq, _EVENTS.c.kind, _EVENTS.c.payload_json, _EVENTS.c.prev_hash, _EVENTS.c.hash)
    .where(_EVENTS.c.seq > bindparam("seq"))
    .order_by(_EVENTS.c.seq)
)
CATCH_UP_EVENTS = 1000  # beyond, reading the accounts again is cheaper than following the events
_NONCES = NonceRow.__table__
_SWEEP_NONCES = delete(_NONCES).where(_NONCES.c.expires_at < bindparam("now"))
# The SET clause comes from the parameters given with each call (any columns but ``id``).
_UPDATE_RESERVATION = update(_RESERVATIONS).where(_RESERVATIONS.c.id == bindparam("reservation_id"))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes; everything in the broker is UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _digest(pseudonym: str) -> str:
    """What the chain records of a pseudonym: its digest, never the pseudonym itself."""
    return "sha256:" + hashlib.sha256(pseudonym.encode("utf-8")).hexdigest()


def _dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _key(account: Any) -> AccountKey:
    return AccountKey(account.site, account.dataset, account.period)


def _ledger(memo: dict[Any, Any]) -> Ledger:
    """The writer's partial ledger (the accounts it has read), kept in its memo."""
    ledger = memo.get("ledger")
    if ledger is None:
        ledger = memo["ledger"] = Ledger(full=False)
    return ledger  # type: ignore[no-any-return]


def _state(status: str, kind: str, where: str, *, same_mechanism: bool = False) -> bool:
    """The ledger's transition table on a row's status: True to go on, False when the request is a
    repeat of what was done already; a refused transition is a ``budget.not_reserved`` refusal."""
    try:
        return next_state(status, kind, same_mechanism=same_mechanism, where=where) is not None
    except LedgerError as exc:
        raise StoreError("budget.not_reserved", str(exc)) from exc


class SqlBrokerStore(BrokerStore):
    """The broker's state in SQLite or PostgreSQL.

    ``head_signer`` signs the chain's last event at the end of every transaction that changed
    something (cost measured in ``benchmarks/broker``); with ``sign_heads_every=N``, only of those
    that pass a multiple of N events.
    """

    def __init__(
        self,
        engine: Engine,
        accountant: LedgerAccountant,
        head_signer: Callable[[Any], str] | None = None,
        *,
        sign_heads_every: int = 1,
        broker_kid: str = "broker",
    ) -> None:
        self.broker_kid = broker_kid
        self.engine = engine
        self.accountant = accountant
        self._dialect = engine.dialect.name
        self._dialect_insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        self.heads = HeadSigning(head_signer, max(1, sign_heads_every))
        self._writer = GroupCommitWriter(engine, self.heads, catch_up=self._catch_up)
        # Nonces touch no ledger row and no chain: on PostgreSQL their own writer keeps them out of the
        # ledger's groups; SQLite has a single write lock, so they share the ledger's writer there.
        self._nonce_writer = (
            GroupCommitWriter(engine, None, name="nonce") if self._dialect == "postgresql" else self._writer
        )
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # Reads need no write lock: on SQLite they begin DEFERRED and run beside the writer (WAL).
        self._read_engine = engine.execution_options(r2dde_read_only=True)
        self._nonce_inserts = 0
        self._participant_cache: dict[str, tuple[float, Participant | None]] = {}
        # Built once: every signed request runs it (values bound per call; many rows, one statement).
        self._remember_nonces = (
            self._dialect_insert(_NONCES).on_conflict_do_nothing().returning(_NONCES.c.kid, _NONCES.c.nonce)
        )
        self._insert_reservation = (
            self._dialect_insert(_RESERVATIONS)
            .on_conflict_do_nothing(index_elements=["requester", "request_id"])
            .returning(_RESERVATIONS.c.id)
        )
        with self._sessions.begin() as session:  # the chain's tip row exists before any append
            session.execute(
                self._insert_ignore(AuditTipRow, {"id": chain_io.TIP_ID, "seq": 0, "hash": GENESIS})
            )

    # -- helpers -------------------------------------------------------------------------------
    def _append(self, connection: Connection, kind: str, actor: str, payload: dict[str, Any]) -> int:
        return int(chain_io.append(connection, PendingEvent(kind, actor, payload), self.heads).seq)

    def close(self) -> None:
        self._writer.close()
        self._nonce_writer.close()

    def _insert_ignore(self, model: type, values: dict[str, Any]):  # noqa: ANN202 - dialect statement
        return self._dialect_insert(model).values(**values).on_conflict_do_nothing()

    # -- participants --------------------------------------------------------------------------
    def register_participant(self, participant: Participant, *, actor: str) -> bool:
        with self._sessions.begin() as session:
            row = session.get(ParticipantRow, participant.kid)
            if row is not None and (row.role, row.site, row.public_key) == (
                participant.role.value,
                participant.site,
                participant.public_key,
            ):
                return False
            if row is None:
                row = ParticipantRow(kid=participant.kid, registered_at=_now())
                session.add(row)
            row.role, row.site, row.public_key = (
                participant.role.value,
                participant.site,
                participant.public_key,
            )
            session.flush()
            self._append(
                session.connection(),
                "participant.registered",
                actor,
                {
                    "kid": participant.kid,
                    "role": participant.role.value,
                    "site": participant.site,
                    "public_key": participant.public_key,
                },
            )
        self._participant_cache.clear()  # a rotated key stops working here at once
        return True

    @staticmethod
    def _participant(row: ParticipantRow) -> Participant:
        return Participant(kid=row.kid, role=Role(row.role), site=row.site, public_key=row.public_key)

    def participant(self, kid: str) -> Participant | None:
        """Looked up on every request, so served from a cache refreshed every second; a change made by
        this process empties it at once. Unknown key ids are not cached (any request may name one:
        caching them cost ≈ 15 MiB per 2 000 unsigned requests), and the cache is bounded."""
        now = time.monotonic()
        cached = self._participant_cache.get(kid)
        if cached is not None and now - cached[0] < PARTICIPANT_CACHE_SECONDS:
            return cached[1]
        with Session(self._read_engine) as session:
            row = session.get(ParticipantRow, kid)
            participant = None if row is None else self._participant(row)
        if participant is None:
            self._participant_cache.pop(kid, None)
            return None
        if len(self._participant_cache) >= MAX_PARTICIPANT_CACHE:
            self._participant_cache.clear()
        self._participant_cache[kid] = (now, participant)
        return participant

    def remove_participant(self, kid: str, *, actor: str) -> bool:
        """Take a participant's key out of the registry (audited); False if it was not registered."""
        with self._sessions.begin() as session:
            row = session.get(ParticipantRow, kid, with_for_update=True)
            if row is None:
                return False
            role, site = row.role, row.site
            session.delete(row)
            session.flush()
            self._append(
                session.connection(), "participant.removed", actor, {"kid": kid, "role": role, "site": site}
            )
        self._participant_cache.clear()
        return True

    def participants(self) -> list[Participant]:
        with Session(self._read_engine) as session:
            rows = session.scalars(select(ParticipantRow).order_by(ParticipantRow.kid)).all()
            return [self._participant(r) for r in rows]

    async def remember_nonce(self, kid: str, nonce: str, expires_at: dt.datetime) -> bool:
        """Every signed request comes through here: the writer's next group inserts all waiting nonces
        in one statement."""
        item = {"kid": kid, "nonce": nonce, "expires_at": expires_at}
        return await self._nonce_writer.run_batched(self._insert_nonces, item)  # type: ignore[no-any-return]

    def _insert_nonces(self, connection: Connection, nonces: list[dict[str, Any]]) -> list[bool]:
        """True for each nonce seen for the first time (of a nonce sent twice in one batch, the first)."""
        fresh = {(str(kid), str(nonce)) for kid, nonce in connection.execute(self._remember_nonces, nonces)}
        seen: list[bool] = []
        for item in nonces:
            key = (item["kid"], item["nonce"])
            seen.append(key in fresh)
            fresh.discard(key)
        self._nonce_inserts += len(nonces)
        if self._nonce_inserts >= NONCE_SWEEP_EVERY:
            self._nonce_inserts = 0
            connection.execute(_SWEEP_NONCES, {"now": _now()})
        return seen

    # -- studies -------------------------------------------------------------------------------
    @staticmethod
    def _study(row: StudyRow) -> StudyRecord:
        return StudyRecord(
            study_id=row.study_id,
            status=row.status,
            purpose=row.purpose,
            dataset=row.dataset,
            requested_by=row.requested_by,
            request=json.loads(row.request_json),
            decision=json.loads(row.decision_json),
            grant_jws=row.grant_jws,
            grant=json.loads(row.grant_json) if row.grant_json else None,
            created_at=_aware(row.created_at),  # type: ignore[arg-type]
            expires_at=_aware(row.expires_at),
            revoked_at=_aware(row.revoked_at),
            revoke_reason=row.revoke_reason,
        )

    def record_study(self, study: StudyRecord, *, actor: str) -> None:
        with self._sessions.begin() as session:
            if session.get(StudyRow, study.study_id) is not None:
                raise StoreError("study.exists", f"study {study.study_id} already exists")
            session.add(
                StudyRow(
                    study_id=study.study_id,
                    status=study.status,
                    purpose=study.purpose,
                    dataset=study.dataset,
                    requested_by=study.requested_by,
                    request_json=_dumps(study.request),
                    decision_json=_dumps(study.decision),
                    grant_jws=study.grant_jws,
                    grant_json=_dumps(study.grant) if study.grant is not None else None,
                    created_at=study.created_at,
                    expires_at=study.expires_at,
                )
            )
            try:
                session.flush()
            except IntegrityError as exc:
                raise StoreError("study.exists", f"study {study.study_id} already exists") from exc
            self._append(session.connection(), "study.requested", actor, dict(study.request))
            self._append(
                session.connection(), "study.decided", actor, {"study_id": study.study_id, **study.decision}
            )
            if study.grant_jws is not None:
                self._append(
                    session.connection(),
                    "grant.issued",
                    actor,
                    {
                        "study_id": study.study_id,
                        "grant": study.grant_jws,
                        "kid": self.broker_kid,
                        "claims": study.grant,
                    },
                )

    def study(self, study_id: str) -> StudyRecord | None:
        with Session(self._read_engine) as session:
            row = session.get(StudyRow, study_id)
            return None if row is None else self._study(row)

    def revoke_study(self, study_id: str, *, actor: str, reason: str) -> StudyRecord:
        with self._sessions.begin() as session:
            row = session.get(StudyRow, study_id, with_for_update=True)
            if row is None:
                raise NotFound("study.unknown", f"no study {study_id}")
            if row.status == "refused":
                raise StoreError(
                    "study.refused", f"study {study_id} was refused; there is no grant to revoke"
                )
            if row.status != "revoked":
                row.status, row.revoked_at, row.revoke_reason = "revoked", _now(), reason
                session.flush()
                self._append(
                    session.connection(), "grant.revoked", actor, {"study_id": study_id, "reason": reason}
                )
            return self._study(row)

    async def grant_state(self, study_id: str) -> tuple[str, str | None] | None:
        """(status, grant claims as JSON text) of a study: what every reserve checks, and nothing more.

        A one-statement read, run by the writer so the event loop awaits it instead of blocking.
        """

        def read(connection: Connection, _group: Group) -> tuple[str, str | None] | None:
            row = connection.execute(_GRANT_STATE, {"study_id": study_id}).one_or_none()
            return None if row is None else (str(row[0]), row[1])

        return await self._writer.run(read)

    def record_node_report(self, study_id: str, site: str, report: dict[str, Any], *, actor: str) -> int:
        with self._sessions.begin() as session:
            if session.get(StudyRow, study_id) is None:
                raise NotFound("study.unknown", f"no study {study_id}")
            return self._append(
                session.connection(), "node.report", actor, {"study_id": study_id, "site": site, **report}
            )

    # -- registries ----------------------------------------------------------------------------
    def add_opt_out(self, pseudonym: str, purpose: str | None, *, site: str, actor: str) -> int:
        purpose_key = purpose or ALL_PURPOSES
        with self._sessions.begin() as session:
            existing = session.scalar(
                select(OptOutRow.seq).where(
                    OptOutRow.linkage_pseudonym == pseudonym, OptOutRow.purpose == purpose_key
                )
            )
            if existing is not None:
                return int(existing)
            row = OptOutRow(linkage_pseudonym=pseudonym, purpose=purpose_key, site=site, created_at=_now())
            session.add(row)
            session.flush()
            self._append(
                session.connection(),
                "optout.added",
                actor,
                {
                    "seq": row.seq,
                    "count": 1,
                    "digest": _digest(pseudonym),
                    "purpose": purpose_key,
                    "site": site,
                },
            )
            return int(row.seq)

    def opt_outs(self, since: int, limit: int) -> ListPage:
        with Session(self._read_engine) as session:
            rows = session.scalars(
                select(OptOutRow).where(OptOutRow.seq > since).order_by(OptOutRow.seq).limit(limit)
            ).all()
            items = [
                {
                    "seq": r.seq,
                    "linkage_pseudonym": r.linkage_pseudonym,
                    "purpose": None if r.purpose == ALL_PURPOSES else r.purpose,
                    "site": r.site,
                    "at": _aware(r.created_at).isoformat(),  # type: ignore[union-attr]
                }
                for r in rows
            ]
            return ListPage(items=items, cursor=rows[-1].seq if rows else since)

    def record_consent(self, pseudonym: str, purpose: str, action: str, *, site: str, actor: str) -> int:
        if action not in {"given", "withdrawn"}:
            raise StoreError(
                "consent.action", f"consent action must be given or withdrawn, not {action!r}", status=422
            )
        if f"consent.{action}" not in EVENT_KINDS:
            raise StoreError(
                "consent.unavailable", "this broker's audit chain cannot record consents yet", status=503
            )
        with self._sessions.begin() as session:
            row = ConsentRow(
                linkage_pseudonym=pseudonym, purpose=purpose, action=action, site=site, created_at=_now()
            )
            session.add(row)
            session.flush()
            self._append(
                session.connection(),
                f"consent.{action}",
                actor,
                {"seq": row.seq, "count": 1, "digest": _digest(pseudonym), "purpose": purpose, "site": site},
            )
            return int(row.seq)

    def consents(self, since: int, limit: int, purpose: str | None = None) -> ListPage:
        with Session(self._read_engine) as session:
            stmt = select(ConsentRow).where(ConsentRow.seq > since)
            if purpose is not None:
                stmt = stmt.where(ConsentRow.purpose == purpose)
            rows = session.scalars(stmt.order_by(ConsentRow.seq).limit(limit)).all()
            items = [
                {
                    "seq": r.seq,
                    "linkage_pseudonym": r.linkage_pseudonym,
                    "purpose": r.purpose,
                    "action": r.action,
                    "site": r.site,
                    "at": _aware(r.created_at).isoformat(),  # type: ignore[union-attr]
                }
                for r in rows
            ]
            return ListPage(items=items, cursor=rows[-1].seq if rows else since)

    # -- ledger --------------------------------------------------------------------------------
    def _account(self, connection: Connection, group: Group, site: str, dataset: str, period: str) -> Any:
        """The account row (created on first use), read and locked when the memo lacks it; an account row
        never changes, so the memo's copy stays true.

        The ledger's hot path uses Core statements and plain rows: no ORM bookkeeping per request.
        """
        key = ("account", site, dataset, period)
        account = group.memo.get(key)
        if account is None:
            where = {"site": site, "dataset": dataset, "period": period}
            account = connection.execute(_LOCK_ACCOUNT, where).one_or_none()
            if account is None:
                connection.execute(self._insert_ignore(BudgetAccountRow, {**where, "created_at": _now()}))
                account = connection.execute(_LOCK_ACCOUNT, where).one()
            group.memo[key] = account
        return account

    @staticmethod
    def _spent_counts(connection: Connection, account_id: int, study_id: str | None = None) -> Counter[str]:
        """Mechanisms counted as spent (committed with their actual parameters, live and expired
        reservations), as {mechanism's spelling: how many}: identical mechanisms are grouped in SQL."""
        if study_id is None:
            rows = connection.execute(_SPENT, {"account_id": account_id})
        else:
            rows = connection.execute(_STUDY_SPENT, {"account_id": account_id, "study_id": study_id})
        counts: Counter[str] = Counter()
        for raw, count in rows:
            counts[spelling(str(raw))] += int(count)
        return counts

    def _spending(self, connection: Connection, group: Group, account: Any) -> Counter[str]:
        """The account's spent counts, read when the memo lacks them; the ledger's operations (and
        ``_catch_up``) keep them current. Keyed as events name accounts: (site, dataset, period)."""
        ledger = _ledger(group.memo)
        key = _key(account)
        counts = ledger.accounts.get(key)
        if counts is None:
            counts = ledger.load(key, self._spent_counts(connection, account.id))
        return counts

    @staticmethod
    def _catch_up(
        connection: Connection, memo: dict[Any, Any], since: chain_io.Tip, tip: chain_io.Tip
    ) -> bool:
        """Apply to the memo the events appended after ``since`` up to ``tip`` (another broker process's
        reserves and commits, a revocation, registry changes), instead of reading every account again.
        False, and the memo is emptied, for anything it cannot follow exactly."""
        if not 0 < tip.seq - since.seq <= CATCH_UP_EVENTS:
            return False
        rows = connection.execute(_EVENTS_SINCE, {"seq": since.seq}).all()
        if len(rows) != tip.seq - since.seq:
            return False
        if (rows[0].prev_hash, rows[-1].seq, rows[-1].hash) != (since.hash, tip.seq, tip.hash):
            return False  # not the chain the memo was made from
        ledger = memo.get("ledger")
        for row in rows:
            if row.kind not in EVENT_KINDS:
                return False
            if row.kind == "grant.revoked":
                memo.pop(("granted", json.loads(row.payload_json)["study_id"]), None)
                continue
            if row.kind not in BUDGET_EVENTS:
                continue  # registries, reports, refusals: no account changes
            payload = json.loads(row.payload_json)
            event = LedgerEvent.from_payload(row.kind, payload)
            if row.kind in ("budget.committed", "budget.released"):
                live = memo.pop(("reservation", payload["reservation_id"]), None)
                if event.reserved_mechanism is None and live is not None:
                    event = event._replace(reserved_mechanism=spelling(live[0].mechanism_json))
            if ledger is not None and not ledger.apply(event).complete:
                return False
        return True

    @staticmethod
    def _history(counts: Counter[str]) -> list[dict[str, Any]]:
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

    @staticmethod
    def _reservation(row: Any, account: Any) -> ReservationRecord:
        """A record from a reservation and its account (ORM objects, Core rows or namespaces alike)."""
        return ReservationRecord(
            reservation_id=row.id,
            request_id=row.request_id,
            study_id=row.study_id,
            site=account.site,
            dataset=account.dataset,
            period=account.period,
            status=row.status,
            mechanism=json.loads(row.mechanism_json),
            committed_mechanism=json.loads(row.committed_mechanism_json)
            if row.committed_mechanism_json
            else None,
            examples=row.examples,
            epsilon_after=row.epsilon_after,
            cap=row.cap,
            created_at=_aware(row.created_at),  # type: ignore[arg-type]
            expires_at=_aware(row.expires_at),  # type: ignore[arg-type]
            refusal=json.loads(row.refusal_json) if row.refusal_json else None,
        )

    async def reserve(self, request: ReserveRequest) -> ReservationRecord:
        return await self._receipted(lambda connection, group: self._reserve(connection, group, request))

    async def _receipted(
        self, operation: Callable[[Connection, Group], ReservationRecord]
    ) -> ReservationRecord:
        """Run a ledger operation and attach the broker's receipt for the event it recorded (none for a
        repeat of a request already answered: that answer's receipt stands)."""
        linked = await self._writer.run_linked(operation)
        record: ReservationRecord = linked.value
        if not linked.events or linked.head_jws is None:
            return record
        return dataclasses.replace(record, receipt=make_receipt(linked.events[-1], linked.head_jws))

    def _reserve(self, connection: Connection, group: Group, request: ReserveRequest) -> ReservationRecord:
        # The grant's status as of this transaction (the service checked its immutable claims already):
        # read once, then kept by the memo, which a revocation's event updates, so one committed
        # before is always seen.
        if ("granted", request.study_id) not in group.memo:
            state = connection.execute(_GRANT_STATE, {"study_id": request.study_id}).one_or_none()
            claims = granted_claims(request.study_id, state)
            if ("grant", request.study_id) not in group.memo:  # parse the claims only when not kept
                group.memo["grant", request.study_id] = self._grant_of(claims)
            group.memo["granted", request.study_id] = True
        mechanism_json = _dumps(request.mechanism)
        account = self._account(connection, group, request.site, request.dataset, request.period)
        spent = self._spending(connection, group, account)
        new = spelling(mechanism_json)
        after = Counter(spent)
        after[new] += 1
        delta = self.accountant.charged_delta(after, request.delta)
        epsilon = self.accountant.charged_epsilon(after, delta)
        refusal: dict[str, Any] | None = None
        if epsilon > request.cap:
            refusal = {
                "rule": "budget.cap",
                "detail": (
                    f"composed ε {epsilon:.4f} of {request.site}/{request.dataset}/{request.period} "
                    f"would pass the cap {request.cap:.4f}"
                ),
                "limit": request.cap,
                "value": epsilon,
            }
        elif epsilon > request.study_cap:
            # The study's mechanisms are a subset of the account's, and RDP composition is monotone:
            # only when the whole account passes the study's cap can the study's own share pass it.
            study = self._spent_counts(connection, account.id, request.study_id)
            study[new] += 1
            study_eps = self.accountant.charged_epsilon(study, delta)
            if study_eps > request.study_cap:
                refusal = {
                    "rule": "budget.study_cap",
                    "detail": (
                        f"study {request.study_id} would spend ε {study_eps:.4f} at {request.site}, "
                        f"above its grant's cap {request.study_cap:.4f}"
                    ),
                    "limit": request.study_cap,
                    "value": study_eps,
                }
        now = _now()
        row = SimpleNamespace(
            id=uuid.uuid4().hex,
            account_id=account.id,
            requester=request.requester,
            request_id=request.request_id,
            study_id=request.study_id,
            status="refused" if refusal else "reserved",
            mechanism_json=mechanism_json,
            examples=request.examples,
            epsilon_after=epsilon,
            cap=request.cap,
            delta=request.delta,
            refusal_json=_dumps(refusal) if refusal else None,
            created_at=now,
            expires_at=now + request.ttl,
            committed_mechanism_json=None,
            settled_at=None,
        )
        # The request id is claimed by the insert itself (no look-up first): a request id seen
        # before inserts nothing and the earlier reservation answers, or the reuse is refused.
        claimed = connection.execute(self._insert_reservation, vars(row)).scalar()
        if claimed is None:
            return self._replayed(connection, request, account, mechanism_json)
        payload = {
            "reservation_id": row.id,
            "request_id": request.request_id,
            "epsilon": epsilon,
            "study_id": request.study_id,
            "account": {"site": request.site, "dataset": request.dataset, "period": request.period},
            "mechanism": request.mechanism,
            "examples": request.examples,
            "cap": request.cap,
            "study_cap": request.study_cap,
            "delta": delta,
            "expires_at": row.expires_at.isoformat(),
        }
        if refusal:
            payload["refusal"] = refusal
        kind = "budget.refused" if refusal else "budget.reserved"
        group.events.append(PendingEvent(kind, request.requester, payload))
        if not refusal:
            _ledger(group.memo).apply(
                LedgerEvent(
                    "budget.reserved", _key(account), row.id, spelling(mechanism_json), request.study_id
                )
            )
            group.memo["reservation", row.id] = (row, account)  # for its commit or release
        return self._reservation(row, account)

    def _replayed(
        self, connection: Connection, request: ReserveRequest, account: Any, mechanism_json: str
    ) -> ReservationRecord:
        """The earlier reservation of a request id, if this request is the same one sent again."""
        where = {"requester": request.requester, "request_id": request.request_id}
        previous = connection.execute(_PREVIOUS_RESERVATION, where).one()
        same = (previous.study_id, previous.account_id, previous.mechanism_json, previous.examples) == (
            request.study_id,
            account.id,
            mechanism_json,
            request.examples,
        )
        if not same:
            raise StoreError(
                "budget.request_id_reused",
                f"request id {request.request_id} was already used for a different reservation",
            )
        if previous.status not in ("reserved", "refused"):
            # Answering with the settled reservation would tell a node its round is covered when it is
            # not: a request id is reserved once, and once settled it is spent.
            raise StoreError(
                "budget.request_settled",
                f"request id {request.request_id} was already {previous.status}; reserve with a new one",
            )
        return self._reservation(previous, account)

    def _reservation_and_account(
        self, connection: Connection, group: Group, reservation_id: str, site: str
    ) -> tuple[Any, Any]:
        """A reservation and its account: from the memo if this writer reserved it and nothing has
        changed since, otherwise read (and locked) from the database."""
        live = group.memo.get(("reservation", reservation_id))
        if live is not None:
            row, account = live
        else:
            row = connection.execute(_LOCK_RESERVATION, {"reservation_id": reservation_id}).one_or_none()
            if row is None:
                raise NotFound("budget.unknown_reservation", f"no reservation {reservation_id}")
            account = SimpleNamespace(
                id=row.account_id, site=row.site, dataset=row.dataset, period=row.period
            )
        if account.site != site:
            raise StoreError("auth.site", f"reservation {reservation_id} belongs to another site", status=403)
        return row, account

    @staticmethod
    def _update_reservation(connection: Connection, row: Any, **changes: Any) -> SimpleNamespace:
        connection.execute(_UPDATE_RESERVATION, {"reservation_id": row.id, **changes})
        current = vars(row) if isinstance(row, SimpleNamespace) else dict(row._mapping)
        return SimpleNamespace(**{**current, **changes})

    async def commit(
        self, reservation_id: str, mechanism: dict[str, Any], *, site: str, actor: str
    ) -> ReservationRecord:
        return await self._receipted(
            lambda connection, group: self._commit(connection, group, reservation_id, mechanism, site, actor)
        )

    def _commit(
        self,
        connection: Connection,
        group: Group,
        reservation_id: str,
        mechanism: dict[str, Any],
        site: str,
        actor: str,
    ) -> ReservationRecord:
        mechanism_json = _dumps(mechanism)
        row, account = self._reservation_and_account(connection, group, reservation_id, site)
        same = row.committed_mechanism_json == mechanism_json
        if not _state(row.status, "budget.committed", f"reservation {reservation_id}", same_mechanism=same):
            return self._reservation(row, account)
        # A late commit (after expiry) is accepted: it can only lower the charge, never raise it.
        reserved = json.loads(row.mechanism_json)
        grant = self._grant(connection, group, row.study_id)
        refusal = grant.mechanism_refusal(mechanism) if grant is not None else None
        if refusal is not None:
            raise StoreError(*refusal, status=403)
        if mechanism != reserved and not self.accountant.within(mechanism, reserved, row.delta):
            raise StoreError(
                "budget.commit_exceeds_reservation",
                f"committed mechanism of {reservation_id} costs more than was reserved",
            )
        # The actual parameters replace the reserved ones in the account's spending, and the account is
        # composed again with them: a mechanism cheaper alone than its reservation can compose to far
        # more (red-team finding 2), so the commit is checked against the cap and the grant like a reserve.
        after = Counter(self._spending(connection, group, account))
        after[spelling(row.mechanism_json)] -= 1
        after[spelling(mechanism_json)] += 1
        delta = self.accountant.charged_delta(after, row.delta)
        epsilon = self.accountant.charged_epsilon(after, delta)
        if epsilon > row.cap:
            raise StoreError(
                "budget.cap",
                f"committing {reservation_id} would compose ε {epsilon:.4f} on "
                f"{account.site}/{account.dataset}/{account.period}, past the cap {row.cap:.4f}; "
                "the reservation stays charged",
            )
        if grant is not None and account.site in grant.epsilon:
            study_cap = grant.epsilon[account.site]
            if epsilon > study_cap:  # the study's share can pass its cap only if the whole account does
                study = self._spent_counts(connection, account.id, row.study_id)
                study[spelling(row.mechanism_json)] -= 1
                study[spelling(mechanism_json)] += 1
                study_eps = self.accountant.charged_epsilon(study, delta)
                if study_eps > study_cap:
                    raise StoreError(
                        "budget.study_cap",
                        f"committing {reservation_id} would make study {row.study_id} spend ε "
                        f"{study_eps:.4f} at {account.site}, above its grant's {study_cap:.4f}",
                    )
        return self._settle(
            connection,
            group,
            row,
            account,
            PendingEvent(
                "budget.committed",
                actor,
                {"mechanism": mechanism, "reserved_mechanism": reserved, "examples": row.examples},
            ),
            charged=mechanism_json,
            changes={"status": "committed", "committed_mechanism_json": mechanism_json},
            composed=(delta, epsilon),
        )

    def _grant_of(self, claims: str) -> Grant:
        return Grant.from_claims(json.loads(claims), kid=self.broker_kid)

    def _grant(self, connection: Connection, group: Group, study_id: str) -> Grant | None:
        """A study's grant (its claims never change, so the memo keeps it for good), None if it has none."""
        key = ("grant", study_id)
        grant = group.memo.get(key)
        if grant is None:
            state = connection.execute(_GRANT_STATE, {"study_id": study_id}).one_or_none()
            if state is None or state[1] is None:
                return None
            grant = group.memo[key] = self._grant_of(state[1])
        return grant  # type: ignore[no-any-return]

    async def release(self, reservation_id: str, *, site: str, actor: str) -> ReservationRecord:
        return await self._receipted(
            lambda connection, group: self._release(connection, group, reservation_id, site, actor)
        )

    def _release(
        self, connection: Connection, group: Group, reservation_id: str, site: str, actor: str
    ) -> ReservationRecord:
        row, account = self._reservation_and_account(connection, group, reservation_id, site)
        if not _state(row.status, "budget.released", f"reservation {reservation_id}"):
            return self._reservation(row, account)
        if _aware(row.expires_at) < _now():  # type: ignore[operator]
            raise StoreError(
                "budget.reservation_expired",
                f"reservation {reservation_id} expired; an expired reservation counts as spent",
            )
        return self._settle(
            connection,
            group,
            row,
            account,
            PendingEvent("budget.released", actor, {"reserved_mechanism": json.loads(row.mechanism_json)}),
            charged=None,
            changes={"status": "released"},
        )

    def _settle(
        self,
        connection: Connection,
        group: Group,
        row: Any,
        account: Any,
        event: PendingEvent,
        *,
        charged: str | None,
        changes: dict[str, Any],
        composed: tuple[float, float] | None = None,
    ) -> ReservationRecord:
        """End a live reservation: its charge becomes ``charged`` (a mechanism's JSON; None when it is
        given back), the row gets ``changes`` and the account's new ε, and the event records both."""
        spent = self._spending(connection, group, account)  # a failed group empties the memo
        _ledger(group.memo).apply(
            LedgerEvent(
                event.kind,
                _key(account),
                row.id,
                None if charged is None else spelling(charged),
                row.study_id,
                reserved_mechanism=spelling(row.mechanism_json),
            )
        )
        if composed is None:
            delta = self.accountant.charged_delta(spent, row.delta)  # the grant's δ, kept with the row
            epsilon = self.accountant.charged_epsilon(spent, delta)
        else:  # the commit composed the account already, with the same charge
            delta, epsilon = composed
        row = self._update_reservation(connection, row, **changes, settled_at=_now(), epsilon_after=epsilon)
        group.memo.pop(("reservation", row.id), None)
        payload = {
            "reservation_id": row.id,
            "request_id": row.request_id,
            "study_id": row.study_id,
            "account": {"site": account.site, "dataset": account.dataset, "period": account.period},
            **event.payload,
            "cap": row.cap,
            "delta": delta,
            "epsilon": epsilon,
        }
        group.events.append(PendingEvent(event.kind, event.actor, payload))
        return self._reservation(row, account)

    def balance(self, site: str, dataset: str, period: str, delta: float) -> AccountBalance:
        with Session(self._read_engine) as session:
            account_id = session.scalar(
                select(BudgetAccountRow.id).where(
                    BudgetAccountRow.site == site,
                    BudgetAccountRow.dataset == dataset,
                    BudgetAccountRow.period == period,
                )
            )
            history = (
                []
                if account_id is None
                else self._history(self._spent_counts(session.connection(), account_id))
            )
            charged = 0
            if account_id is not None:
                charged = int(
                    session.scalar(
                        select(func.count()).where(
                            ReservationRow.account_id == account_id,
                            ReservationRow.status.in_(("reserved", "committed")),
                        )
                    )
                    or 0
                )
            epsilon = self.accountant.epsilon(history, delta) if history else 0.0
            return AccountBalance(
                site=site,
                dataset=dataset,
                period=period,
                epsilon=epsilon,
                charged=charged,
                mechanisms=history,
            )

    def held_epsilon(self, site: str, dataset: str, period: str, delta: float, now: dt.datetime) -> float:
        with Session(self._read_engine) as session:
            live = session.execute(
                select(StudyRow.study_id, StudyRow.grant_json, StudyRow.expires_at).where(
                    StudyRow.status == "granted", StudyRow.dataset == dataset
                )
            ).all()
            holds: dict[str, float] = {}
            for study_id, claims, expires_at in live:
                if claims is None or (expires_at is not None and _aware(expires_at) <= now):  # type: ignore[operator]
                    continue
                epsilon = json.loads(claims).get("epsilon", {})
                if site in epsilon:
                    holds[study_id] = float(epsilon[site])
            account_id = session.scalar(
                select(BudgetAccountRow.id).where(
                    BudgetAccountRow.site == site,
                    BudgetAccountRow.dataset == dataset,
                    BudgetAccountRow.period == period,
                )
            )
            spent = 0.0
            if account_id is not None:
                statement = _SPENT.where(_RESERVATIONS.c.study_id.not_in(list(holds))) if holds else _SPENT
                counts: Counter[str] = Counter()
                for raw, count in session.connection().execute(statement, {"account_id": account_id}):
                    counts[spelling(str(raw))] += int(count)
                history = self._history(counts)
                spent = self.accountant.epsilon(history, delta) if history else 0.0
        # Summing is conservative: RDP composition is sub-additive in ε for the δ the policies allow.
        return spent + sum(holds.values())

    # -- audit ---------------------------------------------------------------------------------
    def audit_events(self) -> Iterator[Any]:
        with Session(self._read_engine) as session:
            for row in session.scalars(select(AuditEventRow).order_by(AuditEventRow.seq)).yield_per(1000):
                yield chain_io.row_to_event(row)

    def audit_heads(self) -> list[str]:
        with Session(self._read_engine) as session:
            rows = session.scalars(select(AuditHeadRow).order_by(AuditHeadRow.seq)).all()
            return [r.jws for r in rows]

    def sign_current_head(self) -> str | None:
        if self.heads.sign is None:
            return None
        with self._sessions.begin() as session:
            tip = chain_io.lock_tip(session.connection())
            if tip.seq == 0:
                return None
            stored = session.get(AuditHeadRow, tip.seq)
            if stored is not None:
                return stored.jws
            event_row = session.get(AuditEventRow, tip.seq)
            assert event_row is not None
            jws = self.heads.sign(chain_io.row_to_event(event_row))
            chain_io.store_head(session.connection(), tip.seq, jws)
            return jws

    def count_events(self) -> int:
        with Session(self._read_engine) as session:
            return int(session.scalar(select(func.count()).select_from(AuditEventRow)) or 0)
