"""What a node's round report tells whoever reads the broker's audit export (issue 10, item 10).

The attack: a person objected (GDPR art. 21); the auditor's export of the broker should not say
whether that person is among a site's people. On the code before, each train round's
``node.report`` carried the exact ``records_used`` and ``opt_outs_applied``: a site holding the
objector reported one opt-out applied, the same site without them none. Now the report carries the
position in the opt-out list the node applied, a digest of that list and a salted commitment to the
counts, which stay in the node's own round record.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
from flwr.app import ConfigRecord, Context, Message, Metadata, RecordDict

from anonymization.identifiers import get_identifier_type
from contracts.records import model_arrays
from coordinator.grant import request_grant
from coordinator.study_config import StudyConfig
from node_agent import client_app, site_study
from node_agent.round_record import counts_commitment
from node_agent.settings import NodeSettings
from simulations.objections import choose_objectors, register_objections
from simulations.partners import generate_partners
from tasks.models import mlp
from trust_broker.client import BrokerClient
from trust_broker.embedded import EmbeddedBroker
from trust_broker.provision import ProvisionedFolder, provision
from trust_broker.roles import Role

SITE = "apec"
#: What the attacker cannot use: the broker's reservation id and the node's salted commitment
#: (random each run, in both worlds alike).
RANDOM_PER_RUN = ("reservation_id", "counts_commitment")


def _message(config: StudyConfig, width: int) -> Message:
    content = RecordDict(
        {
            "arrays": model_arrays(mlp(width, (64, 32), seed=1)),
            "config": ConfigRecord({**config.instructions().to_config(), "server-round": 1}),
        }
    )
    metadata = Metadata(
        run_id=1,
        message_id="train-1",
        src_node_id=0,
        dst_node_id=1,
        reply_to_message_id="",
        group_id="1",
        created_at=time.time(),
        ttl=3600.0,
        message_type="train",
    )
    message: Message = Message(content=content, metadata=metadata)  # type: ignore[call-overload]
    return message


def _world(root: Path, keys: ProvisionedFolder, *, objector_at_the_site: bool) -> tuple[dict[str, Any], Path]:
    """One train round at a site after one person objected; the site holds them or not (the same
    keys, hence the same pseudonym in the registry, in both worlds). Returns the node.report
    payload as the audit export shows it, and the node's state folder."""
    generate_partners(root / "data", seed=7, people=900, sites=(SITE,))
    table = root / "data" / SITE / "parcours.csv"
    (objector,) = choose_objectors(table, SITE, 1, seed=3)
    if not objector_at_the_site:
        nir = get_identifier_type("nir")
        frame = pd.read_csv(table, dtype=str, keep_default_na=False)
        keep = [nir.normalize(v) != nir.normalize(objector) for v in frame["nir"]]
        frame[keep].to_csv(table, index=False, lineterminator="\n")
    with EmbeddedBroker(f"sqlite:///{root / 'broker.db'}", keys.root) as broker:
        register_objections(keys.root, broker.url, SITE, [objector], keys.node_dir(SITE) / "linkage.key")
        config = StudyConfig(
            study_id="report-attack",
            task="employment_outcome",
            sites=(SITE,),
            min_sites=1,
            num_server_rounds=1,
            study_dir=root,
        )
        config = request_grant(
            config, purpose="autodiagnostic_mobilite", broker_url=broker.url, keys=keys.root
        )
        settings = NodeSettings(
            site=SITE, data_dir=root / "data" / SITE, keys_dir=keys.node_dir(SITE), broker_url=broker.url
        )
        site_study._SESSIONS.clear()
        study = site_study.open_site_study(settings, config.instructions(), client_app._gate)
        context = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
        client_app._train(study, _message(config, study.data.x_train.shape[1]), context)
        site_study._SESSIONS.clear()
        with BrokerClient.from_folder(keys.root, Role.AUDITOR, base_url=broker.url) as auditor:
            export = auditor.export_audit(root / "audit.jsonl")
    events = [json.loads(line) for line in export.read_text().splitlines()]
    (report,) = [e["payload"] for e in events if e.get("kind") == "node.report"]
    return report, settings.state_folder


def _readable(report: dict[str, Any]) -> dict[str, Any]:
    notes = {k: v for k, v in dict(report.get("notes") or {}).items() if k not in RANDOM_PER_RUN}
    return {k: v for k, v in report.items() if k not in RANDOM_PER_RUN} | {"notes": notes}


def test_the_audit_export_does_not_tell_whether_the_objector_is_at_the_site(tmp_path: Path) -> None:
    keys = provision(tmp_path / "keys", (SITE,))
    holding, state = _world(tmp_path / "holding", keys, objector_at_the_site=True)
    without, _ = _world(tmp_path / "without", keys, objector_at_the_site=False)
    assert _readable(holding) == _readable(without)
    assert holding["opt_out_cursor"] >= 1  # what an auditor needs: the list position applied ...
    assert len(holding["notes"]["opt_out_digest"]) == 64  # ... and a digest of the list read
    # The exact counts stay at the node, for the partner's DPO, who can open the commitment to an auditor.
    (record,) = [json.loads(p.read_text()) for p in state.glob("rounds-*.json")]
    kept = record["rounds"]["1"]["counts"]
    assert kept["opt_outs_applied"] == 1
    exact = {k: kept[k] for k in ("opt_outs_applied", "records_used")}
    assert counts_commitment(kept["salt"], exact) == holding["notes"]["counts_commitment"]
