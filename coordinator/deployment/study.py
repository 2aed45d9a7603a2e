"""A study submitted to the deployment engine: the grant asked of the broker, then the Flower run.

The Region never sends a round without a grant: the request names the purpose, the task, the
fields every listed site exposes and the purpose allows, the rounds, the target ε and a δ the
purpose's rule admits for the largest declared dataset; the broker decides (site policies
included) and signs. The grant then travels in the run config to every node, which verifies it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from coordinator.deployment.control import DeploymentError, RunOutcome, SuperLinkControl
from coordinator.study_config import StudyConfig
from policies.loader import load_purposes, load_site_policies
from policies.models import StudyRequest
from tasks.registry import get_task
from trust_broker.client import BrokerClient, BrokerError, StudyRefused
from trust_broker.roles import Role

USE_CASE_1 = {"task": "employment_outcome", "purpose": "autodiagnostic_mobilite"}


def requestable_fields(task: str, purpose: str, sites: Sequence[str], dataset: str) -> tuple[str, ...]:
    """The task's fields that the purpose allows and every listed site exposes."""
    purposes, policies = load_purposes(), load_site_policies()
    if purpose not in purposes:
        raise DeploymentError(f"purpose {purpose!r} is unknown (known: {', '.join(sorted(purposes))})")
    allowed = set(purposes[purpose].allowed_fields)
    for site in sites:
        if site not in policies or dataset not in policies[site].datasets:
            raise DeploymentError(f"site {site!r} declares no dataset {dataset!r} in its policy document")
        allowed &= set(policies[site].datasets[dataset].exposed_fields)
    return tuple(f for f in get_task(task).default_fields() if f in allowed)


def admissible_delta(purpose: str, sites: Sequence[str], dataset: str) -> float:
    """The largest δ the purpose's rule admits for every site's declared size (δ ≤ 1/(10·n))."""
    rule = load_purposes()[purpose].delta_rule
    policies = load_site_policies()
    largest = max(policies[s].datasets[dataset].records for s in sites)
    return min(rule.max_delta, 1.0 / (rule.inverse_size_factor * largest))


def request_grant(config: StudyConfig, *, purpose: str, broker_url: str, keys: Path) -> StudyConfig:
    """Ask the broker for the study with the coordinator's key; the granted config, or a clear refusal."""
    dataset = get_task(config.task).dataset
    fields = requestable_fields(config.task, purpose, config.sites, dataset)
    delta = admissible_delta(purpose, config.sites, dataset)
    request = StudyRequest(
        study_id=config.study_id,
        purpose_id=purpose,
        task=config.task,
        dataset=dataset,
        fields=fields,
        sites=config.sites,
        rounds=config.num_server_rounds,
        target_epsilon=config.target_epsilon,
        delta=delta,
        coordinator="coordinator",
        requested_by="coordinator",
    )
    try:
        with BrokerClient.from_folder(keys, Role.REGION, base_url=broker_url) as region:
            granted = region.request_study(request)
    except StudyRefused as exc:
        reasons = "; ".join(f"{r.rule} ({r.subject}): {r.detail}" for r in exc.reasons) or exc.detail
        raise DeploymentError(f"the broker refused study {config.study_id}: {reasons}") from None
    except (BrokerError, OSError, ValueError) as exc:
        raise DeploymentError(f"asking the broker at {broker_url} for a grant: {exc}") from None
    return replace(config, grant=granted.grant, fields=fields, delta=delta)


@dataclass(frozen=True)
class DeployedStudy:
    """A finished study as the Region sees it: the Flower run's outcome and the report, if readable."""

    outcome: RunOutcome
    report: Mapping[str, Any] | None

    def site_lines(self) -> list[str]:
        if not self.report:
            return []
        lines = []
        for site, record in dict(self.report.get("sites", {})).items():
            why = "; ".join(record.get("declined") or record.get("failures") or [])
            eps = record.get("epsilon", 0.0)
            line = f"{site:<18} {record.get('status', '?'):<9} ε={eps:.3f}"
            lines.append(f"{line}  ({why})" if why else line)
        return lines


def run_deployed_study(
    control: SuperLinkControl, app_dir: Path, config: StudyConfig, *, timeout_s: float
) -> DeployedStudy:
    """Submit ``config`` as a Flower run, wait for it, read the report the ServerApp wrote (same host)."""
    run_id = control.start_run(app_dir, config.to_run_config())
    outcome = control.wait(run_id, timeout_s=timeout_s)
    report_path = Path(config.study_dir) / "report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else None
    return DeployedStudy(outcome=outcome, report=report)
