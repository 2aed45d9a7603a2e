"""`r2dde coordinator run-study` says what the study did and exits accordingly (issue 12, item 5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import coordinator.cli as cli
from coordinator.deployment.control import DeploymentError, RunOutcome
from coordinator.deployment.study import DeployedStudy, run_deployed_study
from coordinator.study_config import StudyConfig


class _NoControl:
    """Stands for the SuperLink's Control API: the run itself is given by ``run_deployed_study``."""

    def __init__(self, *args: object) -> None: ...

    def __enter__(self) -> _NoControl:
        return self

    def __exit__(self, *args: object) -> None: ...


def _run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, report: dict[str, Any] | None) -> Any:
    outcome = RunOutcome(run_id=7, status="finished", sub_status="completed", details="", elapsed_s=3.0)
    monkeypatch.setattr("coordinator.grant.request_grant", lambda study, **kwargs: study)
    monkeypatch.setattr("coordinator.deployment.control.SuperLinkControl", _NoControl)
    monkeypatch.setattr(
        "coordinator.deployment.study.run_deployed_study",
        lambda control, app, study, timeout_s, on_round=None: DeployedStudy(outcome, report),
    )
    return CliRunner().invoke(
        cli.app,
        [
            "run-study",
            "--superlink",
            "127.0.0.1:1",
            "--ca",
            str(tmp_path / "ca.pem"),
            "--sites",
            "apec",
            "--min-sites",
            "1",
            "--broker-url",
            "http://127.0.0.1:1",
            "--keys",
            str(tmp_path),
            "--study-dir",
            str(tmp_path),
        ],
    )


def _report(status: str, reason: str = "") -> dict[str, Any]:
    return {"status": status, "reason": reason, "sites": {"apec": {"status": "declined", "epsilon": 0.0}}}


def test_an_aborted_study_exits_non_zero_and_says_aborted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    result = _run(monkeypatch, tmp_path, _report("aborted", "no site trained in round 1"))
    assert result.exit_code == 1, result.output
    assert "aborted: no site trained in round 1" in result.output
    assert "completed" not in result.output


def test_a_completed_study_exits_zero(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result = _run(monkeypatch, tmp_path, _report("completed"))
    assert result.exit_code == 0, result.output
    assert "completed" in result.output


def test_a_study_without_a_report_is_not_called_a_success(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    result = _run(monkeypatch, tmp_path, None)
    assert result.exit_code == 1, result.output
    assert "unknown" in result.output


class _SuperLink:
    """Plays the SuperLink's side of a run: the ServerApp's rounds end while the Region polls."""

    def __init__(self, study_dir: Path, rounds_then: str) -> None:
        self.study_dir = study_dir
        self.rounds_then = rounds_then  # "finish" or "vanish" (the SuperLink stops answering)

    def node_sites(self) -> dict[int, str]:
        return {}

    def start_run(self, app_dir: Path, run_config: dict[str, Any]) -> int:
        return 7

    def wait(self, run_id: int, *, timeout_s: float, on_poll: Any = None) -> RunOutcome:
        from coordinator.journal import ProgressFile

        progress = ProgressFile(self.study_dir, 3)
        for server_round in (1, 2):
            progress(server_round, ["apec"])  # what the ServerApp's journal does after each round
            on_poll("running")
        if self.rounds_then == "vanish":
            raise DeploymentError("reading the status of run 7: the SuperLink at 127.0.0.1:1 is unreachable")
        return RunOutcome(run_id, "finished", "completed", "", 1.0)


def _deployed(tmp_path: Path, then: str) -> tuple[DeployedStudy, list[tuple[int, int, list[str]]]]:
    config = StudyConfig(study_id="s1", task="employment_outcome", sites=("apec",), study_dir=tmp_path / "s1")
    rounds: list[tuple[int, int, list[str]]] = []
    deployed = run_deployed_study(
        _SuperLink(config.study_dir, then),  # type: ignore[arg-type]
        tmp_path,
        config,
        timeout_s=60,
        on_round=lambda r, n, trained: rounds.append((r, n, trained)),
    )
    return deployed, rounds


def test_run_study_is_told_each_round_as_it_ends(tmp_path: Path) -> None:
    _, rounds = _deployed(tmp_path, "finish")
    assert rounds == [(1, 3, ["apec"]), (2, 3, ["apec"])]


def test_a_superlink_that_goes_away_leaves_an_aborted_report(tmp_path: Path) -> None:
    """Issue 12, item 4: a stopped SuperLink ended run-study with Flower's message and no report."""
    deployed, _ = _deployed(tmp_path, "vanish")
    assert not deployed.succeeded and deployed.status == "aborted"
    report = json.loads((tmp_path / "s1" / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "aborted" and report["rounds"] == 2
    assert "SuperLink stopped answering after 2 finished round(s) of 3" in report["reason"]
    assert "interrompue" in (tmp_path / "s1" / "report.md").read_text(encoding="utf-8")


def test_the_superlink_keeps_its_state_on_disk_unless_told_otherwise(tmp_path: Path) -> None:
    """Issue 12, item 4: with its state in memory, a restarted SuperLink forgot every registration."""
    assert cli.state_file(None, tmp_path / "logs") == tmp_path / "logs" / "superlink-state.db"
    assert cli.state_file(tmp_path / "s.db", tmp_path / "logs") == tmp_path / "s.db"


def test_a_lost_superlink_is_named_in_our_words_not_flowers_configuration_hint() -> None:
    import click
    from flwr.cli.utils import SUPERLINK_UNAVAILABLE_MESSAGE

    from coordinator.deployment.control import _operator_errors

    with pytest.raises(DeploymentError) as caught, _operator_errors("reading the status of run 7"):
        raise click.ClickException(SUPERLINK_UNAVAILABLE_MESSAGE)
    assert "'address'" not in str(caught.value) and "the SuperLink does not answer" in str(caught.value)
