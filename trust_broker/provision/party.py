"""Keys each party makes and keeps itself: a partner's node generates its own key pairs at home and
exports only their public halves for registration.

A node's folder after ``generate_node_keys(folder, site)``::

    folder/node.key          Ed25519, signs the node's requests to the broker       (0600, never leaves)
    folder/supernode.key     P-384 OpenSSH, authenticates the SuperNode at the SuperLink (0600)
    folder/exchange.key      X25519, opens the linkage key sealed for this node by another node (0600)
    folder/site-policy.yaml  the site's own policy (a starting copy of the shipped one, to review)
    folder/public/node.pub       -> the trusted third party registers it at the broker
    folder/public/supernode.pub  -> the Region registers it at the SuperLink
    folder/public/exchange.pub   -> the other nodes seal the linkage key to it

The folder later receives, from the others, only public files (``broker.pub``, ``superlink-ca.pem``)
and the linkage key (see ``linkage.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from trust_broker.provision.keys import (
    _write_private,
    write_private_key,
    write_public_key,
    write_site_policy_copy,
)
from trust_broker.provision.tls import write_supernode_key

NODE_KEY = "node.key"
SUPERNODE_KEY = "supernode.key"
EXCHANGE_KEY = "exchange.key"
PUBLIC_DIR = "public"


@dataclass(frozen=True)
class NodeKeys:
    """What a node generated: its folder and the public files it hands out."""

    folder: Path
    site: str

    @property
    def public_dir(self) -> Path:
        return self.folder / PUBLIC_DIR

    @property
    def exports(self) -> tuple[Path, ...]:
        return tuple(self.public_dir / n for n in ("node.pub", "supernode.pub", "exchange.pub"))


def generate_node_keys(folder: Path, site: str, *, overwrite: bool = False) -> NodeKeys:
    """Generate this node's key pairs in its own folder; nobody else ever sees the private halves."""
    folder = Path(folder)
    if not site or not site.replace("_", "").isalnum() or site != site.lower():
        raise ValueError(f"site id {site!r} must be lowercase letters, digits and underscores")
    if (folder / NODE_KEY).exists() and not overwrite:
        raise FileExistsError(f"{folder / NODE_KEY} exists: this node already has keys (pass overwrite)")
    node_key = Ed25519PrivateKey.generate()
    write_private_key(folder / NODE_KEY, node_key)
    write_public_key(folder / PUBLIC_DIR / "node.pub", node_key.public_key())
    write_supernode_key(folder / SUPERNODE_KEY, folder / PUBLIC_DIR / "supernode.pub")
    exchange = X25519PrivateKey.generate()
    _write_private(
        folder / EXCHANGE_KEY,
        exchange.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    _write_private(
        folder / PUBLIC_DIR / "exchange.pub",
        exchange.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    for path in folder / PUBLIC_DIR, *(folder / PUBLIC_DIR).iterdir():
        path.chmod(0o755 if path.is_dir() else 0o644)  # public: meant to be copied and sent
    write_site_policy_copy(folder, site)
    return NodeKeys(folder=folder, site=site)
