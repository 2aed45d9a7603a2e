"""A study submitted to the deployment engine: the Flower run of a config already granted by the
broker (`coordinator.grant.request_grant`), and the report it leaves."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from coordinator.deployment.control import DeploymentError, RunOutcome, SuperLinkControl
from coordinator.journal import PROGRESS_FILE, read_progress
from coordinator.study_config import StudyConfig
from tasks.record_values import read_int, read_strs

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
        if self.outcome.sub_status == "superlink_lost":
            return "aborted"
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
        if self.outcome.sub_status == "superlink_lost":
            return f"aborted: {self.report.get('reason') if self.report else self.outcome.details}"
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


#: Told each round as it ends: (round, rounds planned, sites that trained).
RoundProgress = Callable[[int, int, list[str]], None]


def run_deployed_study(
    control: SuperLinkControl,
    app_dir: Path,
    config: StudyConfig,
    *,
    timeout_s: float,
    on_round: RoundProgress | None = None,
) -> DeployedStudy:
    """Submit ``config`` as a Flower run, wait for it, read the report the ServerApp wrote (same host).

    If the SuperLink stops answering while the run is under way, the study is over for the Region:
    a report saying so (status *aborted*, the last round known to have finished) is written in the
    study folder, so that nothing looks like a success and the operator knows how far it got.
    """
    config = with_node_sites(control, config)
    folder = Path(config.study_dir)
    (folder / PROGRESS_FILE).unlink(missing_ok=True)
    run_id = control.start_run(app_dir, config.to_run_config())
    seen = 0

    def poll(status: str) -> None:
        nonlocal seen
        if on_round is None:  # nobody is watching: no need to read the file on every poll
            return
        progress = read_progress(folder)
        if progress is None or read_int(progress, "round") <= seen:
            return
        seen = read_int(progress, "round")
        on_round(seen, read_int(progress, "rounds_planned"), read_strs(progress, "trained"))

    started = time.monotonic()
    try:
        outcome = control.wait(run_id, timeout_s=timeout_s, on_poll=poll)
    except DeploymentError as exc:
        outcome = RunOutcome(run_id, "lost", "superlink_lost", str(exc), time.monotonic() - started)
        return DeployedStudy(outcome=outcome, report=write_lost_report(config, str(exc), started))
    poll("finished")
    report_path = folder / "report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else None
    return DeployedStudy(outcome=outcome, report=report)


def write_lost_report(config: StudyConfig, error: str, started: float) -> dict[str, Any]:
    """The study's report when its SuperLink went away: aborted, how far it got, nothing else known."""
    from coordinator.journal import StudyJournal
    from coordinator.report import build_report, write_study_folder

    folder = Path(config.study_dir)
    progress = read_progress(folder) or {}
    rounds = int(progress.get("round", 0))  # type: ignore[call-overload]
    report = build_report(
        config,
        StudyJournal(config.sites),
        status="aborted",
        reason=(
            f"the SuperLink stopped answering after {rounds} finished round(s) of {config.num_server_rounds}"
            f" ({error}); no model was kept"
        ),
        rounds_completed=rounds,
        round_metrics={},
        wall_seconds=time.monotonic() - started,
        feature_names=[],
    )
    write_study_folder(folder, report, None)
    return report
