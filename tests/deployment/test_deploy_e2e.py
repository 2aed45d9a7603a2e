"""End to end on Flower's deployment engine: broker, SuperLink and SuperNodes as separate processes.

Everything runs on 127.0.0.1 with ports chosen free; Flower speaks TLS with the provisioned CA
and SuperNode authentication. One study of use case 1 carries three faults at once, so that the
whole test stays within its budget on a 2-core machine:
- missions_locales' own (local) policy no longer accepts the purpose: its node declines;
- apec's node is SIGKILLed (with its ClientApp) once it has reserved its round's ε: the study
  goes on with france_travail (min-sites 1), and the broker keeps apec's reservation charged;
- a node presenting a key the Region never registered is refused at the SuperLink.
The audit export must verify, and no process may outlive the test.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from coordinator.deployment.control import DeploymentError, RunOutcome, SuperLinkControl
from coordinator.deployment.loopback import LoopbackFederation
from coordinator.deployment.processes import ManagedProcess, marked_processes
from coordinator.deployment.study import with_node_sites
from coordinator.grant import request_grant
from coordinator.study_config import StudyConfig
from node_agent.cli import launcher_folder
from node_agent.deployment.superexec_wake import wake, wake_path
from policies.loader import DOCUMENTS_DIR
from simulations.partners import generate_partners
from trust_broker.audit.verify import verify_export
from trust_broker.client import BrokerClient
from trust_broker.provision import provision
from trust_broker.provision.tls import write_tls_material
from trust_broker.roles import Role

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

REPO = Path(__file__).resolve().parents[2]
SITES = ("france_travail", "apec", "missions_locales")
TRAINS, CRASHES, DECLINES = SITES
PURPOSE = "autodiagnostic_mobilite"
STUDY_ID = "e2e-deployment"


def _audit_events(federation: LoopbackFederation, path: Path) -> list[dict[str, object]]:
    with BrokerClient.from_folder(federation.keys, Role.AUDITOR, base_url=federation.broker_url) as auditor:
        auditor.export_audit(path)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [line for line in lines if line.get("type") == "event"]


def _reservations(events: list[dict[str, object]], site: str) -> dict[str, set[str]]:
    """reservation id -> kinds seen (reserved, committed, released) for ``site`` in this study."""
    seen: dict[str, set[str]] = {}
    for event in events:
        kind, payload = str(event["kind"]), event["payload"]
        if not kind.startswith("budget.") or not isinstance(payload, dict):
            continue
        if payload.get("study_id") != STUDY_ID or payload.get("account", {}).get("site") != site:
            continue
        seen.setdefault(str(payload.get("reservation_id")), set()).add(kind)
    return seen


def _local_policy_without_purpose(folder: Path, site: str) -> Path:
    """The site's own policy document after it withdrew the purpose (the broker still has the old one)."""
    document = yaml.safe_load((DOCUMENTS_DIR / "sites" / f"{site}.yaml").read_text(encoding="utf-8"))
    document["accepted_purposes"] = [p for p in document["accepted_purposes"] if p != PURPOSE]
    path = folder / f"{site}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def _rogue_keys(keys: Path, site: str, folder: Path) -> Path:
    """The site's keys folder, but with a SuperNode key the Region never registered."""
    rogue = folder / "rogue-keys"
    shutil.copytree(keys / "nodes" / site, rogue)
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    (rogue / "supernode.key").write_bytes(pem)
    return rogue


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackFederation]:
    root = tmp_path_factory.mktemp("federation")
    provision(root / "keys", SITES)
    write_tls_material(root / "keys", SITES)  # what `r2dde provision` does after the Ed25519 keys
    generate_partners(root / "data", seed=11, people=1100, sites=SITES)  # apec: ≥ 100 training rows
    local_policy = _local_policy_without_purpose(root, DECLINES)
    fed = LoopbackFederation(root / "work", root / "keys", root / "data", repo=REPO)
    try:
        fed.start_broker()
        fed.start_superlink()
        for site in SITES:
            fed.start_node(site, site_policy=local_policy if site == DECLINES else None)
        with fed.control() as control:
            control.wait_online(SITES, timeout_s=60)
        yield fed
    finally:
        launch = fed.supervisor.launch_id
        fed.close()
        assert marked_processes(launch) == [], "a deployment process outlived the test"


@dataclass(frozen=True)
class StudyRun:
    outcome: RunOutcome
    report: dict[str, Any]
    crashed: bool
    rogue: ManagedProcess
    root: Path


