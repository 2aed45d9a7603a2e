"""`r2dde coordinator run-study` says what the study did and exits accordingly (issue 12, item 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import coordinator.cli as cli
from coordinator.deployment.control import RunOutcome
from coordinator.deployment.study import DeployedStudy


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
        lambda control, app, study, timeout_s: DeployedStudy(outcome, report),
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
