"""Appending to the audit chain inside a store transaction (the chain's rules are ``audit.chain``'s).

The tip row (id 1) is read ``FOR UPDATE``: two concurrent transactions cannot both extend the
same last event, so the chain is a line, never a tree.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trust_broker.audit.chain import GENESIS, AuditEvent, next_event
from trust_broker.store.models import AuditEventRow, AuditHeadRow, AuditTipRow

TIP_ID = 1


def lock_tip(session: Session) -> AuditTipRow:
    tip = session.scalars(select(AuditTipRow).where(AuditTipRow.id == TIP_ID).with_for_update()).one_or_none()
    if tip is None:
        session.add(AuditTipRow(id=TIP_ID, seq=0, hash=GENESIS))
        session.flush()
        tip = session.scalars(select(AuditTipRow).where(AuditTipRow.id == TIP_ID).with_for_update()).one()
    return tip


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


def append(session: Session, *, kind: str, actor: str, payload: dict[str, Any]) -> AuditEvent:
    """Extend the chain by one event under the tip lock; the caller's transaction commits it."""
    tip = lock_tip(session)
    # ``next_event`` links to the previous event by its seq and hash only: the locked tip row holds
    # both, so the previous event is not re-read (one query and one validation less per change).
    previous = None if tip.seq == 0 else AuditEvent.model_construct(seq=tip.seq, hash=tip.hash)
    event = next_event(previous, kind=kind, actor=actor, payload=payload, at=dt.datetime.now(dt.UTC))
    session.add(
        AuditEventRow(
            seq=event.seq,
            at=event.at,
            kind=event.kind,
            actor=event.actor,
            payload_json=json.dumps(event.payload, sort_keys=True),
            prev_hash=event.prev_hash,
            hash=event.hash,
        )
    )
    tip.seq, tip.hash = event.seq, event.hash
    session.flush()
    return event


def store_head(session: Session, seq: int, jws: str) -> None:
    if session.get(AuditHeadRow, seq) is None:
        session.add(AuditHeadRow(seq=seq, jws=jws))
        session.flush()
