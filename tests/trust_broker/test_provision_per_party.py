"""Keys each party holds itself (issue 12, item 7): every node generates its own key pairs and exports
only public keys; the linkage key is made among the nodes and sealed node to node, so neither the
trusted third party (who runs the broker) nor the Region ever holds it; `.gitignore` covers keys."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from node_agent.cli import app as node_cli
from trust_broker.provision.cli import app as provision_cli
from trust_broker.provision.keys import encode_public_key, load_public_key

SITES = ("france_travail", "apec", "missions_locales")
REPO = Path(__file__).resolve().parents[2]


def _ok(app, args: list[str]) -> str:  # noqa: ANN001
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("federation")
    exports = root / "exports"  # what travels to the trusted third party: public files only
    homes = {site: root / f"home-{site}" / "node" for site in SITES}
    for site, home in homes.items():
        _ok(node_cli, ["keygen", "--site", site, "--keys", str(home)])
        shutil.copytree(home / "public", exports / site)
    _ok(provision_cli, ["--out", str(root / "ttp"), "--sites", ",".join(SITES), "--node-keys", str(exports)])
    # the linkage key, among the nodes: France Travail makes it and seals it for the two others
    first = homes["france_travail"]
    _ok(node_cli, ["linkage-key", "new", "--keys", str(first)])
    for site in ("apec", "missions_locales"):
        sealed = root / "mail" / f"for-{site}.sealed"
        sealed.parent.mkdir(exist_ok=True)
        _ok(
            node_cli,
            [
                "linkage-key",
                "seal",
                "--keys",
                str(first),
                "--to",
                str(exports / site / "exchange.pub"),
                "--out",
                str(sealed),
            ],
        )
        _ok(node_cli, ["linkage-key", "open", "--keys", str(homes[site]), "--sealed", str(sealed)])
    return {"root": root, "ttp": root / "ttp", "mail": root / "mail", **homes}


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_no_node_private_key_and_no_linkage_key_is_in_the_third_partys_folder(federation) -> None:
    ttp = federation["ttp"]
    secrets = {
        site: [
            (federation[site] / n).read_bytes().strip()
            for n in ("node.key", "supernode.key", "exchange.key", "linkage.key")
        ]
        for site in SITES
    }
    held = b"\n".join(p.read_bytes() for p in _files(ttp))
    for site, values in secrets.items():
        for value in values:
            assert value not in held, site
        assert not (ttp / "nodes" / site / "node.key").exists()
        assert not (ttp / "nodes" / site / "linkage.key").exists()
        assert not (ttp / "nodes" / site / "supernode.key").exists()


def test_the_registry_and_the_superlink_hold_the_keys_the_nodes_made(federation) -> None:
    ttp = federation["ttp"]
    registry = {p["kid"]: p for p in json.loads((ttp / "public" / "participants.json").read_text())}
    for site in SITES:
        mine = encode_public_key(load_public_key(federation[site] / "public" / "node.pub"))
        assert registry[f"node.{site}"]["public_key"] == mine
        registered = (ttp / "public" / "supernodes" / f"{site}.pub").read_bytes().strip()
        assert registered == (federation[site] / "public" / "supernode.pub").read_bytes().strip()


def test_every_node_holds_the_same_linkage_key_and_the_mail_does_not(federation) -> None:
    keys = {(federation[site] / "linkage.key").read_bytes().strip() for site in SITES}
    assert len(keys) == 1
    (key,) = keys
    for sealed in _files(federation["mail"]):
        assert key not in sealed.read_bytes() and key.decode() not in sealed.read_text()
    for site in SITES:
        assert (federation[site] / "linkage.key").stat().st_mode & 0o077 == 0


def test_a_sealed_linkage_key_opens_only_for_its_recipient(federation, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"  # e.g. the Region, or another node, holding someone else's mail
    _ok(node_cli, ["keygen", "--site", "region", "--keys", str(stranger)])
    result = CliRunner().invoke(
        node_cli,
        [
            "linkage-key",
            "open",
            "--keys",
            str(stranger),
            "--sealed",
            str(federation["mail"] / "for-apec.sealed"),
        ],
    )
    assert result.exit_code == 2 and "sealed for another node" in result.output
    assert not (stranger / "linkage.key").exists()


def test_gitignore_covers_keys_and_runs() -> None:
    paths = ["keys/nodes/apec/node.key", "runs/demo/report.md", "partner/linkage.key", "for-apec.sealed"]
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert sorted(done.stdout.split()) == sorted(paths)
