"""A fresh ClientApp process (Flower's deployment engine starts one per message) loads only what its
message needs: a statistics query never pays for torch, Opacus, Presidio or spaCy (issue 17)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from simulations.usecase3 import generate_formations

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "opacus", "presidio_analyzer", "spacy")

CHILD = """
import json, sys, time
from collections.abc import Mapping

import node_agent.client_app as client_app
after_import = sorted(m for m in {heavy!r} if m in sys.modules)

from flwr.app import ConfigRecord, Context, Message, Metadata, RecordDict
from node_agent.gate import StudyGate, StudyTerms
from tasks import formations
from tasks.analytics import Measure, QueryRequest, QuerySpec
from contracts.instructions import StudyInstructions


class AdmittingGate(StudyGate):
    # Stands in for the broker only: the message path under test is the node's own.
    def admit(self, instructions, spec):
        return StudyTerms(1.0, 1e-6, formations.DATASET, "commande_publique_formation", "public_interest",
                          ("training_domain", "employed_6m"))
    def still_granted(self): return None
    def excluded(self, terms): return frozenset()
    def consented(self, terms): return None
    def reserve(self, request_id, mechanism, examples): return request_id
    def commit(self, reservation_id, mechanism): return None
    def release(self, reservation_id): return None
    def report(self, counts): return None


client_app._gate = lambda settings: AdmittingGate()
spec = QuerySpec(id="t", purpose="commande_publique_formation", sites=("carif_oref",), epsilon=1.0,
                 group_by=("training_domain",),
                 measures=(Measure(name="n", kind="count"),
                           Measure(name="taux", kind="share", field="employed_6m")))
instructions = StudyInstructions("cold", formations.TASK, 1, 1, 1, 0.0, 1.0, 1.0, 1e-6, 0)
content = RecordDict({{"config": ConfigRecord(instructions.to_config()),
                      "query": ConfigRecord(QueryRequest("r", spec, 1.0).to_config())}})
metadata = Metadata(run_id=1, message_id="q", src_node_id=0, dst_node_id=1, reply_to_message_id="",
                    group_id="1", created_at=time.time(), ttl=3600.0, message_type="query")
context = Context(run_id=1, node_id=1, node_config={node_config!r}, state=RecordDict(), run_config={{}})
reply = client_app.query(Message(content=content, metadata=metadata), context)
print(json.dumps({{
    "after_import": after_import,
    "after_query": sorted(m for m in {heavy!r} if m in sys.modules),
    "answered": reply.has_content() and "answer" in reply.content,
}}))
"""


def _child(script: str) -> Any:
    env = {**os.environ, "PYTHONPATH": str(REPO), "FLWR_TELEMETRY_ENABLED": "0"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def node_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cold")
    generate_formations(root, seed=3, people=300, sites=("carif_oref",))
    keys = root / "keys"
    keys.mkdir()
    (keys / "linkage.key").write_text("cd" * 32)
    os.chmod(keys / "linkage.key", 0o600)
    return {"site": "carif_oref", "data-dir": str(root / "carif_oref"), "keys-dir": str(keys)}


def test_importing_the_client_app_and_answering_a_query_loads_no_heavy_library(
    node_config: dict[str, str],
) -> None:
    seen = _child(CHILD.format(heavy=HEAVY, node_config=node_config))
    assert seen["answered"] is True  # the query really ran: prepared, reserved, noised, committed
    assert seen["after_import"] == []
    assert seen["after_query"] == []


def test_the_check_sees_a_heavy_import_when_there_is_one() -> None:
    """The probe itself can fail: the training module does load torch and Opacus."""
    probe = "import json, sys, node_agent.training\n"
    probe += f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    seen = _child(probe)
    assert {"torch", "opacus"} <= set(seen)
