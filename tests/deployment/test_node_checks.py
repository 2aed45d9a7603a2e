"""`r2dde node start --dry-run` runs the real checks (issue 12, item 2): the data file against the
schema and its encoding, the keys' permissions, the site's own policy, the broker's reachability and
pinned key, the SuperLink's certificate — and exits non-zero with what to fix."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from node_agent.cli import app as node_cli
from trust_broker.embedded import EmbeddedBroker
from trust_broker.provision import provision
from trust_broker.provision.keys import write_public_key
from trust_broker.provision.tls import write_tls_material

SITE = "apec"
PERSON = {
    "record_id": "AP-0001",
    "nir": "1 85 05 13 055 123 45",
    "ft_id": "",
    "last_name": "MARTIN",
    "first_name": "Julie",
    "email": "julie.martin@orange.fr",
    "phone": "06 12 34 56 78",
    "address": "12 rue Victor Hugo, 13001 Marseille",
    "birth_year": 1985,
    "sex": "F",
    "commune": "13055",
    "education_level": "bac+5",
    "rome_target": "M1805",
    "rome_previous": "",
    "months_unemployed": 7,
    "mobility_km": 20,
    "driving_licence": 1,
    "training_followed": 0,
    "registration_date": "2024-03-11",
    "employed_6m": 1,
    "months_to_employment": 3.5,
    "counselor_note": "Entretien.",
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("keys")
    provision(root, (SITE,))
    write_tls_material(root, (SITE,))
    return root


@pytest.fixture(scope="module")
def broker(keys: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with EmbeddedBroker(f"sqlite:///{tmp_path_factory.mktemp('db') / 'broker.db'}", keys) as running:
        yield running.url


@pytest.fixture(scope="module")
def superlink(keys: Path) -> Iterator[str]:
    """A TLS listener with the SuperLink's certificate: what the node's check shakes hands with."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(keys / "superlink" / "superlink.pem", keys / "superlink" / "superlink.key")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    listener.close()


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    pd.DataFrame([PERSON, {**PERSON, "record_id": "AP-0002"}]).to_csv(folder / "parcours.csv", index=False)
    return folder


def _dry_run(data: Path, node_keys: Path, broker_url: str, superlink_address: str, *extra: str):  # noqa: ANN202
    return CliRunner().invoke(
        node_cli,
        [
            "start",
            "--site",
            SITE,
            "--data-dir",
            str(data),
            "--keys",
            str(node_keys),
            "--broker-url",
            broker_url,
            "--superlink",
            superlink_address,
            "--dry-run",
            *extra,
        ],
    )


