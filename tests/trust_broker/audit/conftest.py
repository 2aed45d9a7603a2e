"""Fixtures of the audit tests: fresh keys and one typical export, built once per session."""

from __future__ import annotations

import pytest
from audit_helpers import typical_log
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@pytest.fixture(scope="session")
def broker_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def node_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def export_lines(
    broker_key: Ed25519PrivateKey, node_key: Ed25519PrivateKey, tmp_path_factory: pytest.TempPathFactory
) -> list[str]:
    path = typical_log(broker_key, node_key).write(tmp_path_factory.mktemp("export") / "audit.jsonl")
    return path.read_text(encoding="utf-8").splitlines()
