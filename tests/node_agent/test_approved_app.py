"""In deployment a node runs only an app bundle its partner approved (issue 10, item 6): the check
runs in the partner's installed code, between Flower pulling the bundle and installing or importing
any of it."""

from __future__ import annotations

import inspect
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from flwr.cli.build import build_fab_from_files
from flwr.supercore.fab import Fab
from flwr.supernode.runtime import run_clientapp
from typer.testing import CliRunner

from node_agent.cli import app as node_cli
from node_agent.deployment.approved_app import (
    AppNotApproved,
    code_digest,
    guarded,
    install_guard,
    write_launcher,
)

PYPROJECT = b"""[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "reviewed-app"
version = "1.0.0"

[tool.flwr.app]
publisher = "region"

[tool.flwr.app.components]
serverapp = "app.server:app"
clientapp = "app.client:app"

[tool.flwr.app.config]
num-server-rounds = 3
"""

CLIENT = b"from flwr.clientapp import ClientApp\napp = ClientApp()\n"
ALTERED = CLIENT + b"import pathlib; pathlib.Path('RAN').write_text('raw rows sent')\n"


def _bundle(client: bytes, pyproject: bytes = PYPROJECT) -> bytes:
    files = {"pyproject.toml": pyproject, "app/__init__.py": b"", "app/client.py": client}
    files["app/server.py"] = b""
    return build_fab_from_files(files)[0]


def _pull(fab: bytes, keys_dir: Path):
    """What Flower's pull_task_input returns, for a node whose config names its keys folder."""
    context = SimpleNamespace(node_config={"site": "apec", "keys-dir": str(keys_dir)})
    return lambda client: ("message", context, "run", Fab("hash", fab, {}))


@pytest.fixture
def approved(tmp_path) -> Path:
    keys = tmp_path / "keys"
    keys.mkdir()
    (tmp_path / "reviewed.fab").write_bytes(_bundle(CLIENT))
    result = CliRunner().invoke(
        node_cli, ["approve-app", "--fab", str(tmp_path / "reviewed.fab"), "--keys", str(keys)]
    )
    assert result.exit_code == 0, result.output
    return keys


def test_a_bundle_whose_clientapp_was_altered_is_refused_before_it_runs(approved, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, _, _, fab = guarded(_pull(_bundle(CLIENT), approved))(None)  # the reviewed app passes
    with pytest.raises(AppNotApproved, match="node.app_digest"):
        guarded(_pull(_bundle(ALTERED), approved))(None)
    assert not (tmp_path / "RAN").exists()
    # Pointing the entry point elsewhere is a change too, even with the same files.
    moved = PYPROJECT.replace(b'clientapp = "app.client:app"', b'clientapp = "app.server:app"')
    with pytest.raises(AppNotApproved):
        guarded(_pull(_bundle(CLIENT, moved), approved))(None)


def test_the_run_config_the_coordinator_writes_per_study_does_not_change_the_digest():
    other_study = PYPROJECT.replace(b"num-server-rounds = 3", b'num-server-rounds = 5\ngrant = "eyJ"')
    assert code_digest(_bundle(CLIENT)) == code_digest(_bundle(CLIENT, other_study))


def test_a_node_without_an_allow_list_runs_nothing(tmp_path):
    with pytest.raises(AppNotApproved, match="approved-apps.txt is missing"):
        guarded(_pull(_bundle(CLIENT), tmp_path))(None)


def test_flowers_clientapp_pulls_then_installs_and_the_guard_sits_between(monkeypatch):
    monkeypatch.setattr(run_clientapp, "pull_task_input", run_clientapp.pull_task_input)
    install_guard()
    assert run_clientapp.pull_task_input.r2dde_guarded
    source = inspect.getsource(run_clientapp.run_clientapp)  # Flower 1.42: the order the guard relies on
    assert (
        source.index("pull_task_input(client)")
        < source.index("install_from_fab(")
        < source.index("load_client_app_fn(")
    )


def test_the_launcher_runs_flowers_clientapp_through_the_guard(tmp_path):
    launcher = write_launcher(tmp_path / "bin")
    shown = subprocess.run([str(launcher), "--help"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "--runtime-api-address" in shown.stdout


def test_the_supernode_finds_the_partners_launcher_first(tmp_path):
    import shutil

    from node_agent.cli import supernode_environment

    env = supernode_environment(tmp_path / "flwr")
    found = shutil.which("flwr-clientapp", path=env["PATH"])
    assert found is not None and Path(found).parent == (tmp_path / "flwr" / "r2dde-bin").resolve()
    assert "node_agent.deployment.approved_app" in Path(found).read_text()
