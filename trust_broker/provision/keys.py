"""Ed25519 keys and the linkage key, written into one folder with strict permissions.

Layout (``provision(out, sites)``)::

    out/broker/broker.key                 broker signing key (grants, audit heads)
    out/coordinator/coordinator.key       region role
    out/auditor/auditor.key
    out/admin/admin.key
    out/nodes/<site>/node.key             node role, one per site
    out/nodes/<site>/linkage.key          shared by every node, never under broker/ or coordinator/
    out/nodes/<site>/broker.pub           the broker key this node pins (a copy of public/broker.pub)
    out/public/<kid>.pub                  every public key (PEM)
    out/public/broker.pub                 the key nodes pin to verify grants
    out/public/participants.json          [{kid, role, site, public_key}] the broker registers

Private files are 0600, folders 0700; ``public/`` is meant to be copied anywhere.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from trust_broker.roles import Role

BROKER_KID = "broker"
COORDINATOR_KID = "coordinator"
AUDITOR_KID = "auditor"
ADMIN_KID = "admin"
LINKAGE_KEY_BYTES = 32


def node_kid(site: str) -> str:
    """The key id of a site's node agent."""
    return f"node.{site}"


@dataclass(frozen=True)
class ParticipantRecord:
    """One registered caller: key id, role, site (nodes only) and raw Ed25519 public key."""

    kid: str
    role: Role
    public_key: Ed25519PublicKey
    site: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "kid": self.kid,
            "role": self.role.value,
            "site": self.site,
            "public_key": encode_public_key(self.public_key),
        }

    @classmethod
    def from_json(cls, data: dict[str, object], *, source: str = "participants") -> ParticipantRecord:
        try:
            kid = str(data["kid"])
            role = Role(str(data["role"]))
            raw = str(data["public_key"])
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{source}: bad participant entry {data.get('kid', '?')!r}: {exc}") from exc
        site = data.get("site")
        if role is Role.NODE and not site:
            raise ValueError(f"{source}: participant {kid!r} has role node but no site")
        return cls(kid=kid, role=role, public_key=decode_public_key(raw), site=str(site) if site else None)


def encode_public_key(key: Ed25519PublicKey) -> str:
    """Raw 32-byte public key, base64url without padding (as in a JWK's ``x``)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_public_key(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise ValueError(f"not a base64url Ed25519 public key: {exc}") from exc


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fp:
        fp.write(data)
    os.chmod(path, 0o600)


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(path, pem)


def write_public_key(path: Path, key: Ed25519PublicKey) -> None:
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_private(path, pem)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read a PEM PKCS#8 Ed25519 private key; refuse any other kind with the file named."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a PEM Ed25519 public key (e.g. the pinned ``broker.pub``)."""
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


