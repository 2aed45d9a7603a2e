"""A study submitted to the deployment engine: the Flower run of a config already granted by the
broker (`coordinator.grant.request_grant`), and the report it leaves."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from coordinator.deployment.control import RunOutcome, SuperLinkControl
from coordinator.study_config import StudyConfig

USE_CASE_1 = {"task": "employment_outcome", "purpose": "autodiagnostic_mobilite"}


@dataclass(frozen=True)
class DeployedStudy:
    """A finished study as the Region sees it: the Flower run's outcome and the report, if readable."""

    outcome: RunOutcome
    report: Mapping[str, Any] | None

    @property
    def status(self) -> str:
        """The study's own status: the report's word wins over the Flower run's.

        A Flower run "completes" whenever the ServerApp returns, also after it wrote an *aborted*
        report (too few sites, every site declined): only the report says whether the study did.
        """
        if not self.outcome.completed:
            return "failed"
        if self.report is None:
            return "unknown"
        return str(self.report.get("status", "unknown"))

    @property
    def succeeded(self) -> bool:
        return self.status == "completed"

    def verdict(self) -> str:
        """One line for the operator, e.g. ``aborted: fewer than 2 sites trained in round 1``."""
        if not self.outcome.completed:
            return f"did NOT complete: the Flower run ended {self.outcome.sub_status or self.outcome.status}"
        if self.report is None:
            return "finished, but its report was not found: the study's outcome is unknown"
        reason = str(self.report.get("reason") or "")
        return f"{self.status}" + (f": {reason}" if reason and not self.succeeded else "")

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


def with_node_sites(control: SuperLinkControl, config: StudyConfig) -> StudyConfig:
    """The study's config with the SuperLink's node id -> site registrations of its sites."""
    names = {node: site for node, site in control.node_sites().items() if site in config.sites}
    return replace(config, node_sites=",".join(f"{node}={site}" for node, site in sorted(names.items())))


def run_deployed_study(
    control: SuperLinkControl, app_dir: Path, config: StudyConfig, *, timeout_s: float
) -> DeployedStudy:
    """Submit ``config`` as a Flower run, wait for it, read the report the ServerApp wrote (same host)."""
    config = with_node_sites(control, config)
    run_id = control.start_run(app_dir, config.to_run_config())
    outcome = control.wait(run_id, timeout_s=timeout_s)
    report_path = Path(config.study_dir) / "report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else None
    return DeployedStudy(outcome=outcome, report=report)
