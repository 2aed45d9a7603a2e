"""Fixtures of the broker service tests: a provisioned folder, brokers on SQLite or PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from broker_support import SITES, Broker, make_context, postgres_url_or_skip, sqlite_url

from trust_broker.provision import ProvisionedFolder, provision
from trust_broker.service import BrokerSettings


@pytest.fixture(scope="session")
def folder(tmp_path_factory: pytest.TempPathFactory) -> ProvisionedFolder:
    return provision(tmp_path_factory.mktemp("keys") / "deployment", SITES)


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A fresh schema per test on the configured server, dropped afterwards (runs never collide)."""
    import psycopg
    from sqlalchemy.engine import make_url

    base = postgres_url_or_skip()
    schema = f"r2dde_test_{uuid.uuid4().hex[:12]}"
    sa_url = make_url(base)
    conninfo = sa_url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield sa_url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The broker's database on both backends (PostgreSQL only where configured)."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    return request.getfixturevalue("postgres_schema_url")


@pytest.fixture
def make_broker(folder: ProvisionedFolder, tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    made: list[Broker] = []

    def build(url: str | None = None, settings: BrokerSettings | None = None) -> Broker:
        broker = Broker(make_context(url or sqlite_url(tmp_path), folder, settings), folder)
        made.append(broker)
        return broker

    yield build
    for broker in made:
        broker.close()


@pytest.fixture
def broker(make_broker: Callable[..., Broker]) -> Broker:
    return make_broker()


@pytest.fixture(scope="module")
def shared_broker(folder: ProvisionedFolder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One broker for tests that only read or add independent rows (saves migrations)."""
    broker = Broker(make_context(sqlite_url(tmp_path_factory.mktemp("shared")), folder), folder)
    yield broker
    broker.close()


