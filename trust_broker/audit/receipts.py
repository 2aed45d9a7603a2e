"""Receipts: the broker's signed word on where a node's change sits in the audit chain.

Every reserve, commit and release answer (and every budget refusal) carries a receipt: a compact JWS
(EdDSA, the broker's key, ``typ`` ``r2dde-receipt+jwt``) over ``{seq, hash, kind, head_seq,
head_hash}`` — the change's event and the chain's head when its transaction committed. The nodes keep
them (``BrokerClient(receipts=...)``: one JSON line per receipt). ``r2dde audit verify EXPORT
--receipts DIR`` then checks each against the export: an export cut before a receipt's event
(``receipt.missing_event``), or one whose event at that seq has another hash (``receipt.contradicted``:
rewritten, or a fork shown to the auditor) fails, whoever holds the broker's database.

Why a hash chain and not a Merkle tree (RFC 9162): each event's hash already commits to every event
before it, so a receipt for (seq, hash) witnesses the whole prefix; the auditor reads the whole
export anyway (it replays every budget event), so the O(log n) inclusion and consistency proofs a
Merkle log offers would buy nothing here, while they would change the export format and add a
dependency. A Merkle log would pay off if nodes checked consistency online between themselves
(gossip of signed tree heads) without the export; that is left for when nodes talk to each other.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from trust_broker.audit.chain import AuditEvent

RECEIPT_TYPE = "r2dde-receipt+jwt"


class ReceiptError(ValueError):
    """A receipt that does not verify with the broker's key, or is malformed."""


def sign_receipt(private_key: Ed25519PrivateKey, kid: str, event: AuditEvent, head: AuditEvent) -> str:
    claims = {
        "seq": event.seq,
        "hash": event.hash,
        "kind": event.kind,
        "head_seq": head.seq,
        "head_hash": head.hash,
    }
    return jwt.encode(claims, private_key, algorithm="EdDSA", headers={"kid": kid, "typ": RECEIPT_TYPE})


def verify_receipt(jws: str, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """The claims of a receipt the broker's key signed; ``ReceiptError`` otherwise."""
    if not isinstance(jws, str) or jws.count(".") != 2:
        raise ReceiptError("receipt is not a compact JWS")
    try:
        header = jwt.get_unverified_header(jws)
        claims = jwt.decode(jws, public_key, algorithms=["EdDSA"])
    except jwt.PyJWTError as exc:
        raise ReceiptError(f"receipt does not verify with the broker key: {exc}") from exc
    if header.get("typ") != RECEIPT_TYPE:
        raise ReceiptError(f"receipt has type {header.get('typ')!r}, expected {RECEIPT_TYPE!r}")
    for name, kind in (("seq", int), ("hash", str), ("head_seq", int), ("head_hash", str)):
        if not isinstance(claims.get(name), kind):
            raise ReceiptError(f"receipt claim {name} is missing or not a {kind.__name__}")
    return claims


def keep_receipt(path: Path, receipt: str, **context: Any) -> None:
    """Append one receipt to a node's JSON Lines file (created 0600 in a 0700 folder)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fp:
        fp.write(json.dumps({"receipt": receipt, **context}, sort_keys=True) + "\n")


def read_receipts(location: Path) -> Iterator[tuple[Path, int, str | None]]:
    """(file, line, receipt JWS or None for an unreadable line) of every ``*.jsonl`` under ``location``
    (or of ``location`` itself when it is a file)."""
    files = [location] if location.is_file() else sorted(location.glob("*.jsonl"))
    for path in files:
        with path.open(encoding="utf-8") as fp:
            for number, text in enumerate(fp, start=1):
                if not text.strip():
                    continue
                try:
                    receipt = json.loads(text).get("receipt")
                except (ValueError, AttributeError):
                    receipt = None
                yield path, number, receipt if isinstance(receipt, str) else None
