"""Nodes and the coordinator import the broker's client, never its server (issue 13, item 1).

Importing ``trust_broker.client`` once pulled the FastAPI app, its routers, the SQL store and
Alembic into every node and coordinator process, through the API's body models. A fresh
interpreter shows what the import really loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_MODULES = ("fastapi", "sqlalchemy", "alembic", "trust_broker.service.app", "trust_broker.store")


def _loaded_after(statement: str) -> list[str]:
    probe = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FLWR_TELEMETRY_ENABLED": "0"}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    return list(json.loads(done.stdout.splitlines()[-1]))


def _server_modules(loaded: list[str]) -> list[str]:
    return [m for m in loaded if any(m == s or m.startswith(s + ".") for s in SERVER_MODULES)]


@pytest.mark.parametrize(
    "statement",
    ["import trust_broker.client", "import contracts.broker_api", "import contracts.grant"],
)
def test_the_broker_client_loads_no_server_module(statement: str) -> None:
    assert _server_modules(_loaded_after(statement)) == []


def test_the_probe_sees_server_modules_when_they_are_loaded() -> None:
    """The probe itself can fail: importing the service does show its modules."""
    assert "trust_broker.service.app" in _server_modules(_loaded_after("import trust_broker.service.app"))
