"""Opt-outs and consents in SQL."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from trust_broker.store import changes
from trust_broker.store.models import ConsentRow, OptOutRow
from trust_broker.store.records import ListPage
from trust_broker.store.repository import RegistryStore
from trust_broker.store.sql.base import SqlStoreBase


class SqlRegistries(SqlStoreBase, RegistryStore):
    def add_opt_out(self, pseudonym: str, purpose: str | None, *, site: str, actor: str) -> int:
        purpose_key = purpose or changes.ALL_PURPOSES
        with self._sessions.begin() as session:
            existing = session.scalar(
                select(OptOutRow.seq).where(
                    OptOutRow.linkage_pseudonym == pseudonym, OptOutRow.purpose == purpose_key
                )
            )
            if existing is not None:
                return int(existing)
            row = OptOutRow(
                linkage_pseudonym=pseudonym, purpose=purpose_key, site=site, created_at=changes.now()
            )
            session.add(row)
            session.flush()
            event = changes.opt_out_added(row.seq, pseudonym, purpose_key, site, actor)
            self._append(session.connection(), [event])
            return int(row.seq)

    def opt_outs(self, since: int, limit: int) -> ListPage:
        with Session(self._read_engine) as session:
            rows = session.scalars(
                select(OptOutRow).where(OptOutRow.seq > since).order_by(OptOutRow.seq).limit(limit)
            ).all()
            items = [
                changes.opt_out_item(
                    r.seq,
                    r.linkage_pseudonym,
                    r.purpose,
                    r.site,
                    changes.aware(r.created_at),  # type: ignore[arg-type]
                )
                for r in rows
            ]
            return ListPage(items=items, cursor=rows[-1].seq if rows else since)

    def record_consent(self, pseudonym: str, purpose: str, action: str, *, site: str, actor: str) -> int:
        changes.check_consent_action(action)
        with self._sessions.begin() as session:
            row = ConsentRow(
                linkage_pseudonym=pseudonym,
                purpose=purpose,
                action=action,
                site=site,
                created_at=changes.now(),
            )
            session.add(row)
            session.flush()
            event = changes.consent_recorded(row.seq, pseudonym, purpose, action, site, actor)
            self._append(session.connection(), [event])
            return int(row.seq)

    def consents(self, since: int, limit: int, purpose: str | None = None) -> ListPage:
        with Session(self._read_engine) as session:
            stmt = select(ConsentRow).where(ConsentRow.seq > since)
            if purpose is not None:
                stmt = stmt.where(ConsentRow.purpose == purpose)
            rows = session.scalars(stmt.order_by(ConsentRow.seq).limit(limit)).all()
            items = [
                changes.consent_item(
                    r.seq,
                    r.linkage_pseudonym,
                    r.purpose,
                    r.action,
                    r.site,
                    changes.aware(r.created_at),  # type: ignore[arg-type]
                )
                for r in rows
            ]
            return ListPage(items=items, cursor=rows[-1].seq if rows else since)
