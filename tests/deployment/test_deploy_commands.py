"""The commands we hand to Flower, the CLIs operators run, the app bundle and process cleanup."""

from __future__ import annotations

import io
import os
import sys
import time
import zipfile
from pathlib import Path

import pytest
import tomli
from flwr.common.config import parse_config_args
from flwr.superlink.cli.flower_superlink import _parse_args_run_superlink
from flwr.supernode.cli.flower_supernode import _parse_args_run_supernode
from typer.testing import CliRunner

from coordinator.cli import app as coordinator_cli
from coordinator.deployment.control import build_app_bundle, collect_app_files
from coordinator.deployment.processes import ProcessSupervisor, marked_processes
from coordinator.deployment.superlink import SuperLinkSettings, SuperLinkTls
from node_agent.cli import app as node_cli
from node_agent.deployment.supernode import SuperNodeSettings
from trust_broker.provision import provision
from trust_broker.provision.cli import app as provision_cli
from trust_broker.provision.tls import write_tls_material

REPO = Path(__file__).resolve().parents[2]
SITES = ("apec", "france_travail")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("provisioned with space")
    provision(root, SITES)
    write_tls_material(root, SITES)
    return root


@pytest.fixture()
def node(keys: Path, tmp_path: Path) -> SuperNodeSettings:
    data = tmp_path / "data dir"
    data.mkdir()
    (data / "parcours.csv").write_text("record_id\n", encoding="utf-8")
    return SuperNodeSettings(
        site="apec",
        data_dir=data,
        keys_dir=keys / "nodes" / "apec",
        broker_url="https://broker.example:8443",
        superlink="127.0.0.1:9093",
        runtime_port=19094,
    )


def test_provision_writes_a_self_contained_keys_folder_per_node(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        provision_cli, ["--out", str(tmp_path / "keys"), "--sites", "apec", "--superlink-host", "superlink"]
    )
    assert result.exit_code == 0, result.output
    node = tmp_path / "keys" / "nodes" / "apec"
    assert {p.name for p in node.iterdir()} == {
        "node.key",
        "linkage.key",
        "broker.pub",
        "supernode.key",
        "superlink-ca.pem",
        "site-policy.yaml",
    }
    assert (node / "broker.pub").read_bytes() == (tmp_path / "keys" / "public" / "broker.pub").read_bytes()
    assert (tmp_path / "keys" / "public" / "supernodes" / "apec.pub").is_file()
    assert "superlink" in result.output


def test_superlink_command_is_accepted_by_flower_with_tls_auth_and_no_runtime_installs(keys: Path) -> None:
    tls = SuperLinkTls.from_provision(keys)
    settings = SuperLinkSettings(tls=tls, port=19093, database=keys / "state.db")
    assert settings.argv()[:3] == [sys.executable, "-m", "tasks.flower_logs"]  # plain logs off a terminal
    args = _parse_args_run_superlink().parse_args(settings.flower_argv()[1:])
    assert not args.insecure
    assert args.enable_supernode_auth
    assert args.runtime_dependency_install is False
    assert Path(args.ssl_certfile) == keys / "superlink" / "superlink.pem"
    assert Path(args.ssl_ca_certfile) == keys / "superlink" / "ca.pem"
    assert (args.host, args.port, args.isolation) == ("127.0.0.1", 19093, "subprocess")
    described = "\n".join(settings.describe())
    assert "listens on" in described and "refuses" in described and "trusts" in described


def test_supernode_command_is_accepted_by_flower_and_carries_the_site_config(node: SuperNodeSettings) -> None:
    node.check()
    # Flower's command, run with its idle pull shortened (node_agent.deployment.prompt_pull)
    assert node.argv() == [sys.executable, "-m", "node_agent.deployment.prompt_pull", *node.flower_argv()]
    args = _parse_args_run_supernode().parse_args(node.flower_argv()[1:])
    assert not args.insecure
    assert args.runtime_dependency_install is False
    assert Path(args.auth_supernode_private_key) == node.keys_dir.resolve() / "supernode.key"
    assert Path(args.root_certificates) == node.keys_dir.resolve() / "superlink-ca.pem"
    assert (args.superlink, args.host, args.port) == ("127.0.0.1:9093", "127.0.0.1", 19094)
    config = parse_config_args([args.node_config])  # Flower's own parser, paths with spaces included
    assert config == {
        "site": "apec",
        "data-dir": str(node.data_dir.resolve()),
        "keys-dir": str(node.keys_dir.resolve()),
        "broker-url": "https://broker.example:8443",
        "site-policy": str(node.keys_dir.resolve() / "site-policy.yaml"),  # the site's own, always
    }


