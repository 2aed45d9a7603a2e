"""Appending to the audit chain inside a store transaction (the chain's rules are ``audit.chain``'s).

The tip row (id 1) is read ``FOR UPDATE``: two concurrent transactions cannot both extend the
same last event, so the chain is a line, never a tree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from trust_broker.audit.chain import AuditEvent
from trust_broker.store.linking import Extended, HeadSigner, HeadSigning, PendingEvent, Tip, link
from trust_broker.store.models import AuditEventRow, AuditHeadRow, AuditTipRow

__all__ = [
    "Extended",
    "HeadSigner",
    "HeadSigning",
    "PendingEvent",
    "Tip",
    "append",
    "extend",
    "lock_tip",
    "row_to_event",
    "store_head",
]

TIP_ID = 1

# Built once on the tables (not the ORM classes): every state change runs these, and a prepared
# Core statement skips the ORM's bulk-persistence layer and SQLAlchemy's per-call statement building.
_TIP, _EVENTS, _HEADS = (cast(Table, row.__table__) for row in (AuditTipRow, AuditEventRow, AuditHeadRow))
_LOCK_TIP = select(_TIP.c.seq, _TIP.c.hash).where(_TIP.c.id == TIP_ID).with_for_update()
_INSERT_EVENT = insert(_EVENTS)
_MOVE_TIP = (
    update(_TIP).where(_TIP.c.id == TIP_ID).values(seq=bindparam("tip_seq"), hash=bindparam("tip_hash"))
)
_INSERT_HEAD = insert(_HEADS)


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


def extend(connection: Connection, tip: Tip, pending: Sequence[PendingEvent], heads: HeadSigning) -> Extended:
    """Link ``pending`` after ``tip`` (locked by this transaction), write them and move the tip.

    One batched insert (``executemany``) and one tip update however many events: a group of
    changes pays the chain's writes, and the head's signature, once.
    """
    extended = link(tip, pending, heads)
    if not extended.events:
        return extended
    connection.execute(
        _INSERT_EVENT,
        [
            {
                "seq": event.seq,
                "at": event.at,
                "kind": event.kind,
                "actor": event.actor,
                "payload_json": json.dumps(event.payload, sort_keys=True),
                "prev_hash": event.prev_hash,
                "hash": event.hash,
            }
            for event in extended.events
        ],
    )
    last = extended.events[-1]
    connection.execute(_MOVE_TIP, {"tip_seq": last.seq, "tip_hash": last.hash})
    if extended.head_jws is not None:
        store_head(connection, last.seq, extended.head_jws)
    return extended


def append(connection: Connection, event: PendingEvent, heads: HeadSigning) -> AuditEvent:
    """Extend the chain by one event under the tip lock; the caller's transaction commits it."""
    return extend(connection, lock_tip(connection), [event], heads).events[-1]


def store_head(connection: Connection, seq: int, jws: str) -> None:
    """Keep a signed head; ``seq`` is a new event's, so there is no earlier head to replace."""
    connection.execute(_INSERT_HEAD, {"seq": seq, "jws": jws})
