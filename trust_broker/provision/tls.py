"""TLS and SuperNode-authentication material for Flower's deployment engine.

Written beside the Ed25519 keys of ``provision`` (same root folder)::

    out/superlink/ca.pem                  CA certificate (public; every party trusts it)
    out/superlink/superlink.pem           SuperLink server certificate (SANs: localhost, 127.0.0.1, hosts)
    out/superlink/superlink.key           its private key (0600, stays with the Region)
    out/nodes/<site>/superlink-ca.pem     copy of the CA certificate the node pins
    out/nodes/<site>/supernode.key        the node's SuperNode authentication key (0600, OpenSSH, P-384)
    out/public/superlink-ca.pem           the CA certificate, for anyone
    out/public/supernodes/<site>.pub      the node's public key (OpenSSH) that the Region registers

Why these formats: Flower 1.42's ``flower-superlink`` takes PEM ``--ssl-certfile/--ssl-keyfile/
--ssl-ca-certfile``; ``flower-supernode --auth-supernode-private-key`` reads an OpenSSH private
key and only accepts NIST elliptic curves, and the SuperLink registers OpenSSH public keys
(``flwr supernode register`` / Control API ``RegisterNode``).
The CA private key is used once and never written: nothing can mint another trusted
certificate from this folder; re-run provisioning (and redistribute the CA) to add a host.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1")
CERT_VALIDITY_DAYS = 365
SUPERNODE_CURVE = ec.SECP384R1()
ORGANIZATION = "R2DDE virtuel"


@dataclass(frozen=True)
class SuperNodeKey:
    """One site's SuperNode authentication key pair and the CA its node pins."""

    site: str
    private_key: Path
    public_key: Path
    ca_certificate: Path


@dataclass(frozen=True)
class TlsMaterial:
    """Paths written by ``write_tls_material``; what the launchers need, nothing else."""

    root: Path
    ca_certificate: Path
    server_certificate: Path
    server_key: Path
    hosts: tuple[str, ...]
    supernodes: Mapping[str, SuperNodeKey]

    @classmethod
    def open(cls, root: Path, sites: Sequence[str] = ()) -> TlsMaterial:
        """Paths of material written earlier; ``sites`` empty means every ``public/supernodes/*.pub``."""
        root = Path(root)
        names = tuple(sites) or tuple(sorted(p.stem for p in _supernode_pub_dir(root).glob("*.pub")))
        material = cls(
            root=root,
            ca_certificate=root / "superlink" / "ca.pem",
            server_certificate=root / "superlink" / "superlink.pem",
            server_key=root / "superlink" / "superlink.key",
            hosts=(),
            supernodes={site: _supernode_paths(root, site) for site in names},
        )
        material.check()
        return material

    def check(self) -> None:
        """Fail naming the first missing file, before any process is started with it."""
        paths = [self.ca_certificate, self.server_certificate, self.server_key]
        for key in self.supernodes.values():
            paths += [key.private_key, key.public_key, key.ca_certificate]
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing TLS/SuperNode material (run `r2dde provision`)")


def _supernode_pub_dir(root: Path) -> Path:
    return root / "public" / "supernodes"


def _supernode_paths(root: Path, site: str) -> SuperNodeKey:
    node_dir = root / "nodes" / site
    return SuperNodeKey(
        site=site,
        private_key=node_dir / "supernode.key",
        public_key=_supernode_pub_dir(root) / f"{site}.pub",
        ca_certificate=node_dir / "superlink-ca.pem",
    )


def _write(path: Path, data: bytes, *, private: bool) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = 0o600 if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fp:
        fp.write(data)
    os.chmod(path, mode)


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue_ca(now: dt.datetime, days: int) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP384R1())
    name = _name("R2DDE federation CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA384())
    )
    return key, cert


def _issue_server(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    hosts: Sequence[str],
    now: dt.datetime,
    days: int,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA384())
    )
    return key, cert


def normalize_hosts(hosts: Sequence[str]) -> tuple[str, ...]:
    """``localhost`` and ``127.0.0.1`` first (the SuperLink's own runtime connects there), then ``hosts``."""
    out: list[str] = list(DEFAULT_HOSTS)
    for host in hosts:
        host = host.strip()
        if not host or any(c.isspace() or c in "/:@" for c in host):
            raise ValueError(f"SuperLink host {host!r} must be a DNS name or an IP address, without port")
        if host not in out:
            out.append(host)
    return tuple(out)


def write_supernode_key(private_path: Path, public_path: Path) -> None:
    """A fresh P-384 key pair in OpenSSH format: private 0600, public world-readable."""
    key = ec.generate_private_key(SUPERNODE_CURVE)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    _write(private_path, private, private=True)
    _write(public_path, public + b"\n", private=False)


def _checked_supernode_public_key(path: Path) -> bytes:
    """A node's exported SuperNode key, refused unless it is an OpenSSH P-384 public key."""
    data = path.read_bytes()
    try:
        key = serialization.load_ssh_public_key(data.strip())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not an OpenSSH public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != SUPERNODE_CURVE.name:
        raise ValueError(f"{path}: a SuperNode key must be ECDSA P-384 (what `r2dde node keygen` writes)")
    return data.strip() + b"\n"


def write_tls_material(
    folder: Path,
    sites: Sequence[str],
    hosts: Sequence[str] = (),
    *,
    days: int = CERT_VALIDITY_DAYS,
    supernode_public_keys: Mapping[str, Path] | None = None,
) -> TlsMaterial:
    """Write a fresh CA, the SuperLink certificate and one SuperNode key pair per site into ``folder``.

    ``hosts`` are the extra names/IPs the nodes dial (e.g. ``superlink`` in compose, the
    Region's DNS name); ``localhost`` and ``127.0.0.1`` are always included.
    ``supernode_public_keys`` (site -> the OpenSSH public key a node exported with `r2dde node
    keygen`): those sites keep their own private key; only their public key is copied for registration.
    """
    folder = Path(folder)
    sites = tuple(dict.fromkeys(sites))
    if not sites:
        raise ValueError("TLS material needs at least one site")
    all_hosts = normalize_hosts(hosts)
    now = dt.datetime.now(dt.UTC)
    ca_key, ca_cert = _issue_ca(now, days)
    server_key, server_cert = _issue_server(ca_key, ca_cert, all_hosts, now, days)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)

    superlink_dir = folder / "superlink"
    _write(superlink_dir / "ca.pem", ca_pem, private=False)
    server_pem = server_cert.public_bytes(serialization.Encoding.PEM)
    _write(superlink_dir / "superlink.pem", server_pem, private=False)
    _write(
        superlink_dir / "superlink.key",
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        private=True,
    )
    _write(folder / "public" / "superlink-ca.pem", ca_pem, private=False)

    supernodes: dict[str, SuperNodeKey] = {}
    for site in sites:
        paths = _supernode_paths(folder, site)
        exported = (supernode_public_keys or {}).get(site)
        if exported is not None:
            _write(paths.public_key, _checked_supernode_public_key(Path(exported)), private=False)
        else:
            write_supernode_key(paths.private_key, paths.public_key)
        _write(paths.ca_certificate, ca_pem, private=False)
        supernodes[site] = paths
    return TlsMaterial(
        root=folder,
        ca_certificate=superlink_dir / "ca.pem",
        server_certificate=superlink_dir / "superlink.pem",
        server_key=superlink_dir / "superlink.key",
        hosts=all_hosts,
        supernodes=supernodes,
    )