def test_a_node_missing_its_data_file_is_refused_naming_the_file(node: SuperNodeSettings) -> None:
    from node_agent.deployment.checks import DataFileCheck

    (node.data_dir / "parcours.csv").unlink()
    finding = DataFileCheck().run(node)
    assert not finding.ok and "parcours.csv" in finding.detail


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("superlink", "https://x:1", "host:port"),
        ("broker_url", "broker:8443", "http"),
        ("site", "Apec", "site"),
    ],
)
def test_bad_node_settings_are_refused_with_the_option_named(
    node: SuperNodeSettings, field: str, value: str, message: str
) -> None:
    bad = SuperNodeSettings(**{**node.__dict__, field: value})
    with pytest.raises(ValueError, match=message):
        bad.check()


def test_node_start_dry_run_says_what_it_listens_on_trusts_and_refuses(node: SuperNodeSettings) -> None:
    result = CliRunner().invoke(
        node_cli,
        [
            "start",
            "--site",
            "apec",
            "--data-dir",
            str(node.data_dir),
            "--keys-dir",
            str(node.keys_dir),
            "--broker-url",
            node.broker_url,
            "--superlink",
            node.superlink,
            "--dry-run",
        ],
    )
    assert result.exit_code == 2, result.output  # its data file and broker.example fail the checks
    for word in ("listens on   127.0.0.1", "trusts", "refuses", "FAIL data file", "FAIL trust broker"):
        assert word in result.output


def test_node_start_with_wrong_keys_exits_naming_the_file(node: SuperNodeSettings, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        node_cli,
        [
            "start",
            "--site",
            "apec",
            "--data-dir",
            str(node.data_dir),
            "--keys-dir",
            str(tmp_path),
            "--broker-url",
            node.broker_url,
            "--superlink",
            node.superlink,
            "--dry-run",
        ],
    )
    assert result.exit_code == 2
    assert "supernode.key" in result.output and "Traceback" not in result.output


def test_coordinator_start_without_provisioned_keys_exits_with_a_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(coordinator_cli, ["start", "--keys", str(tmp_path)])
    assert result.exit_code == 2
    assert "superlink.pem" in result.output and "Traceback" not in result.output


def test_app_bundle_holds_both_apps_and_no_environment_or_federation_table() -> None:
    files = collect_app_files(REPO)
    assert not any(name.startswith((".venv/", "runs/", ".git/")) for name in files)
    fab = build_app_bundle(REPO)
    with zipfile.ZipFile(io.BytesIO(fab.content)) as bundle:
        names = set(bundle.namelist())
        pyproject = tomli.loads(bundle.read("pyproject.toml").decode())
    assert {"coordinator/server_app.py", "node_agent/client_app.py"} <= names
    assert "federations" not in pyproject["tool"]["flwr"]
    assert not any(name.endswith((".key", ".pem", ".csv")) for name in names)


_SPAWNER = """
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
time.sleep(600)
"""


def test_supervisor_stops_detached_helpers_it_did_not_start_directly(tmp_path: Path) -> None:
    with ProcessSupervisor(tmp_path) as supervisor:
        parent = supervisor.start("spawner", [sys.executable, "-c", _SPAWNER])
        deadline = time.monotonic() + 10
        while len(supervisor.leftovers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = supervisor.leftovers()
        assert parent.pid in pids and len(pids) == 2  # the parent and its detached child
        launch_id = supervisor.launch_id
    assert marked_processes(launch_id) == []
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_supervisor_does_not_touch_processes_of_another_launch(tmp_path: Path) -> None:
    outsider = ProcessSupervisor(tmp_path / "outsider")
    try:
        other = outsider.start("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"])
        with ProcessSupervisor(tmp_path / "mine") as mine:
            mine.start("short", [sys.executable, "-c", "import time; time.sleep(600)"])
        assert other.alive()
        assert os.getpid() not in marked_processes(outsider.launch_id)
    finally:
        outsider.close()
    assert not other.alive()


def test_run_study_without_a_reachable_broker_exits_with_a_message(keys: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        coordinator_cli,
        [
            "run-study",
            "--superlink",
            "127.0.0.1:1",
            "--ca",
            str(keys / "public" / "superlink-ca.pem"),
            "--sites",
            "apec,france_travail",
            "--broker-url",
            "http://127.0.0.1:1",
            "--keys",
            str(keys),
            "--study-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "asking the broker at http://127.0.0.1:1" in result.output and "Traceback" not in result.output


def test_run_study_with_a_bad_config_value_names_the_key(keys: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        coordinator_cli,
        [
            "run-study",
            "--superlink",
            "127.0.0.1:1",
            "--ca",
            str(keys / "public" / "superlink-ca.pem"),
            "--sites",
            "apec",
            "--min-sites",
            "2",
            "--broker-url",
            "http://127.0.0.1:1",
            "--keys",
            str(keys),
            "--study-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2
    assert "min-sites" in result.output