@pytest.fixture(scope="module")
def study(federation: LoopbackFederation, tmp_path_factory: pytest.TempPathFactory) -> StudyRun:
    """One granted study; apec's node is crashed right after it reserved its round's ε."""
    root = tmp_path_factory.mktemp("study")
    rogue = federation.start_node(
        CRASHES, keys_dir=_rogue_keys(federation.keys, CRASHES, root), name="rogue", max_wait_time_s=20
    )
    config = StudyConfig.from_run_config(
        {
            "study-id": STUDY_ID,
            "task": "employment_outcome",
            "sites": ",".join(SITES),
            "num-server-rounds": 1,
            "min-sites": 1,
            "batch-size": 64,
            "round-timeout": 240.0,
            "study-dir": str(root / "study"),
        }
    )
    config = request_grant(config, purpose=PURPOSE, broker_url=federation.broker_url, keys=federation.keys)
    with federation.control() as control:
        config = with_node_sites(control, config)
        run_id = control.start_run(REPO, config.to_run_config())
        crashed = False
        deadline = time.monotonic() + 200
        while not crashed and time.monotonic() < deadline:
            if _reservations(_audit_events(federation, root / "watch.jsonl"), CRASHES):
                federation.supervisor.crash(f"node-{CRASHES}")
                crashed = True
            elif control.run_status(run_id)[0] == "finished":
                break
            time.sleep(0.3)
        outcome = control.wait(run_id, timeout_s=300)
    report = json.loads((config.study_dir / "report.json").read_text(encoding="utf-8"))
    return StudyRun(outcome=outcome, report=report, crashed=crashed, rogue=rogue, root=root)


def test_the_study_runs_to_completion_on_the_deployment_engine(study: StudyRun) -> None:
    assert study.outcome.completed, study.outcome
    assert study.report["status"] == "completed", study.report
    site = study.report["sites"][TRAINS]
    assert site["status"] == "trained" and site["rounds_trained"] == [1]
    assert 0 < site["epsilon"] <= site["target_epsilon"] + 1e-6


def test_the_node_that_trained_had_its_superexec_woken_by_its_supernode(
    study: StudyRun, federation: LoopbackFederation
) -> None:
    """`r2dde node start`'s SuperExec listens on its wake socket (node_agent.deployment.superexec_wake):
    its SuperNode's wakes reach it, and it did not fall back to Flower's poll."""
    assert study.outcome.completed
    path = wake_path(launcher_folder(federation.workdir / f"flwr-{TRAINS}"))
    assert wake(path), f"no SuperExec listens at {path}"
    assert "no SuperExec wake socket" not in federation.supervisor[f"node-{TRAINS}"].log_text()


def test_a_node_killed_mid_round_is_left_out_and_its_reservation_stays_charged(
    study: StudyRun, federation: LoopbackFederation
) -> None:
    assert study.crashed, "apec never reserved its round's ε: the crash was not injected"
    assert study.report["sites"][CRASHES]["status"] != "trained"
    failures = study.report["sites"][CRASHES]["failures"]
    assert any("Node Unavailable" in f for f in failures), study.report[
        "sites"
    ]  # named, though it never replied
    reservations = _reservations(_audit_events(federation, study.root / "after.jsonl"), CRASHES)
    assert reservations and all("budget.reserved" in kinds for kinds in reservations.values())
    assert not any("budget.released" in kinds for kinds in reservations.values())
    with BrokerClient.from_folder(federation.keys, Role.AUDITOR, base_url=federation.broker_url) as auditor:
        balance = auditor.balance("parcours", CRASHES)
    assert balance.reservations >= 1 and balance.epsilon > 0  # counted as spent, never refunded


def test_a_node_whose_site_policy_refuses_the_purpose_declines_and_the_report_says_so(
    study: StudyRun, federation: LoopbackFederation
) -> None:
    site = study.report["sites"][DECLINES]
    assert site["status"] == "declined" and site["rounds_trained"] == []
    assert any(PURPOSE in reason or "purpose" in reason for reason in site["declined"]), site["declined"]
    # issue 12: the partner sees the refusal in its own node's log, with the rule (not only "Sent")
    node_log = federation.supervisor[f"node-{DECLINES}"].log_text()
    assert f"site {DECLINES} declined — rule" in node_log, node_log[-2000:]


def test_a_node_with_an_unregistered_key_is_refused_at_the_superlink(
    study: StudyRun, federation: LoopbackFederation
) -> None:
    rogue = study.rogue
    deadline = time.monotonic() + 30
    while rogue.alive() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not rogue.alive() and rogue.popen.returncode != 0, rogue.log_text()[-1500:]
    assert "Failed to activate SuperNode" in rogue.log_text()
    superlink_log = federation.supervisor["superlink"].log_text().splitlines()
    refusals = [line for line in superlink_log if "activate-node" in line]
    assert any("No SuperNode found with the given public key" in line for line in refusals)
    with federation.control() as control:
        statuses = control.node_statuses()
    assert set(statuses) == set(SITES)  # the rogue never became a node of the federation
    assert study.report["sites"][CRASHES]["rounds_trained"] == []


def test_the_audit_export_verifies(study: StudyRun, federation: LoopbackFederation) -> None:
    path = study.root / "audit.jsonl"
    events = _audit_events(federation, path)
    kinds = {str(e["kind"]) for e in events}
    assert {"study.requested", "grant.issued", "budget.reserved", "budget.committed"} <= kinds
    verification = verify_export(path)
    assert verification.ok, [str(p) for p in verification.problems]


def test_a_client_pinning_another_ca_cannot_reach_the_superlink(
    federation: LoopbackFederation, tmp_path: Path
) -> None:
    other = write_tls_material(tmp_path, ["apec"])
    with (
        pytest.raises(DeploymentError, match="SuperLink"),
        SuperLinkControl(federation.superlink, other.ca_certificate) as control,
    ):
        control.node_statuses()
