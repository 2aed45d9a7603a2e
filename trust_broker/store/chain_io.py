"""Appending to the audit chain inside a store transaction (the chain's rules are ``audit.chain``'s).

The tip row (id 1) is read ``FOR UPDATE``: two concurrent transactions cannot both extend the
same last event, so the chain is a line, never a tree.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, insert, select, update

from trust_broker.audit.chain import AuditEvent, next_event
from trust_broker.store.models import AuditEventRow, AuditHeadRow, AuditTipRow

TIP_ID = 1

# Built once on the tables (not the ORM classes): every state change runs these, and a prepared
# Core statement skips the ORM's bulk-persistence layer and SQLAlchemy's per-call statement building.
_TIP, _EVENTS, _HEADS = AuditTipRow.__table__, AuditEventRow.__table__, AuditHeadRow.__table__
_LOCK_TIP = select(_TIP.c.seq, _TIP.c.hash).where(_TIP.c.id == TIP_ID).with_for_update()
_INSERT_EVENT = insert(_EVENTS)
_MOVE_TIP = (
    update(_TIP).where(_TIP.c.id == TIP_ID).values(seq=bindparam("tip_seq"), hash=bindparam("tip_hash"))
)
_INSERT_HEAD = insert(_HEADS)


class Tip(NamedTuple):
    seq: int
    hash: str


def lock_tip(connection: Connection) -> Tip:
    """The chain's last (seq, hash), locked until the transaction ends (the row exists from the start)."""
    row = connection.execute(_LOCK_TIP).one_or_none()
    if row is None:
        raise RuntimeError("the audit tip row is missing: the store was not initialised")
    return Tip(int(row[0]), str(row[1]))


def row_to_event(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        seq=row.seq,
        at=row.at,
        kind=row.kind,
        actor=row.actor,
        payload=json.loads(row.payload_json),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def append(connection: Connection, *, kind: str, actor: str, payload: dict[str, Any]) -> AuditEvent:
    """Extend the chain by one event under the tip lock; the caller's transaction commits it.

    Plain Core statements: this runs in every state change, so it avoids ORM bookkeeping.
    """
    tip = lock_tip(connection)
    # ``next_event`` links to the previous event by its seq and hash only: the locked tip row holds
    # both, so the previous event is not re-read (one query and one validation less per change).
    previous = None if tip.seq == 0 else AuditEvent.model_construct(seq=tip.seq, hash=tip.hash)
    event = next_event(previous, kind=kind, actor=actor, payload=payload, at=dt.datetime.now(dt.UTC))
    connection.execute(
        _INSERT_EVENT,
        {
            "seq": event.seq,
            "at": event.at,
            "kind": event.kind,
            "actor": event.actor,
            "payload_json": json.dumps(event.payload, sort_keys=True),
            "prev_hash": event.prev_hash,
            "hash": event.hash,
        },
    )
    connection.execute(_MOVE_TIP, {"tip_seq": event.seq, "tip_hash": event.hash})
    return event


def store_head(connection: Connection, seq: int, jws: str) -> None:
    """Keep a signed head; ``seq`` is a new event's, so there is no earlier head to replace."""
    connection.execute(_INSERT_HEAD, {"seq": seq, "jws": jws})
