"""Named scenarios `r2dde simulate` can run: which data to synthesize and which study to ask for.

A scenario that touches personal data runs the whole governed path: keys provisioned, an
embedded trust broker (SQLite) grants the study, nodes verify the grant, anonymize, reserve and
commit their ε, and the broker's audit export is verified at the end.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from coordinator.journal import RoundListener
from coordinator.study_config import StudyConfig
from node_agent.settings import NodeSettings
from tasks.registry import get_task

from .adult import write_adult_sites
from .engine import run_simulated_study, site_nodes
from .objections import choose_objectors, register_objections
from .partners import DEFAULT_SITES, generate_partners

#: What a step of a scenario tells the person watching (the CLI shows it as a status line).
Narrate = Callable[[str], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    task: str
    purpose: str
    default_sites: tuple[str, ...]
    write_data: Callable[[Path, Sequence[str], int, int], dict[str, Path]]
    governed: bool


def _partners(root: Path, sites: Sequence[str], seed: int, people: int) -> dict[str, Path]:
    return generate_partners(root, seed=seed, people=people, sites=sites)


def _adult(root: Path, sites: Sequence[str], seed: int, people: int) -> dict[str, Path]:
    return write_adult_sites(root, len(sites), seed)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "usecase1",
            "Autodiagnostic de mobilité: return to employment within 6 months, across partners",
            "employment_outcome",
            "autodiagnostic_mobilite",
            DEFAULT_SITES,
            _partners,
            governed=True,
        ),
        Scenario(
            "adult",
            "UCI Adult income benchmark over non-IID sites (public data, no broker)",
            "adult_income",
            "adult_income",
            ("site_1", "site_2", "site_3", "site_4"),
            _adult,
            governed=False,
        ),
    )
}


def run_scenario(
    scenario: Scenario,
    base: StudyConfig,
    *,
    people: int,
    narrate: Narrate,
    on_round: RoundListener | None = None,
    objections: int = 0,
) -> dict[str, object]:
    out = base.study_dir
    if out.exists():
        narrate(f"replacing the previous run in {out}")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    narrate(f"synthesizing partner data for {', '.join(base.sites)}")
    scenario.write_data(out / "data", base.sites, base.seed, people)
    if not scenario.governed:
        return run_simulated_study(base, site_nodes(out / "data", base.sites), on_round=on_round)
    return _governed(scenario, base, narrate=narrate, on_round=on_round, objections=objections)


def _governed(
    scenario: Scenario,
    base: StudyConfig,
    *,
    narrate: Narrate,
    on_round: RoundListener | None,
    objections: int,
) -> dict[str, object]:
    from coordinator.grant import request_grant
    from trust_broker.audit.verify import verify_export
    from trust_broker.client import BrokerClient
    from trust_broker.embedded import EmbeddedBroker
    from trust_broker.grants import verify_grant
    from trust_broker.provision import ProvisionedFolder, provision
    from trust_broker.roles import Role

    out = base.study_dir
    narrate("provisioning keys (broker, coordinator, auditor, one per node, the nodes' linkage key)")
    keys: ProvisionedFolder = provision(out / "keys", base.sites)
    spec = get_task(scenario.task)
    with EmbeddedBroker(f"sqlite:///{(out / 'broker.db').resolve()}", keys.root) as broker:
        narrate(f"trust broker listening on {broker.url}; asking for a grant for purpose {scenario.purpose}")
        config = request_grant(base, purpose=scenario.purpose, broker_url=broker.url, keys=keys.root)
        grant = verify_grant(config.grant, keys.broker_public_key(), site=base.sites[0])
        if objections:
            site = base.sites[0]
            narrate(f"{objections} people object at {site}: its node posts their linkage pseudonyms")
            nirs = choose_objectors(out / "data" / site / spec.file_name, site, objections, base.seed)
            register_objections(keys.root, broker.url, site, nirs, keys.linkage_key_path(site))
        nodes = [
            NodeSettings(
                site=s,
                data_dir=out / "data" / s,
                keys_dir=keys.node_dir(s),
                broker_url=broker.url,
                receipts_dir=out / "receipts",
            )
            for s in base.sites
        ]
        narrate("running the federated study (Flower simulation engine)")
        report = run_simulated_study(config, nodes, on_round=on_round)
        with BrokerClient.from_folder(keys.root, Role.AUDITOR, base_url=broker.url) as auditor:
            auditor.export_audit(out / "audit.jsonl")
    narrate("verifying the audit export as an auditor would (chain, signatures, ε recomputed)")
    receipts = out / "receipts"
    verification = verify_export(out / "audit.jsonl", receipts=receipts if receipts.exists() else None)
    report["grant"] = {
        "purpose": grant.purpose,
        "fields": list(grant.fields),
        "policy_digest": grant.policy_digest,
    }
    report["audit"] = {
        "export": "audit.jsonl",
        "verified": verification.ok,
        "receipts_checked": verification.receipts,
        "problems": [str(p) for p in verification.problems],
    }
    return report


def new_study_id(scenario: str) -> str:
    return f"{scenario}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
