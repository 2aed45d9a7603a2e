"""Fixtures of the broker service tests: a provisioned folder, brokers on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from broker_support import SITES, Broker, make_context, postgres_schema, postgres_url_or_skip, sqlite_url

from trust_broker.provision import ProvisionedFolder, provision
from trust_broker.service import BrokerSettings


@pytest.fixture(scope="session")
def folder(tmp_path_factory: pytest.TempPathFactory) -> ProvisionedFolder:
    return provision(tmp_path_factory.mktemp("keys") / "deployment", SITES)


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A fresh schema per test on the configured server, dropped afterwards (runs never collide)."""
    with postgres_schema(postgres_url_or_skip()) as url:
        yield url


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
