"""The whole broker service on the in-memory store (``memory://``): what a demo or a one-process
simulation gets, held to the same answers and the same auditor as a database-backed broker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from broker_support import Broker, dpsgd

from trust_broker.audit.verify import verify_export
from trust_broker.roles import Role
from trust_broker.store.memory import InMemoryBrokerStore


def test_a_broker_in_memory_grants_reserves_commits_and_exports_a_verifiable_chain(
    make_broker: Callable[..., Broker], tmp_path: Path
) -> None:
    broker = make_broker("memory://")
    assert isinstance(broker.context.store, InMemoryBrokerStore)
    assert broker.http.get("/v1/health").json()["database"] == "memory"
    study = broker.grant(sites=("apec",))
    node = broker.client(Role.NODE, "apec")
    reserved = node.reserve(
        request_id="r-1", study_id=study, dataset="parcours", mechanism=dpsgd(), examples=100
    )
    assert reserved.status == "reserved"
    assert node.commit(reserved.reservation_id, dpsgd(steps=5)).status == "committed"
    export = broker.client(Role.AUDITOR).export_audit(tmp_path / "audit.jsonl")
    report = verify_export(export)
    assert report.ok, report.problems
    assert asyncio.run(broker.context.store.grant_state(study)) is not None


def test_the_memory_store_loads_no_database_stack() -> None:
    """A one-process simulation or demo on ``memory://`` needs neither SQLAlchemy nor Alembic."""
    code = (
        "import sys; from trust_broker.store.factory import open_store;"
        "from trust_broker.accounting import LedgerAccountant;"
        "open_store('memory://', LedgerAccountant()).close();"
        "print('sqlalchemy' in sys.modules, 'alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
