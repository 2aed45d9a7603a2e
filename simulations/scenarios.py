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

from flwr.serverapp import ServerApp

from coordinator.analytics import QueryStudy
from coordinator.journal import RoundListener
from coordinator.study_config import StudyConfig
from coordinator.study_folder import section
from node_agent.settings import NodeSettings
from tasks.analytics import QuerySpec
from tasks.formations import FORMATIONS_TASK
from tasks.registry import TaskSpec, get_task

from . import region
from .adult import write_adult_sites
from .companies import DEFAULT_HOLDERS, generate_companies
from .engine import run_simulated_study, site_nodes
from .objections import choose_objectors, register_objections
from .partners import DEFAULT_SITES, generate_partners
from .usecase3 import SITES as USECASE3_SITES
from .usecase3 import generate_formations

#: Defective rows written at the first company holder, so that the report shows them left out.
COMPANY_BAD_ROWS = 3

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
    #: Asks the broker for the study's grant: (what the simulation engine runs, the grant).
    request: Callable[[StudyConfig, str, str, Path], tuple[StudyConfig | QueryStudy, str]] | None = None
    default_people: int = 6000
    #: The sites of an N-site run (use case 1 grows to a region's 100); default: the first N defaults.
    sites_for: Callable[[int], tuple[str, ...]] | None = None
    max_sites: int = 0

    #: What the population size counts (the CLI's --people or --companies).
    unit: str = "people"
    #: A ServerApp of its own (use case 2), else the training study's.
    server_app: Callable[[StudyConfig, RoundListener | None], ServerApp] | None = None
    #: Sections only the simulator can compute (evaluation against hidden truth, partners' local reports).
    evaluate: Callable[[Path, dict[str, object], int], dict[str, object]] | None = None

    def sites(self, count: int) -> tuple[str, ...]:
        """The ``count`` sites of a run; ``ValueError`` beyond what the scenario can lay out."""
        if count > self.site_limit:
            raise ValueError(f"scenario {self.name} has {self.site_limit} sites at most")
        return self.sites_for(count) if self.sites_for else self.default_sites[:count]

    @property
    def site_limit(self) -> int:
        return self.max_sites or len(self.default_sites)

    @property
    def task_spec(self) -> TaskSpec:
        return FORMATIONS_TASK if self.task == FORMATIONS_TASK.name else get_task(self.task)


def _partners(root: Path, sites: Sequence[str], seed: int, people: int) -> dict[str, Path]:
    floor = region.MIN_SITE_PEOPLE if any(region.is_region_site(s) for s in sites) else 0
    return generate_partners(root, seed=seed, people=people, sites=sites, min_site_people=floor)


def _formations(root: Path, sites: Sequence[str], seed: int, people: int) -> dict[str, Path]:
    return generate_formations(root, seed=seed, people=people, sites=sites)


def _training_request(
    base: StudyConfig, purpose: str, broker_url: str, keys: Path, policies: Path | None = None
) -> tuple[StudyConfig | QueryStudy, str]:
    from coordinator.grant import request_grant

    config = request_grant(base, purpose=purpose, broker_url=broker_url, keys=keys, policies_dir=policies)
    return config, config.grant


def _usecase3_request(
    base: StudyConfig, purpose: str, broker_url: str, keys: Path
) -> tuple[StudyConfig | QueryStudy, str]:
    """The three releases of use case 3 under one grant of the study's ε per site."""
    from coordinator.value_added import PROFILE_FIELDS
    from tasks.formations import FIELDS

    used = (
        *PROFILE_FIELDS,
        "training_domain",
        "zone_emploi",
        "provider",
        "employed_6m",
        "durable_employment",
    )
    fields = tuple(dict.fromkeys(FIELDS[f].source for f in used))
    return _granted_query_study(base, purpose, broker_url, keys, fields, base.target_epsilon, kind="usecase3")


def _granted_query_study(
    base: StudyConfig,
    purpose: str,
    broker_url: str,
    keys: Path,
    fields: Sequence[str],
    epsilon: float,
    **study: object,
) -> tuple[QueryStudy, str]:
    """Ask the broker for a statistics study's grant, and the QueryStudy that runs under it."""
    from coordinator.query_grant import min_cell_size, request_query_grant, study_request

    request = study_request(base.study_id, purpose, base.sites, tuple(fields), epsilon)
    grant = request_query_grant(request, broker_url=broker_url, keys=keys)
    query_study = QueryStudy(
        study_id=base.study_id,
        sites=base.sites,
        study_dir=base.study_dir,
        grant=grant,
        delta=request.delta,
        epsilon=epsilon,
        min_cell_size=min_cell_size(purpose),
        **study,  # type: ignore[arg-type]
    )
    return query_study, grant


def _companies(root: Path, sites: Sequence[str], seed: int, companies: int) -> dict[str, Path]:
    return generate_companies(root, seed=seed, companies=companies, sites=sites, bad_rows=COMPANY_BAD_ROWS)


