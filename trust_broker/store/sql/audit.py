"""The audit chain and its signed heads in SQL."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trust_broker.audit.chain import AuditEvent
from trust_broker.store import chain_io
from trust_broker.store.models import AuditEventRow, AuditHeadRow
from trust_broker.store.repository import AuditLog
from trust_broker.store.sql.base import SqlStoreBase


class SqlAuditLog(SqlStoreBase, AuditLog):
    def audit_events(self) -> Iterator[AuditEvent]:
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