def load_participants(path: Path) -> list[ParticipantRecord]:
    """Read ``participants.json``; every entry names kid, role, site (nodes) and public key."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read participants: {exc}") from exc
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of participants")
    return [ParticipantRecord.from_json(item, source=str(path)) for item in data]


@dataclass(frozen=True)
class ProvisionedFolder:
    """Paths of a provisioned folder; the one object other packages need to find keys."""

    root: Path
    sites: tuple[str, ...] = field(default=())

    @property
    def public_dir(self) -> Path:
        return self.root / "public"

    @property
    def broker_key_path(self) -> Path:
        return self.root / "broker" / "broker.key"

    @property
    def broker_public_key_path(self) -> Path:
        return self.public_dir / "broker.pub"

    @property
    def participants_path(self) -> Path:
        return self.public_dir / "participants.json"

    def node_dir(self, site: str) -> Path:
        return self.root / "nodes" / site

    def linkage_key_path(self, site: str) -> Path:
        return self.node_dir(site) / "linkage.key"

    def private_key_path(self, role: Role | str, site: str | None = None) -> Path:
        """Where the private key of a role (and a site for nodes) lives."""
        role = Role(role) if not isinstance(role, Role) else role
        if role is Role.NODE:
            if not site:
                raise ValueError("a node key needs its site")
            return self.node_dir(site) / "node.key"
        name = {Role.REGION: COORDINATOR_KID, Role.AUDITOR: AUDITOR_KID, Role.ADMIN: ADMIN_KID}[role]
        return self.root / name / f"{name}.key"

    def kid_for(self, role: Role | str, site: str | None = None) -> str:
        role = Role(role) if not isinstance(role, Role) else role
        if role is Role.NODE:
            if not site:
                raise ValueError("a node kid needs its site")
            return node_kid(site)
        return {Role.REGION: COORDINATOR_KID, Role.AUDITOR: AUDITOR_KID, Role.ADMIN: ADMIN_KID}[role]

    def broker_private_key(self) -> Ed25519PrivateKey:
        return load_private_key(self.broker_key_path)

    def broker_public_key(self) -> Ed25519PublicKey:
        return load_public_key(self.broker_public_key_path)

    def participants(self) -> list[ParticipantRecord]:
        return load_participants(self.participants_path)

    @classmethod
    def open(cls, root: Path) -> ProvisionedFolder:
        """A folder written earlier by ``provision``; its sites are read from ``participants.json``."""
        root = Path(root)
        folder = cls(root=root)
        sites = tuple(p.site for p in folder.participants() if p.role is Role.NODE and p.site)
        return cls(root=root, sites=sites)


Provisioner = Callable[[ProvisionedFolder], None]
_EXTRA_PROVISIONERS: dict[str, Provisioner] = {}


def register_provisioner(name: str, provisioner: Provisioner) -> None:
    """Add a step run after the keys are written (e.g. SuperLink TLS certificates in ``tls.py``)."""
    _EXTRA_PROVISIONERS[name] = provisioner


#: The site's own policy in its node's folder: the only one its local veto reads (node_agent/settings.py).
SITE_POLICY_FILE = "site-policy.yaml"


def write_site_policy_copy(node_dir: Path, site: str) -> Path | None:
    """Start the site's own policy from the shipped document, for the partner to review and edit.

    The node reads this file, never the app bundle's copy; a site with no shipped document gets none
    (its node then declines governed studies until the partner writes one).
    """
    from policies.loader import DOCUMENTS_DIR

    shipped = DOCUMENTS_DIR / "sites" / f"{site}.yaml"
    if not shipped.is_file():
        return None
    target = Path(node_dir) / SITE_POLICY_FILE
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not target.exists():  # the partner's edits are never overwritten
        target.write_bytes(shipped.read_bytes())
        os.chmod(target, 0o600)
    return target


def provision(
    out: Path,
    sites: Sequence[str],
    *,
    overwrite: bool = False,
    node_public_keys: Mapping[str, Path] | None = None,
) -> ProvisionedFolder:
    """Write every participant's key pair, the linkage key and the public registry into ``out``.

    With ``node_public_keys`` (site -> the ``node.pub`` each node exported with `r2dde node keygen`),
    the nodes keep their own keys: only their public keys enter the registry, and neither a node's
    private key nor the linkage key (made among the nodes, `r2dde node linkage-key`) is written here.
    Without it (demos, simulations on one machine) one folder holds everything.

    Refuses to overwrite an existing folder's keys unless told to: silently rotating keys
    would orphan every grant and signature made with the old ones.
    """
    out = Path(out)
    sites = tuple(dict.fromkeys(sites))
    if not sites:
        raise ValueError("provision needs at least one site")
    for site in sites:
        if not site or not site.replace("_", "").isalnum() or site != site.lower():
            raise ValueError(f"site id {site!r} must be lowercase letters, digits and underscores")
    folder = ProvisionedFolder(root=out, sites=sites)
    if folder.participants_path.exists() and not overwrite:
        raise FileExistsError(f"{out} is already provisioned (participants.json exists); pass overwrite")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(out, 0o700)

    broker_key = Ed25519PrivateKey.generate()
    write_private_key(folder.broker_key_path, broker_key)
    write_public_key(folder.broker_public_key_path, broker_key.public_key())

    records: list[ParticipantRecord] = []
    identities: list[tuple[Role, str | None]] = [
        (Role.REGION, None),
        (Role.AUDITOR, None),
        (Role.ADMIN, None),
    ]
    exported = dict(node_public_keys or {})
    unknown = sorted(set(exported) - set(sites))
    if unknown:
        raise ValueError(f"node keys given for site(s) not provisioned: {', '.join(unknown)}")
    identities += [(Role.NODE, site) for site in sites if site not in exported]
    for role, holder in identities:
        key = Ed25519PrivateKey.generate()
        kid = folder.kid_for(role, holder)
        write_private_key(folder.private_key_path(role, holder), key)
        write_public_key(folder.public_dir / f"{kid}.pub", key.public_key())
        records.append(ParticipantRecord(kid=kid, role=role, site=holder, public_key=key.public_key()))
    for site, path in exported.items():  # the node's own key: only its public half is here
        public = load_public_key(Path(path))
        write_public_key(folder.public_dir / f"{node_kid(site)}.pub", public)
        records.append(ParticipantRecord(kid=node_kid(site), role=Role.NODE, site=site, public_key=public))

    linkage_hex = secrets.token_bytes(LINKAGE_KEY_BYTES).hex() + "\n"
    for site in sites:
        # A node's folder is self-contained: the broker key it pins travels with its own keys.
        write_public_key(folder.node_dir(site) / "broker.pub", broker_key.public_key())
        if site in exported:
            continue  # its private keys, site policy and the linkage key are the node's own business
        _write_private(folder.linkage_key_path(site), linkage_hex.encode("ascii"))
        write_site_policy_copy(folder.node_dir(site), site)

    payload = json.dumps([r.to_json() for r in records], indent=2) + "\n"
    _write_private(folder.participants_path, payload.encode("utf-8"))
    for extra in _EXTRA_PROVISIONERS.values():
        extra(folder)
    for path in out.rglob("*"):  # intermediate folders (nodes/) were made with the umask's mode
        if path.is_dir():
            os.chmod(path, 0o700)
    return folder
