"""Every broker store, one contract: the fixtures open each implementation from its URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from broker_support import postgres_url_or_skip
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trust_broker.accounting import LedgerAccountant
from trust_broker.audit.chain import sign_head
from trust_broker.store.db import throwaway_schema
from trust_broker.store.factory import MEMORY_URL, open_store
from trust_broker.store.repository import BrokerStore

BROKER_KID = "broker"


@pytest.fixture(scope="session")
def broker_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def accountant() -> LedgerAccountant:
    return LedgerAccountant()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The store's URL on each implementation (PostgreSQL: a throwaway schema, when configured)."""
    if request.param == "memory":
        yield MEMORY_URL
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        with throwaway_schema(postgres_url_or_skip(), "r2dde_store") as url:
            yield url


@pytest.fixture
def store(
    store_url: str, broker_key: Ed25519PrivateKey, accountant: LedgerAccountant
) -> Iterator[BrokerStore]:
    opened = open_store(
        store_url,
        accountant,
        head_signer=lambda event: sign_head(broker_key, event, BROKER_KID),
        broker_kid=BROKER_KID,
    )
    yield opened
    opened.close()
    engine = getattr(opened, "engine", None)
    if engine is not None:
        engine.dispose()  # before the throwaway schema is dropped
