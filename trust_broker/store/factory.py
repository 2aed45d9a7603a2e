"""Open the broker's store from a URL: ``memory://`` in memory, a SQLite file by default, PostgreSQL
by URL (``postgresql://…``). The service, the CLI and the tests open stores only through here."""

from __future__ import annotations

from trust_broker.accounting import LedgerAccountant
from trust_broker.store.linking import HeadSigner
from trust_broker.store.repository import BrokerStore

MEMORY_URL = "memory://"


def is_memory(url: str) -> bool:
    return url.rstrip("/") == MEMORY_URL.rstrip("/")


def open_store(
    url: str,
    accountant: LedgerAccountant,
    *,
    head_signer: HeadSigner | None = None,
    sign_heads_every: int = 1,
    broker_kid: str = "broker",
    migrate: bool = True,
) -> BrokerStore:
    """A store on ``url``; ``migrate`` brings a database's schema to the newest migration first
    (worker processes of a multi-worker server skip it: their parent did it once).

    An in-memory store lives and dies with its process: for tests, demos and one-process simulations,
    never for a broker whose ledger must outlive a restart.
    """
    if is_memory(url):
        from trust_broker.store.memory import InMemoryBrokerStore

        return InMemoryBrokerStore(
            accountant, head_signer, sign_heads_every=sign_heads_every, broker_kid=broker_kid
        )
    from trust_broker.store import db
    from trust_broker.store.sql import SqlBrokerStore

    engine = db.make_engine(url)
    if migrate:
        db.migrate(engine)
    return SqlBrokerStore(
        engine, accountant, head_signer, sign_heads_every=sign_heads_every, broker_kid=broker_kid
    )