def _copy_node_folder(keys: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "node"
    folder.mkdir(mode=0o700)
    for path in (keys / "nodes" / SITE).iterdir():
        target = folder / path.name
        target.write_bytes(path.read_bytes())
        target.chmod(path.stat().st_mode & 0o777)
    return folder


def test_a_sound_node_passes_every_check(keys: Path, broker: str, superlink: str, data_dir: Path) -> None:
    result = _dry_run(data_dir, keys / "nodes" / SITE, broker, superlink)
    assert result.exit_code == 0, result.output
    for check in ("data file", "key permissions", "site policy", "trust broker", "SuperLink certificate"):
        assert f"check ok   {check}" in result.output
    assert "flower-supernode" in result.output


def test_a_missing_column_fails_naming_it(keys: Path, broker: str, superlink: str, data_dir: Path) -> None:
    frame = pd.read_csv(data_dir / "parcours.csv", dtype=str, keep_default_na=False)
    frame.drop(columns="mobility_km").to_csv(data_dir / "parcours.csv", index=False)
    result = _dry_run(data_dir, keys / "nodes" / SITE, broker, superlink)
    assert result.exit_code == 2
    assert "FAIL data file" in result.output and "'mobility_km' is missing" in result.output


def test_a_latin1_file_fails_naming_its_line(keys: Path, broker: str, superlink: str, data_dir: Path) -> None:
    text = (data_dir / "parcours.csv").read_text(encoding="utf-8").replace("Entretien.", "Réorienté.", 1)
    (data_dir / "parcours.csv").write_bytes(text.encode("latin-1"))
    result = _dry_run(data_dir, keys / "nodes" / SITE, broker, superlink)
    assert result.exit_code == 2
    assert "FAIL data file" in result.output and "line 2" in result.output and "UTF-8" in result.output


def test_a_key_readable_by_everyone_fails(
    keys: Path, broker: str, superlink: str, data_dir: Path, tmp_path: Path
) -> None:
    node = _copy_node_folder(keys, tmp_path)
    (node / "linkage.key").chmod(0o644)
    result = _dry_run(data_dir, node, broker, superlink)
    assert result.exit_code == 2
    assert "FAIL key permissions" in result.output and f"chmod 600 {node / 'linkage.key'}" in result.output


def test_a_wrong_broker_url_fails(keys: Path, superlink: str, data_dir: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = _dry_run(data_dir, keys / "nodes" / SITE, f"http://127.0.0.1:{port}", superlink)
    assert result.exit_code == 2
    assert "FAIL trust broker" in result.output and "no trust broker answers" in result.output


def test_a_broker_signing_with_another_key_than_the_pinned_one_fails(
    keys: Path, broker: str, superlink: str, data_dir: Path, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    node = _copy_node_folder(keys, tmp_path)
    (node / "broker.pub").unlink()
    write_public_key(node / "broker.pub", Ed25519PrivateKey.generate().public_key())
    result = _dry_run(data_dir, node, broker, superlink)
    assert result.exit_code == 2
    assert "FAIL trust broker" in result.output and "another key" in result.output


def test_a_superlink_certified_by_another_ca_fails(
    keys: Path, broker: str, superlink: str, data_dir: Path, tmp_path: Path
) -> None:
    other = write_tls_material(tmp_path / "other", (SITE,))
    node = _copy_node_folder(keys, tmp_path)
    (node / "superlink-ca.pem").write_bytes(other.ca_certificate.read_bytes())
    result = _dry_run(data_dir, node, broker, superlink)
    assert result.exit_code == 2
    assert "FAIL SuperLink certificate" in result.output and "not certified by" in result.output


def test_a_node_without_its_own_site_policy_fails(
    keys: Path, broker: str, superlink: str, data_dir: Path, tmp_path: Path
) -> None:
    """Issue 12, item 6: without the site's own policy the node would have read the app bundle's copy."""
    node = _copy_node_folder(keys, tmp_path)
    (node / "site-policy.yaml").unlink()
    result = _dry_run(data_dir, node, broker, superlink)
    assert result.exit_code == 2
    assert "FAIL site policy" in result.output and "site-policy.yaml" in result.output


def _database(data_dir: Path, frame: pd.DataFrame) -> str:
    """The site's records in a SQLite database beside an empty data folder (its reports go there)."""
    import sqlalchemy as sa

    url = f"sqlite:///{data_dir.parent / 'site.db'}"
    engine = sa.create_engine(url)
    frame.to_sql("personnes", engine, index=False, if_exists="replace")
    engine.dispose()
    (data_dir / "parcours.csv").unlink()
    return url


def test_a_database_source_is_checked_and_passed_in_the_node_config(
    keys: Path, broker: str, superlink: str, data_dir: Path
) -> None:
    url = _database(data_dir, pd.DataFrame([PERSON, {**PERSON, "record_id": "AP-0002"}]))
    result = _dry_run(
        data_dir, keys / "nodes" / SITE, broker, superlink, "--source", url, "--table", "personnes"
    )
    assert result.exit_code == 0, result.output
    assert "check ok   data file" in result.output
    assert f"source='{url}'" in result.output and "source-table='personnes'" in result.output


def test_a_bad_database_table_fails_the_data_check_naming_table_row_and_rule(
    keys: Path, broker: str, superlink: str, data_dir: Path
) -> None:
    url = _database(data_dir, pd.DataFrame([PERSON, {**PERSON, "record_id": "AP-0002", "sex": "X"}]))
    result = _dry_run(
        data_dir, keys / "nodes" / SITE, broker, superlink, "--source", url, "--table", "personnes"
    )
    assert result.exit_code == 2
    assert "FAIL data file" in result.output and "table personnes" in result.output
    assert "row 2, field 'sex'" in result.output


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (
            ("--source", "postgresql+psycopg://node:s3cret-pw@db/emploi", "--table", "t"),
            "no password in the URL",
        ),
        (("--source", "sqlite:///x.db", "--query", "DELETE FROM personnes"), "single SELECT"),
        (("--table", "personnes"), "give its URL with --source"),
    ],
)
def test_a_database_source_that_would_leak_or_write_is_refused_at_start(
    keys: Path, broker: str, superlink: str, data_dir: Path, options: tuple[str, ...], said: str
) -> None:
    result = _dry_run(data_dir, keys / "nodes" / SITE, broker, superlink, *options)
    assert result.exit_code == 2 and said in result.output
    assert "s3cret-pw" not in result.output
