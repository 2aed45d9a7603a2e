"""Command lines: `r2dde broker serve` fails clearly on bad configuration; `r2dde audit export` works."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from broker_support import Broker, dpsgd
from typer.testing import CliRunner

from trust_broker.audit.export_cli import export_command, register
from trust_broker.audit.verify import verify_export
from trust_broker.cli import app as broker_app
from trust_broker.client import GrantNotUsable
from trust_broker.provision import ProvisionedFolder
from trust_broker.roles import Role
from trust_broker.service import BrokerSettings


def test_serve_reports_a_missing_key_folder_without_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        broker_app, ["serve", "--keys", str(tmp_path / "none"), "--db", str(tmp_path / "b.db")]
    )
    assert result.exit_code == 2
    assert "participants" in result.output
    assert "Traceback" not in result.output


def test_serve_reports_a_broken_policy_document(folder: ProvisionedFolder, tmp_path: Path) -> None:
    (tmp_path / "pol" / "purposes").mkdir(parents=True)
    (tmp_path / "pol" / "sites").mkdir()
    (tmp_path / "pol" / "purposes" / "bad.yaml").write_text("id: bad\nlabel_fr: [unclosed\n")
    result = CliRunner().invoke(
        broker_app,
        [
            "serve",
            "--keys",
            str(folder.root),
            "--db",
            str(tmp_path / "b.db"),
            "--policies",
            str(tmp_path / "pol"),
        ],
    )
    assert result.exit_code == 2
    assert "bad.yaml" in result.output


def test_audit_export_from_the_database_verifies(broker: Broker, tmp_path: Path) -> None:
    import typer

    study = broker.grant()
    broker.client(Role.NODE, "apec").reserve(
        request_id="r", study_id=study, dataset="parcours", mechanism=dpsgd(), examples=10
    )
    app = typer.Typer()
    app.command("noop")(lambda: None)
    register(app)
    db_url = str(broker.context.store.engine.url)  # type: ignore[attr-defined]
    out = tmp_path / "export.jsonl"
    result = CliRunner().invoke(
        app, ["export", "--out", str(out), "--keys", str(broker.folder.root), "--db", db_url]
    )
    assert result.exit_code == 0, result.output
    assert verify_export(out).ok
    assert export_command is not None


def test_reserve_under_an_expired_grant_is_refused(make_broker) -> None:  # noqa: ANN001
    broker = make_broker(settings=BrokerSettings(grant_ttl=dt.timedelta(seconds=-5)))
    study = broker.grant()
    with pytest.raises(GrantNotUsable) as refused:
        broker.client(Role.NODE, "apec").reserve(
            request_id="r", study_id=study, dataset="parcours", mechanism=dpsgd(), examples=10
        )
    assert refused.value.rule == "grant.expired"
