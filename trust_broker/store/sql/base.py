"""What every part of ``SqlBrokerStore`` shares: the engine, the ledger's writers, the chain's tip.

The ledger's hot path (signature nonces, reserve, commit, release) runs on the store's
``GroupCommitWriter``: the chain's tip first, then the accounts and reservations, in transactions
shared by whatever requests are waiting. Rarer changes (participants, studies, opt-outs, consents,
node reports) keep one short transaction each: their own rows first, then the tip. No row is
locked in both orders, so there is no deadlock; SQLite's ``BEGIN IMMEDIATE`` serializes all writers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import sessionmaker

from trust_broker.accounting import LedgerAccountant
from trust_broker.audit.chain import GENESIS
from trust_broker.store import chain_io
from trust_broker.store.group_commit import CatchUp, GroupCommitWriter
from trust_broker.store.linking import HeadSigner, HeadSigning, PendingEvent
from trust_broker.store.models import AuditTipRow


class SqlStoreBase:
    """The broker's state in SQLite or PostgreSQL.

    ``head_signer`` signs the chain's last event at the end of every transaction that changed
    something (cost measured in ``benchmarks/broker``); with ``sign_heads_every=N``, only of those
    that pass a multiple of N events.
    """

    def __init__(
        self,
        engine: Engine,
        accountant: LedgerAccountant,
        head_signer: HeadSigner | None = None,
        *,
        sign_heads_every: int = 1,
        broker_kid: str = "broker",
    ) -> None:
        self.broker_kid = broker_kid
        self.engine = engine
        self.database_name = engine.dialect.name
        self.accountant = accountant
        self._dialect_insert: Any = (
            postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        )
        self.heads = HeadSigning(head_signer, max(1, sign_heads_every))
        self._writer = GroupCommitWriter(engine, self.heads, catch_up=self._catch_up_hook())
        # Nonces touch no ledger row and no chain: on PostgreSQL their own writer keeps them out of the
        # ledger's groups; SQLite has a single write lock, so they share the ledger's writer there.
        self._nonce_writer = (
            GroupCommitWriter(engine, None, name="nonce")
            if engine.dialect.name == "postgresql"
            else self._writer
        )
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # Reads need no write lock: on SQLite they begin DEFERRED and run beside the writer (WAL).
        self._read_engine = engine.execution_options(r2dde_read_only=True)
        with self._sessions.begin() as session:  # the chain's tip row exists before any append
            session.execute(
                self._insert_ignore(AuditTipRow, {"id": chain_io.TIP_ID, "seq": 0, "hash": GENESIS})
            )

    def _catch_up_hook(self) -> CatchUp | None:
        """The ledger part's way to follow other processes' events (none here)."""
        return None

    def _append(self, connection: Connection, events: Iterable[PendingEvent]) -> int:
        """Extend the chain by each of ``events`` under the tip's lock (held until the transaction
        ends), one at a time as a single change does; the last one's seq."""
        seq = 0
        for event in events:
            seq = chain_io.append(connection, event, self.heads).seq
        return seq

    def _insert_ignore(self, model: type, values: dict[str, Any]) -> Any:
        """An insert that does nothing when the row's key is taken (either dialect)."""
        return self._dialect_insert(model).values(**values).on_conflict_do_nothing()

    def close(self) -> None:
        self._writer.close()
        self._nonce_writer.close()
