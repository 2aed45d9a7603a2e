"""Receipts: the broker's signed word on where a node's change sits in the audit chain.

Every reserve, commit and release answer (and every budget refusal) carries a receipt:
``{head, seq, hash, kind}`` — the change's event, and ``head``: the chain's head after the change's
transaction, signed by the broker (the compact JWS over ``{seq, hash, at}`` it keeps as a signed head).
Because each event's hash commits to every event before it, a signed (head seq, head hash) witnesses
the whole prefix, the node's own event included; the event's seq and hash are there so that a node
can point at its change. One signature per group of changes serves all of their receipts (a
signature per answer cost ≈ 0.1 ms of the event loop per reserve+commit, measured).

The nodes keep them (``BrokerClient(receipts=...)``: one JSON line per receipt). ``r2dde audit verify
EXPORT --receipts DIR`` then checks each against the export: an export cut before a receipt's head
(``receipt.missing_event``) or one that holds another event there (``receipt.contradicted``: rewritten,
or a fork shown to the auditor) fails, whoever holds the broker's database.

Why a hash chain and not a Merkle tree (RFC 9162): a signed head already commits to the whole prefix,
and the auditor reads the whole export anyway (it replays every budget event), so the O(log n)
inclusion and consistency proofs of a Merkle log would buy nothing here, while they would change the
export format and add a dependency. A Merkle log pays off when parties check consistency online
without the export (nodes gossiping signed tree heads); that is left for when nodes talk to each other.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from trust_broker.audit.chain import AuditEvent, HeadSignatureError, sign_head, verify_head


class ReceiptError(ValueError):
    """A receipt whose head does not verify with the broker's key, or a malformed one."""


def make_receipt(event: AuditEvent, head_jws: str) -> dict[str, Any]:
    return {"head": head_jws, "seq": event.seq, "hash": event.hash, "kind": event.kind}


def sign_receipt(
    private_key: Ed25519PrivateKey, kid: str, event: AuditEvent, head: AuditEvent
) -> dict[str, Any]:
    """A receipt for ``event`` with ``head`` signed now (tests, benchmarks; the broker signs per group)."""
    return make_receipt(event, sign_head(private_key, head, kid))


def verify_receipt(receipt: Any, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """``{seq, hash, kind, head_seq, head_hash}`` of a receipt whose head the broker's key signed."""
    if not isinstance(receipt, dict):
        raise ReceiptError("a receipt is a JSON object {head, seq, hash, kind}")
    for name, kind in (("head", str), ("seq", int), ("hash", str), ("kind", str)):
        if not isinstance(receipt.get(name), kind):
            raise ReceiptError(f"receipt field {name} is missing or not a {kind.__name__}")
    try:
        head = verify_head(receipt["head"], public_key)
    except HeadSignatureError as exc:
        raise ReceiptError(f"receipt head: {exc}") from exc
    if receipt["seq"] > head["seq"]:
        raise ReceiptError(f"receipt names event {receipt['seq']} after its head {head['seq']}")
    return {
        "seq": receipt["seq"],
        "hash": receipt["hash"],
        "kind": receipt["kind"],
        "head_seq": head["seq"],
        "head_hash": head["hash"],
    }


def keep_receipt(path: Path, receipt: dict[str, Any], **context: Any) -> None:
    """Append one receipt to a node's JSON Lines file (created 0600 in a 0700 folder)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fp:
        fp.write(json.dumps({"receipt": receipt, **context}, sort_keys=True) + "\n")


def read_receipts(location: Path) -> Iterator[tuple[Path, int, dict[str, Any] | None]]:
    """(file, line, receipt or None for an unreadable line) of every ``*.jsonl`` under ``location``
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
                yield path, number, receipt if isinstance(receipt, dict) else None
