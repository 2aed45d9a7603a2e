"""Provisioning: every key where it belongs, strict permissions, the linkage key only with the nodes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from broker_support import SITES
from typer.testing import CliRunner

from trust_broker.provision import ProvisionedFolder, load_private_key, load_public_key, provision
from trust_broker.provision.cli import app as provision_app
from trust_broker.roles import Role


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_file_is_private_and_every_folder_is_owner_only(folder: ProvisionedFolder) -> None:
    for path in folder.root.rglob("*"):
        assert _mode(path) == (0o700 if path.is_dir() else 0o600), path
    assert _mode(folder.root) == 0o700


def test_linkage_key_is_shared_by_nodes_and_absent_from_broker_and_coordinator(
    folder: ProvisionedFolder,
) -> None:
    keys = {site: folder.linkage_key_path(site).read_text().strip() for site in SITES}
    assert len(set(keys.values())) == 1
    assert len(bytes.fromhex(keys[SITES[0]])) == 32
    secret = keys[SITES[0]]
    for part in ("broker", "coordinator", "auditor", "admin", "public"):
        for path in (folder.root / part).rglob("*"):
            if path.is_file():
                assert secret not in path.read_text(), path


def test_linkage_key_file_reads_with_the_anonymization_loader(folder: ProvisionedFolder) -> None:
    keys = pytest.importorskip("anonymization.keys")
    key = keys.load_linkage_key(folder.linkage_key_path("apec"))
    assert key is not None


def test_participants_registry_names_each_role_and_node_site(folder: ProvisionedFolder) -> None:
    records = {p.kid: p for p in folder.participants()}
    assert {r.role for r in records.values()} == {Role.REGION, Role.AUDITOR, Role.ADMIN, Role.NODE}
    assert {r.site for r in records.values() if r.role is Role.NODE} == set(SITES)
    for record in records.values():
        private = load_private_key(folder.private_key_path(record.role, record.site))
        assert private.public_key() == record.public_key
    assert folder.broker_private_key().public_key() == load_public_key(folder.broker_public_key_path)
    assert "broker" not in records  # the broker is not a caller of itself
    assert json.loads(folder.participants_path.read_text())[0]["public_key"]


def test_provision_refuses_to_overwrite_existing_keys(folder: ProvisionedFolder) -> None:
    with pytest.raises(FileExistsError, match="already provisioned"):
        provision(folder.root, SITES)


@pytest.mark.parametrize("bad", ["", "Apec", "apec/../x", "a b"])
def test_provision_refuses_bad_site_ids(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="site id"):
        provision(tmp_path / "out", [bad])


def test_provision_command_writes_folder_and_reports_errors_cleanly(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(provision_app, ["--out", str(tmp_path / "d"), "--sites", "apec,france_travail"])
    assert ok.exit_code == 0, ok.output
    assert ProvisionedFolder.open(tmp_path / "d").sites == ("apec", "france_travail")
    again = runner.invoke(provision_app, ["--out", str(tmp_path / "d"), "--sites", "apec"])
    assert again.exit_code == 2
    assert "already provisioned" in again.output
    assert "Traceback" not in again.output
