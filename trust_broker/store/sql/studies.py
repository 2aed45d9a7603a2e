"""Studies, grants and node reports in SQL."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trust_broker.store import changes
from trust_broker.store.group_commit import Group
from trust_broker.store.models import StudyRow
from trust_broker.store.records import StudyRecord
from trust_broker.store.repository import StudyStore
from trust_broker.store.sql.base import SqlStoreBase

_STUDIES = StudyRow.__table__
GRANT_STATE = select(_STUDIES.c.status, _STUDIES.c.grant_json).where(
    _STUDIES.c.study_id == bindparam("study_id")
)
"""What every reserve checks of its study, and nothing more."""


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
        created_at=changes.aware(row.created_at),  # type: ignore[arg-type]
        expires_at=changes.aware(row.expires_at),
        revoked_at=changes.aware(row.revoked_at),
        revoke_reason=row.revoke_reason,
    )


class SqlStudies(SqlStoreBase, StudyStore):
    def record_study(self, study: StudyRecord, *, actor: str) -> None:
        with self._sessions.begin() as session:
            if session.get(StudyRow, study.study_id) is not None:
                raise changes.study_exists(study.study_id)
            session.add(
                StudyRow(
                    study_id=study.study_id,
                    status=study.status,
                    purpose=study.purpose,
                    dataset=study.dataset,
                    requested_by=study.requested_by,
                    request_json=changes.dumps(study.request),
                    decision_json=changes.dumps(study.decision),
                    grant_jws=study.grant_jws,
                    grant_json=changes.dumps(study.grant) if study.grant is not None else None,
                    created_at=study.created_at,
                    expires_at=study.expires_at,
                )
            )
            try:
                session.flush()
            except IntegrityError as exc:
                raise changes.study_exists(study.study_id) from exc
            self._append(session.connection(), changes.study_recorded(study, actor, self.broker_kid))

    def study(self, study_id: str) -> StudyRecord | None:
        with Session(self._read_engine) as session:
            row = session.get(StudyRow, study_id)
            return None if row is None else _study(row)

    def revoke_study(self, study_id: str, *, actor: str, reason: str) -> StudyRecord:
        with self._sessions.begin() as session:
            row = session.get(StudyRow, study_id, with_for_update=True)
            if row is None:
                raise changes.study_unknown(study_id)
            event = changes.revocation(study_id, row.status, actor, reason)
            if event is not None:
                row.status, row.revoked_at, row.revoke_reason = "revoked", changes.now(), reason
                session.flush()
                self._append(session.connection(), [event])
            return _study(row)

    async def grant_state(self, study_id: str) -> tuple[str, str | None] | None:
        """A one-statement read, run by the writer so the event loop awaits it instead of blocking."""

        def read(connection: Connection, _group: Group) -> tuple[str, str | None] | None:
            row = connection.execute(GRANT_STATE, {"study_id": study_id}).one_or_none()
            return None if row is None else (str(row[0]), row[1])

        return await self._writer.run(read)

    def record_node_report(self, study_id: str, site: str, report: dict[str, Any], *, actor: str) -> int:
        with self._sessions.begin() as session:
            if session.get(StudyRow, study_id) is None:
                raise changes.study_unknown(study_id)
            return self._append(session.connection(), [changes.node_report(study_id, site, report, actor)])