def _company_server_app(config: StudyConfig, on_round: RoundListener | None) -> ServerApp:
    from coordinator.company_clustering import company_server_app

    return company_server_app(config, None, on_round)


def _company_evaluation(out: Path, report: dict[str, object], seed: int) -> dict[str, object]:
    from .usecase2 import bad_input_summary, evaluate_quality

    return {
        "quality": evaluate_quality(out, report, seed),
        "bad_input": bad_input_summary(out / "data", list(section(report["sites"])), str(report["study_id"])),
    }


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
            sites_for=region.usecase1_sites,
            max_sites=region.REGION_SITES,
        ),
        Scenario(
            "usecase3",
            "Commande publique de formation: employment six months after training, DP statistics",
            FORMATIONS_TASK.name,
            "commande_publique_formation",
            USECASE3_SITES,
            _formations,
            governed=True,
            request=_usecase3_request,
            default_people=60000,
        ),
        Scenario(
            "usecase2",
            "Besoins en compétences des TPE/PME: federated DP k-means of companies and skill needs",
            "company_clustering",
            "besoins_competences_tpe_pme",
            DEFAULT_HOLDERS,
            _companies,
            governed=True,
            unit="companies",
            server_app=_company_server_app,
            evaluate=_company_evaluation,
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
    from trust_broker.audit.verify import verify_export
    from trust_broker.client import BrokerClient
    from trust_broker.embedded import EmbeddedBroker
    from trust_broker.grants import verify_grant
    from trust_broker.provision import ProvisionedFolder, provision
    from trust_broker.roles import Role

    out = base.study_dir
    narrate("provisioning keys (broker, coordinator, auditor, one per node, the nodes' linkage key)")
    keys: ProvisionedFolder = provision(out / "keys", base.sites)
    spec = scenario.task_spec
    policies = None
    if any(region.is_region_site(s) for s in base.sites):
        narrate(f"writing the site policies of {len(base.sites)} sites into {out / 'policies'}")
        policies = region.write_site_policies(out / "policies", base.sites)
        for site in base.sites:
            region.node_policy(policies, site, keys.node_dir(site))
    with EmbeddedBroker(f"sqlite:///{(out / 'broker.db').resolve()}", keys.root, policies) as broker:
        narrate(f"trust broker listening on {broker.url}; asking for a grant for purpose {scenario.purpose}")
        if scenario.request is None:
            config, token = _training_request(base, scenario.purpose, broker.url, keys.root, policies)
        else:
            config, token = scenario.request(base, scenario.purpose, broker.url, keys.root)
        grant = verify_grant(token, keys.broker_public_key(), site=base.sites[0])
        if objections and scenario.unit == "people":
            site = base.sites[0]
            narrate(f"{objections} people object at {site}: its node posts their linkage pseudonyms")
            nirs = choose_objectors(
                out / "data" / site / spec.file_name, site, objections, base.seed, spec.validate
            )
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
        server_app = None
        if scenario.server_app is not None:
            if not isinstance(config, StudyConfig):
                raise TypeError(f"scenario {scenario.name}: its ServerApp runs a StudyConfig, not a query")
            server_app = scenario.server_app(config, on_round)
        report = run_simulated_study(config, nodes, on_round=on_round, server_app=server_app)
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
    if scenario.evaluate is not None and report.get("status") == "completed":
        narrate("evaluating against the hidden truth (simulator only)")
        report.update(scenario.evaluate(out, report, base.seed))
    return report


def new_study_id(scenario: str) -> str:
    return f"{scenario}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"


def run_query_simulation(spec: QuerySpec, data_dir: Path, out: Path, repeat: int = 1) -> dict[str, object]:
    """`r2dde query --data`: one analyst's table over existing partner folders, fully governed
    (keys, embedded broker, grant, opt-out registry, audit export verified)."""
    from coordinator.analytics_report import write_query_folder

    def link(root: Path, sites: Sequence[str], seed: int, people: int) -> dict[str, Path]:
        root.mkdir(parents=True, exist_ok=True)
        for site in sites:
            (root / site).symlink_to((data_dir / site).resolve(), target_is_directory=True)
        return {site: root / site / FORMATIONS_TASK.file_name for site in sites}

    def request(base: StudyConfig, purpose: str, broker_url: str, keys: Path) -> tuple[QueryStudy, str]:
        return _granted_query_study(
            base,
            purpose,
            broker_url,
            keys,
            spec.fields(),
            spec.epsilon,
            kind="table",
            query=spec.to_json(),
            extra={"repeat": repeat} if repeat > 1 else {},
        )

    scenario = Scenario(
        "query", spec.title or spec.id, FORMATIONS_TASK.name, spec.purpose, spec.sites, link, True, request
    )
    base = StudyConfig(
        study_id=f"{spec.id}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}",
        task=FORMATIONS_TASK.name,
        sites=spec.sites,
        target_epsilon=spec.epsilon,
        study_dir=out,
    )
    report = run_scenario(scenario, base, people=0, narrate=lambda _: None)
    write_query_folder(out, report)
    return report
