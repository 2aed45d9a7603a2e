"""The linkage key, made among the nodes: one node creates it, seals it for each other node's exchange
key, and the sealed files may travel by any channel (e-mail, the Region's file share): only the node
holding the matching ``exchange.key`` can open one. Neither the broker nor the Region ever holds the
key in clear (DESIGN.md: the linkage key is unknown to the broker and the coordinator).

Sealing is ECIES over X25519: an ephemeral key agreement with the recipient's public key, HKDF-SHA256
to an AES-256-GCM key, the recipient's fingerprint bound as associated data.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from trust_broker.provision.keys import LINKAGE_KEY_BYTES, _write_private

FORMAT = "r2dde-linkage-seal/1"
LINKAGE_KEY_FILE = "linkage.key"


class LinkageSealError(ValueError):
    """A sealed linkage key that cannot be opened here (another recipient, altered, unreadable)."""


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: X25519PublicKey) -> str:
    return hashlib.sha256(_raw(key)).hexdigest()[:32]


def _load_exchange_public(path: Path) -> X25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise LinkageSealError(f"{path}: not a node's exchange.pub ({exc})") from None
    if not isinstance(key, X25519PublicKey):
        raise LinkageSealError(f"{path}: not an X25519 exchange key (what `r2dde node keygen` exports)")
    return key


def _load_exchange_private(path: Path) -> X25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise LinkageSealError(f"{path}: not this node's exchange.key ({exc})") from None
    if not isinstance(key, X25519PrivateKey):
        raise LinkageSealError(f"{path}: not an X25519 exchange key")
    return key


def _aead_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=ephemeral + recipient, info=FORMAT.encode()).derive(shared)


def create_linkage_key(path: Path) -> Path:
    """A fresh linkage key (32 random bytes, hex) at ``path``, owner-only; refuses to replace one."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists: every node must keep the same linkage key")
    _write_private(path, secrets.token_bytes(LINKAGE_KEY_BYTES).hex().encode("ascii") + b"\n")
    return path


def seal_linkage_key(linkage_key: Path, recipient_public: Path, out: Path) -> Path:
    """Seal ``linkage_key`` for the node whose ``exchange.pub`` is ``recipient_public``."""
    secret = Path(linkage_key).read_bytes().strip()
    recipient = _load_exchange_public(recipient_public)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_raw = _raw(ephemeral.public_key())
    key = _aead_key(ephemeral.exchange(recipient), ephemeral_raw, _raw(recipient))
    nonce = os.urandom(12)
    aad = f"{FORMAT}|{fingerprint(recipient)}".encode()
    sealed = {
        "format": FORMAT,
        "recipient": fingerprint(recipient),
        "ephemeral": base64.b64encode(ephemeral_raw).decode(),
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(AESGCM(key).encrypt(nonce, secret, aad)).decode(),
    }
    Path(out).write_text(json.dumps(sealed, indent=2) + "\n", encoding="utf-8")
    return Path(out)


def open_sealed_linkage_key(sealed_path: Path, exchange_key: Path, out: Path) -> Path:
    """Open a sealed linkage key with this node's ``exchange.key``; write it owner-only at ``out``."""
    try:
        sealed = json.loads(Path(sealed_path).read_text(encoding="utf-8"))
        assert sealed.get("format") == FORMAT
        ephemeral = base64.b64decode(sealed["ephemeral"])
        nonce = base64.b64decode(sealed["nonce"])
        ciphertext = base64.b64decode(sealed["ciphertext"])
    except (OSError, ValueError, KeyError, AssertionError, TypeError):
        raise LinkageSealError(f"{sealed_path}: not a sealed linkage key ({FORMAT})") from None
    own = _load_exchange_private(exchange_key)
    mine = fingerprint(own.public_key())
    if sealed.get("recipient") != mine:
        raise LinkageSealError(
            f"{sealed_path}: sealed for another node, not for the holder of {exchange_key}"
        )
    key = _aead_key(
        own.exchange(X25519PublicKey.from_public_bytes(ephemeral)), ephemeral, _raw(own.public_key())
    )
    try:
        secret = AESGCM(key).decrypt(nonce, ciphertext, f"{FORMAT}|{mine}".encode())
    except InvalidTag:
        raise LinkageSealError(f"{sealed_path}: altered or not sealed for this node") from None
    if Path(out).exists() and Path(out).read_bytes().strip() != secret:
        raise FileExistsError(f"{out} holds another linkage key: the nodes must share one")
    _write_private(Path(out), secret + b"\n")
    return Path(out)
