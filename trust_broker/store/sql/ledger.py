"""The privacy-budget ledger in SQL: the rows ``ledger_flow`` reads and writes, on the group writer.

The ledger's hot path uses Core statements built once on the tables and plain rows: no ORM
bookkeeping and no per-call statement building (SQLAlchemy then reuses the compiled form; the
values travel as bound parameters).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Collection
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from trust_broker.audit.chain import EVENT_KINDS
from trust_broker.grants import Grant
from trust_broker.ledger.account import AccountKey
from trust_broker.ledger.decisions import LiveGrant, grant_holds
from trust_broker.ledger.state import BUDGET_EVENTS, Ledger, LedgerEvent, spelling
from trust_broker.store import chain_io, changes, ledger_flow
from trust_broker.store.group_commit import CatchUp, Group
from trust_broker.store.linking import PendingEvent
from trust_broker.store.models import AuditEventRow, BudgetAccountRow, ReservationRow, StudyRow
from trust_broker.store.records import (
    AccountBalance,
    NotFound,
    ReservationRecord,
    ReserveRequest,
    granted_claims,
)
from trust_broker.store.repository import LedgerStore
from trust_broker.store.sql.base import SqlStoreBase
from trust_broker.store.sql.studies import GRANT_STATE

_ACCOUNTS, _RESERVATIONS = cast(Table, BudgetAccountRow.__table__), cast(Table, ReservationRow.__table__)
_ACCOUNT_WHERE = (
    _ACCOUNTS.c.site == bindparam("site"),
    _ACCOUNTS.c.dataset == bindparam("dataset"),
    _ACCOUNTS.c.period == bindparam("period"),
)
_LOCK_ACCOUNT = select(_ACCOUNTS).where(*_ACCOUNT_WHERE).with_for_update()
_ACCOUNT_ID = select(_ACCOUNTS.c.id).where(*_ACCOUNT_WHERE)
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
_EVENTS = cast(Table, AuditEventRow.__table__)
_EVENTS_SINCE = (
    select(_EVENTS.c.seq, _EVENTS.c.kind, _EVENTS.c.payload_json, _EVENTS.c.prev_hash, _EVENTS.c.hash)
    .where(_EVENTS.c.seq > bindparam("seq"))
    .order_by(_EVENTS.c.seq)
)
CATCH_UP_EVENTS = 1000  # beyond, reading the accounts again is cheaper than following the events
# The SET clause comes from the parameters given with each call (any columns but ``id``).
_UPDATE_RESERVATION = update(_RESERVATIONS).where(_RESERVATIONS.c.id == bindparam("reservation_id"))


def spent_counts(
    connection: Connection, account_id: int, *, study_id: str | None = None, excluding: Collection[str] = ()
) -> Counter[str]:
    """Mechanisms counted as spent (committed with their actual parameters, live and expired
    reservations), as {mechanism's spelling: how many}: identical mechanisms are grouped in SQL.
    Only ``study_id``'s, or all but those of the studies ``excluding``."""
    if study_id is not None:
        rows = connection.execute(_STUDY_SPENT, {"account_id": account_id, "study_id": study_id})
    else:
        statement = _SPENT.where(_RESERVATIONS.c.study_id.not_in(list(excluding))) if excluding else _SPENT
        rows = connection.execute(statement, {"account_id": account_id})
    counts: Counter[str] = Counter()
    for raw, count in rows:
        counts[spelling(str(raw))] += int(count)
    return counts


def _ledger(memo: dict[Any, Any]) -> Ledger:
    """The writer's partial ledger (the accounts it has read), kept in its memo."""
    ledger = memo.get("ledger")
    if ledger is None:
        ledger = memo["ledger"] = Ledger(full=False)
    return ledger


class SqlBook:
    """``ledger_flow.LedgerBook`` on one group's connection; the group's memo keeps what it read."""

    __slots__ = ("connection", "group", "store")

    def __init__(self, store: SqlLedger, connection: Connection, group: Group) -> None:
        self.store, self.connection, self.group = store, connection, group

    @property
    def ledger(self) -> Ledger:
        return _ledger(self.group.memo)

    def check_granted(self, study_id: str) -> None:
        # The grant's status as of this transaction (the service checked its immutable claims already):
        # read once, then kept by the memo, which a revocation's event updates, so one committed
        # before is always seen.
        memo = self.group.memo
        if ("granted", study_id) in memo:
            return
        state = self.connection.execute(GRANT_STATE, {"study_id": study_id}).one_or_none()
        claims = granted_claims(study_id, state)
        if ("grant", study_id) not in memo:  # parse the claims only when not kept
            memo["grant", study_id] = self.store.grant_of(claims)
        memo["granted", study_id] = True

    def grant(self, study_id: str) -> Grant | None:
        """Its claims never change, so the memo keeps it for good."""
        key = ("grant", study_id)
        grant = self.group.memo.get(key)
        if grant is None:
            state = self.connection.execute(GRANT_STATE, {"study_id": study_id}).one_or_none()
            if state is None or state[1] is None:
                return None
            grant = self.group.memo[key] = self.store.grant_of(state[1])
        return grant

    def account(self, key: AccountKey) -> Any:
        """Read and locked when the memo lacks it; an account row never changes, so the memo's copy
        stays true."""
        memo_key = ("account", *key)
        account = self.group.memo.get(memo_key)
        if account is None:
            where = key._asdict()
            account = self.connection.execute(_LOCK_ACCOUNT, where).one_or_none()
            if account is None:
                values = {**where, "created_at": changes.now()}
                self.connection.execute(self.store._insert_ignore(BudgetAccountRow, values))
                account = self.connection.execute(_LOCK_ACCOUNT, where).one()
            self.group.memo[memo_key] = account
        return account

    def spending(self, account: Any) -> Counter[str]:
        """Read when the memo lacks it; the ledger's operations (and the catch-up) keep it current."""
        ledger = self.ledger
        key = ledger_flow.key_of(account)
        counts = ledger.accounts.get(key)
        if counts is None:
            counts = ledger.load(key, spent_counts(self.connection, account.id))
        return counts

    def study_spending(self, account: Any, study_id: str) -> Counter[str]:
        return spent_counts(self.connection, account.id, study_id=study_id)

    def claim(self, row: SimpleNamespace) -> bool:
        return self.connection.execute(self.store._insert_reservation, vars(row)).scalar() is not None

    def previous(self, requester: str, request_id: str) -> Any:
        where = {"requester": requester, "request_id": request_id}
        return self.connection.execute(_PREVIOUS_RESERVATION, where).one()

    def reservation(self, reservation_id: str) -> tuple[Any, Any]:
        """From the memo if this writer reserved it and nothing has changed since, otherwise read (and
        locked) from the database."""
        live = self.group.memo.get(("reservation", reservation_id))
        if live is not None:
            return live  # type: ignore[no-any-return]
        row = self.connection.execute(_LOCK_RESERVATION, {"reservation_id": reservation_id}).one_or_none()
        if row is None:
            raise NotFound("budget.unknown_reservation", f"no reservation {reservation_id}")
        account = SimpleNamespace(id=row.account_id, site=row.site, dataset=row.dataset, period=row.period)
        return row, account

    def update(self, row: Any, changes: dict[str, Any]) -> Any:
        self.connection.execute(_UPDATE_RESERVATION, {"reservation_id": row.id, **changes})
        current = vars(row) if isinstance(row, SimpleNamespace) else dict(row._mapping)
        return SimpleNamespace(**{**current, **changes})

    def record(self, event: PendingEvent) -> None:
        self.group.events.append(event)

    def keep(self, row: Any, account: Any) -> None:
        self.group.memo["reservation", row.id] = (row, account)

    def forget(self, reservation_id: str) -> None:
        self.group.memo.pop(("reservation", reservation_id), None)


class SqlLedger(SqlStoreBase, LedgerStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._insert_reservation = (
            self._dialect_insert(_RESERVATIONS)
            .on_conflict_do_nothing(index_elements=["requester", "request_id"])
            .returning(_RESERVATIONS.c.id)
        )

    def _catch_up_hook(self) -> CatchUp | None:
        return _catch_up

    def grant_of(self, claims: str) -> Grant:
        return Grant.from_claims(json.loads(claims), kid=self.broker_kid)

    async def _receipted(self, operation: Callable[[SqlBook], ReservationRecord]) -> ReservationRecord:
        """Run a ledger operation on the writer; its answer carries the receipt of its event."""
        linked = await self._writer.run_linked(
            lambda connection, group: operation(SqlBook(self, connection, group))
        )
        return ledger_flow.with_receipt(linked.value, linked.events, linked.head_jws)

    async def reserve(self, request: ReserveRequest) -> ReservationRecord:
        return await self._receipted(lambda book: ledger_flow.reserve(book, self.accountant, request))

    async def commit(
        self, reservation_id: str, mechanism: dict[str, Any], *, site: str, actor: str
    ) -> ReservationRecord:
        return await self._receipted(
            lambda book: ledger_flow.commit(book, self.accountant, reservation_id, mechanism, site, actor)
        )

    async def release(self, reservation_id: str, *, site: str, actor: str) -> ReservationRecord:
        return await self._receipted(
            lambda book: ledger_flow.release(book, self.accountant, reservation_id, site, actor)
        )

    def balance(self, site: str, dataset: str, period: str, delta: float) -> AccountBalance:
        with Session(self._read_engine) as session:
            connection = session.connection()
            account_id = connection.execute(_ACCOUNT_ID, AccountKey(site, dataset, period)._asdict()).scalar()
            counts = Counter[str]() if account_id is None else spent_counts(connection, account_id)
        history = ledger_flow.history(counts)
        epsilon = self.accountant.epsilon(history, delta) if history else 0.0
        return AccountBalance(
            site=site,
            dataset=dataset,
            period=period,
            epsilon=epsilon,
            charged=sum(counts.values()),
            mechanisms=history,
        )

    def held_epsilon(self, site: str, dataset: str, period: str, delta: float, now: dt.datetime) -> float:
        with Session(self._read_engine) as session:
            connection = session.connection()
            live = connection.execute(
                select(StudyRow.study_id, StudyRow.grant_json, StudyRow.expires_at).where(
                    StudyRow.status == "granted",
                    StudyRow.dataset == dataset,
                    StudyRow.grant_json.is_not(None),
                )
            ).all()
            grants = (
                LiveGrant(study_id, json.loads(claims or "{}").get("epsilon", {}), changes.aware(expires_at))
                for study_id, claims, expires_at in live
            )
            holds = grant_holds(grants, site, now)
            account_id = connection.execute(_ACCOUNT_ID, AccountKey(site, dataset, period)._asdict()).scalar()
            counts = (
                Counter[str]()
                if account_id is None
                else spent_counts(connection, account_id, excluding=holds)
            )
        history = ledger_flow.history(counts)
        spent = self.accountant.epsilon(history, delta) if history else 0.0
        # Summing is conservative: RDP composition is sub-additive in ε for the δ the policies allow.
        return spent + sum(holds.values())


def _catch_up(connection: Connection, memo: dict[Any, Any], since: chain_io.Tip, tip: chain_io.Tip) -> bool:
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
