"""``BrokerStore`` on SQLAlchemy 2 (SQLite, PostgreSQL): every change commits with its audit event.

One part per interface of ``store.repository``, on the shared engine, writers and chain tip of
``base.SqlStoreBase``; ``SqlBrokerStore`` is all of them.
"""

from __future__ import annotations

from trust_broker.store.repository import BrokerStore
from trust_broker.store.sql.audit import SqlAuditLog
from trust_broker.store.sql.ledger import SqlLedger
from trust_broker.store.sql.participants import MAX_PARTICIPANT_CACHE, SqlParticipants
from trust_broker.store.sql.registries import SqlRegistries
from trust_broker.store.sql.studies import SqlStudies

__all__ = ["MAX_PARTICIPANT_CACHE", "SqlBrokerStore"]


class SqlBrokerStore(SqlParticipants, SqlStudies, SqlRegistries, SqlLedger, SqlAuditLog, BrokerStore):
    """The broker's state in SQLite or PostgreSQL (see ``base.SqlStoreBase`` for its arguments)."""
