"""Appending to the audit chain inside a store transaction (the chain's rules are ``audit.chain``'s).

The tip row (id 1) is read ``FOR UPDATE``: two concurrent transactions cannot both extend the
same last event, so the chain is a line, never a tree.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, insert, select, update

from trust_broker.audit.chain import AuditEvent, next_event
from trust_broker.store.models import AuditEventRow, AuditHeadRow, AuditTipRow

TIP_ID = 1

HeadSigner = Callable[[AuditEvent], str]

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


class PendingEvent(NamedTuple):
    """A change's event before it is linked: its place in the chain is fixed when its transaction ends."""

    kind: str
    actor: str
    payload: dict[str, Any]


class HeadSigning(NamedTuple):
    """Who signs the chain's head, and how often: after a transaction that passes a multiple of ``every``."""

    sign: HeadSigner | None
    every: int = 1


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


class Extended(NamedTuple):
    events: list[AuditEvent]  # the linked events, in order (the last is the chain's new head)
    head_jws: str | None  # the head signed for them, if this extension passed a multiple of ``every``


def extend(connection: Connection, tip: Tip, pending: Sequence[PendingEvent], heads: HeadSigning) -> Extended:
    """Link ``pending`` after ``tip`` (locked by this transaction), write them and move the tip.

    One batched insert (``executemany``) and one tip update however many events: a group of
    changes pays the chain's writes, and the head's signature, once.
    """
    if not pending:
        return Extended([], None)
    at = dt.datetime.now(dt.UTC)
    # ``next_event`` links to the previous event by its seq and hash only: the locked tip row holds
    # both, so the previous event is not re-read.
    previous = None if tip.seq == 0 else AuditEvent.model_construct(seq=tip.seq, hash=tip.hash)
    rows = []
    linked = []
    for item in pending:
        previous = next_event(previous, kind=item.kind, actor=item.actor, payload=item.payload, at=at)
        linked.append(previous)
        rows.append(
            {
                "seq": previous.seq,
                "at": previous.at,
                "kind": previous.kind,
                "actor": previous.actor,
                "payload_json": json.dumps(previous.payload, sort_keys=True),
                "prev_hash": previous.prev_hash,
                "hash": previous.hash,
            }
        )
    assert previous is not None
    connection.execute(_INSERT_EVENT, rows)
    connection.execute(_MOVE_TIP, {"tip_seq": previous.seq, "tip_hash": previous.hash})
    head_jws = None
    if heads.sign is not None and previous.seq // heads.every > tip.seq // heads.every:
        head_jws = heads.sign(previous)
        store_head(connection, previous.seq, head_jws)
    return Extended(linked, head_jws)


def append(connection: Connection, event: PendingEvent, heads: HeadSigning) -> AuditEvent:
    """Extend the chain by one event under the tip lock; the caller's transaction commits it."""
    return extend(connection, lock_tip(connection), [event], heads).events[-1]


def store_head(connection: Connection, seq: int, jws: str) -> None:
    """Keep a signed head; ``seq`` is a new event's, so there is no earlier head to replace."""
    connection.execute(_INSERT_HEAD, {"seq": seq, "jws": jws})
