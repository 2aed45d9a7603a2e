"""TLS and SuperNode-authentication material: what Flower 1.42 and a TLS client actually accept."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key
from cryptography.x509.oid import ExtendedKeyUsageOID
from flwr.cli.supernode.register import try_load_public_key

from trust_broker.provision.tls import TlsMaterial, write_tls_material

SITES = ("france_travail", "apec")


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return write_tls_material(tmp_path_factory.mktemp("keys"), SITES, ["superlink", "10.20.30.40"])


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_server_certificate_is_issued_by_the_ca_and_names_every_host(material: TlsMaterial) -> None:
    ca, server = _cert(material.ca_certificate), _cert(material.server_certificate)
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"localhost", "superlink"}
    assert set(sans.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("10.20.30.40"),
    }
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_supernode_keys_load_the_way_flower_loads_them(material: TlsMaterial) -> None:
    for site in SITES:
        key = material.supernodes[site]
        private = load_ssh_private_key(key.private_key.read_bytes(), None)  # as flower-supernode does
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        assert private.curve.name == "secp384r1"
        public = load_ssh_public_key(key.public_key.read_bytes())
        assert public.public_numbers() == private.public_key().public_numbers()
        assert try_load_public_key(key.public_key)  # `flwr supernode register`'s own loader accepts it
        assert key.ca_certificate.read_bytes() == material.ca_certificate.read_bytes()


def test_each_site_gets_its_own_key(material: TlsMaterial) -> None:
    publics = {material.supernodes[s].public_key.read_bytes() for s in SITES}
    assert len(publics) == len(SITES)


def test_private_files_are_owner_only_and_the_ca_key_is_never_written(material: TlsMaterial) -> None:
    private = [material.server_key, *(material.supernodes[s].private_key for s in SITES)]
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    files = [p for p in material.root.rglob("*") if p.is_file()]
    holding_private = {p for p in files if b"PRIVATE KEY" in p.read_bytes()}
    assert holding_private == set(private)


def test_open_finds_the_material_and_names_a_missing_file(material: TlsMaterial, tmp_path: Path) -> None:
    reopened = TlsMaterial.open(material.root)
    assert set(reopened.supernodes) == set(SITES)
    assert reopened.server_certificate == material.server_certificate
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/superlink/ca.pem: missing"):
        TlsMaterial.open(tmp_path, sites=["apec"])


@pytest.mark.parametrize("host", ["superlink:9093", "https://x", "two words", ""])
def test_a_host_with_port_scheme_or_space_is_refused(tmp_path: Path, host: str) -> None:
    with pytest.raises(ValueError, match="SuperLink host"):
        write_tls_material(tmp_path, SITES, [host])


def _serve_once(material: TlsMaterial) -> tuple[int, threading.Thread]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(material.server_certificate, material.server_key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept() -> None:
        with listener:
            listener.settimeout(5)
            try:
                conn, _ = listener.accept()
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return port, thread


@pytest.mark.parametrize("server_name", ["127.0.0.1", "localhost"])
def test_a_client_pinning_the_ca_completes_a_handshake(material: TlsMaterial, server_name: str) -> None:
    port, thread = _serve_once(material)
    client = ssl.create_default_context(cafile=str(material.ca_certificate))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        client.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        assert tls.recv(2) == b"ok"
    thread.join(5)


def test_a_client_pinning_another_ca_refuses_the_superlink(material: TlsMaterial, tmp_path: Path) -> None:
    other = write_tls_material(tmp_path, ["apec"])
    port, thread = _serve_once(material)
    client = ssl.create_default_context(cafile=str(other.ca_certificate))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        client.wrap_socket(raw, server_hostname="127.0.0.1")
    thread.join(5)
