"""`r2dde query --data` reaches the simulation engine only through the command simulations/ builds.

The coordinator's command imports no simulation code (import-linter's ``no-simulations``
contract); without an engine it refuses ``--data`` with a clear error, and the root CLI mounts the
command that ``simulations.query_cli`` builds with the real engine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from coordinator.query_cli import query_command
from tasks.analytics import QuerySpec

QUERY_FILE = Path(__file__).resolve().parents[2] / "examples" / "queries" / "emploi_par_domaine.yaml"


def _app(command: Callable[..., None]) -> typer.Typer:
    app = typer.Typer()
    app.command("query")(command)
    app.command("other")(lambda: None)  # two commands: typer keeps the sub-command name
    return app


def test_without_an_engine_data_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(query_command()), ["query", str(QUERY_FILE), "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert "no simulation engine" in result.output


def test_the_engine_given_runs_the_checked_query_on_the_data_folder(tmp_path: Path) -> None:
    runs: list[tuple[str, Path, Path]] = []

    def engine(spec: QuerySpec, data: Path, out: Path) -> dict[str, object]:
        runs.append((spec.id, data, out))
        return {
            "study_id": spec.id,
            "status": "completed",
            "released_values": 4,
            "suppressed_values": 1,
            "audit": {"verified": True},
        }

    out = tmp_path / "study"
    args = ["query", str(QUERY_FILE), "--data", str(tmp_path), "--out", str(out)]
    result = CliRunner().invoke(_app(query_command(engine)), args)
    assert result.exit_code == 0, result.output
    assert runs == [("emploi-par-domaine", tmp_path, out)]
    assert "audit verified" in result.output


def test_the_root_cli_runs_data_on_the_simulation_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from r2dde.cli import app
    from simulations import scenarios

    runs: list[Path] = []

    def simulated(spec: QuerySpec, data: Path, out: Path) -> dict[str, object]:
        runs.append(data)
        report = {"study_id": spec.id, "status": "completed", "released_values": 1, "suppressed_values": 0}
        return {**report, "audit": {"verified": True}}

    monkeypatch.setattr(scenarios, "run_query_simulation", simulated)
    result = CliRunner().invoke(
        app, ["query", str(QUERY_FILE), "--data", str(tmp_path), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert runs == [tmp_path]
