"""A statistics query on Flower's deployment engine: broker, SuperLink and two SuperNodes as
separate processes, the `query` message kind end to end, the audit export verified."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.analytics import QueryStudy
from coordinator.deployment.loopback import LoopbackFederation
from coordinator.deployment.processes import marked_processes
from coordinator.query_grant import min_cell_size, request_query_grant, study_request
from simulations.usecase3 import generate_formations
from tasks.analytics import Measure, QuerySpec
from trust_broker.audit.verify import verify_export
from trust_broker.client import BrokerClient
from trust_broker.provision import provision
from trust_broker.provision.tls import write_tls_material
from trust_broker.roles import Role

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

REPO = Path(__file__).resolve().parents[2]
SITES = ("carif_oref", "france_travail")
PURPOSE = "commande_publique_formation"


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackFederation]:
    root = tmp_path_factory.mktemp("federation")
    provision(root / "keys", SITES)
    write_tls_material(root / "keys", SITES)
    generate_formations(root / "data", seed=5, people=2000, sites=SITES)
    fed = LoopbackFederation(root / "work", root / "keys", root / "data", repo=REPO)
    try:
        fed.start_broker()
        fed.start_superlink()
        for site in SITES:
            fed.start_node(site)
        with fed.control() as control:
            control.wait_online(SITES, timeout_s=60)
        yield fed
    finally:
        launch = fed.supervisor.launch_id
        fed.close()
        assert marked_processes(launch) == [], "a deployment process outlived the test"


def test_a_query_runs_on_the_deployment_engine_under_its_grant_and_the_audit_verifies(
    federation: LoopbackFederation, tmp_path: Path
) -> None:
    spec = QuerySpec(
        id="deploy-query",
        purpose=PURPOSE,
        sites=SITES,
        epsilon=0.5,
        group_by=("training_domain",),
        measures=(Measure(name="n", kind="count"), Measure(name="taux", kind="share", field="employed_6m")),
    )
    request = study_request("deploy-query-1", PURPOSE, SITES, spec.fields(), spec.epsilon)
    grant = request_query_grant(request, broker_url=federation.broker_url, keys=federation.keys)
    with federation.control() as control:
        nodes = {node: site for node, site in control.node_sites().items() if site in SITES}
        study = QueryStudy(
            study_id=request.study_id,
            sites=SITES,
            study_dir=tmp_path / "study",
            grant=grant,
            delta=request.delta,
            epsilon=spec.epsilon,
            min_cell_size=min_cell_size(PURPOSE),
            query=spec.to_json(),
            timeout=240.0,
            extra={"node_sites": nodes},
        )
        outcome = control.wait(control.start_run(REPO, study.to_run_config()), timeout_s=300)
    assert outcome.completed, outcome
    report = json.loads((tmp_path / "study" / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "completed"
    for site in SITES:
        assert report["sites"][site]["status"] == "answered", report["sites"]
        assert 0 < report["sites"][site]["epsilon"] <= 0.5
    assert any(not c["suppressed"] for c in report["cells"])
    path = tmp_path / "audit.jsonl"
    with BrokerClient.from_folder(federation.keys, Role.AUDITOR, base_url=federation.broker_url) as auditor:
        auditor.export_audit(path)
    verification = verify_export(path)
    assert verification.ok, [str(p) for p in verification.problems]
    assert "gaussian" in path.read_text(encoding="utf-8")
