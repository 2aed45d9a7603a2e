"""Engines for the broker's store: SQLite file by default, PostgreSQL by URL; migrations run at start.

SQLite serializes writers with ``BEGIN IMMEDIATE`` so that a transaction which reads an
account and then writes a reservation holds the write lock from its first statement; the
pysqlite driver's own deferred BEGIN would let two reserves read the same balance.
PostgreSQL keeps READ COMMITTED; ledger changes queue on the audit chain's tip row
(``SELECT ... FOR UPDATE``, see ``group_commit``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
DEFAULT_DB_URL = "sqlite:///r2dde-broker.db"


def normalize_url(url: str) -> str:
    """Accept a bare file path for SQLite and ``postgresql://`` for the psycopg 3 driver."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser()}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the begin hook emit BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get("r2dde_read_only", False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _private_sqlite_file(database: str | None) -> None:
    """Create the broker's SQLite file 0600 before SQLite does (it would follow the umask: 0644, and
    its WAL and shared-memory files copy the main file's mode)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine configured for the broker's locking discipline on either database."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _private_sqlite_file(parsed.database)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _sqlite_hooks(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_size=pool_size, max_overflow=2 * pool_size, pool_recycle=1800)
    raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}: use sqlite or postgresql")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent; run at every start)."""
    cfg = alembic_config()
    with engine.connect() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
        connection.commit()


@contextmanager
def throwaway_schema(base_url: str, prefix: str) -> Iterator[str]:
    """A fresh schema on the PostgreSQL server at ``base_url``, dropped on exit; yields a URL whose
    connections use it (tests and benchmarks each get an empty database without creating one)."""
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    url = make_url(normalize_url(base_url))
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        scoped = url.update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
