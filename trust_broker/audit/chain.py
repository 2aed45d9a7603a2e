"""The audit chain: every state change of the broker, each event hashing the one before it.

``hash = "sha256:" + SHA-256(RFC 8785 JSON of {seq, at, kind, actor, payload, prev_hash})``; the first
event's ``prev_hash`` is ``GENESIS``. Editing, deleting, inserting or reordering an event breaks the
hashes or the links after it; truncating the tail is caught by the broker-signed head (a compact JWS,
EdDSA, over ``{seq, hash, at}`` of the last event), which only the broker's key can produce.

Event kinds (``EVENT_KINDS``) and what their payload carries:

- ``participant.registered``: ``kid``, ``role``, ``site`` (nodes), ``public_key`` (raw Ed25519,
  base64url). Later events signed by that participant are checked against this key.
- ``participant.removed``: ``kid``, ``role``, ``site``: later events signed with that key fail.
- ``study.requested``: the ``StudyRequest`` JSON (``study_id`` …).
- ``study.decided``: ``study_id``, ``allowed``, ``reasons``, ``per_site_epsilon``, ``delta``,
  ``policy_digest``.
- ``grant.issued``: ``study_id``, ``grant`` (the compact JWS the broker signed), ``kid``.
- ``grant.revoked``: ``study_id``, ``reason``.
- ``optout.added``, ``consent.given``, ``consent.withdrawn``: ``count``, ``digest`` (SHA-256 of the
  linkage pseudonym: never the pseudonym itself in a log that leaves the broker), ``purpose``
  (``*`` = every purpose, opt-outs only), ``site``, ``seq``.
- ``budget.reserved`` / ``budget.committed`` / ``budget.released`` / ``budget.expired`` /
  ``budget.refused``: ``account`` ({site, dataset, period}), ``request_id``, ``study_id``,
  ``mechanism`` (the ledger JSON; optional for released/expired), ``cap``, ``delta`` (the account's δ) and
  ``epsilon``: the ε the broker composed for the account after the event (for ``budget.refused``, the
  ε the refused reservation would have reached; a refusal changes no account).
- ``node.report``: ``study_id``, ``site``, ``round``, metrics.

Any payload may carry a ``signature`` made by a registered participant (see ``signatures``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import jwt
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, field_validator

GENESIS = "sha256:" + "0" * 64
HEAD_TYPE = "r2dde-audit-head+jwt"
HASH_PATTERN = r"^sha256:[0-9a-f]{64}$"

EVENT_KINDS: frozenset[str] = frozenset(
    {
        "participant.registered",
        "participant.removed",
        "study.requested",
        "study.decided",
        "grant.issued",
        "grant.revoked",
        "optout.added",
        "consent.given",
        "consent.withdrawn",
        "budget.reserved",
        "budget.committed",
        "budget.released",
        "budget.expired",
        "budget.refused",
        "node.report",
    }
)


class HeadSignatureError(ValueError):
    """A signed head that does not verify with the broker's key, or is malformed."""


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 (JCS) bytes: one spelling per value, so a hash covers meaning, not formatting."""
    return rfc8785.dumps(obj)


def format_at(at: dt.datetime | str) -> str:
    """ISO 8601 UTC with microseconds and a ``Z``: one spelling per instant, so hashes are stable."""
    if isinstance(at, str):
        at = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class AuditEvent(BaseModel):
    """One link of the chain."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(ge=1)
    at: str
    kind: str
    actor: str
    payload: dict[str, Any]
    prev_hash: str = Field(pattern=HASH_PATTERN)
    hash: str = Field(pattern=HASH_PATTERN)

    @field_validator("at")
    @classmethod
    def _at_is_utc(cls, value: str) -> str:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"not an ISO 8601 time: {value!r}") from exc
        if parsed.tzinfo is None or parsed.utcoffset() != dt.timedelta(0):
            raise ValueError(f"audit times are UTC: {value!r}")
        return value

    def expected_hash(self) -> str:
        """The hash this event's content should have (differs from ``hash`` if it was edited)."""
        return compute_event_hash(self.seq, self.at, self.kind, self.actor, self.payload, self.prev_hash)


def compute_event_hash(
    seq: int, at: str, kind: str, actor: str, payload: dict[str, Any], prev_hash: str
) -> str:
    body = {"seq": seq, "at": at, "kind": kind, "actor": actor, "payload": payload, "prev_hash": prev_hash}
    return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


def next_event(
    prev: AuditEvent | None,
    *,
    kind: str,
    actor: str,
    payload: dict[str, Any],
    at: dt.datetime | str,
) -> AuditEvent:
    """The event that follows ``prev`` (or the first one, when ``prev`` is None)."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown audit event kind {kind!r}; known: {', '.join(sorted(EVENT_KINDS))}")
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS if prev is None else prev.hash
    stamp = format_at(at)
    # Round-trip through canonical JSON so the stored payload is exactly what was hashed.
    plain = json.loads(canonical_json(payload))
    return AuditEvent(
        seq=seq,
        at=stamp,
        kind=kind,
        actor=actor,
        payload=plain,
        prev_hash=prev_hash,
        hash=compute_event_hash(seq, stamp, kind, actor, plain, prev_hash),
    )


def sign_head(private_key: Ed25519PrivateKey, event: AuditEvent, kid: str) -> str:
    """Compact JWS (EdDSA) over ``{seq, hash, at}`` of ``event``: the broker vouches for the chain so far."""
    claims = {"seq": event.seq, "hash": event.hash, "at": event.at}
    return jwt.encode(claims, private_key, algorithm="EdDSA", headers={"kid": kid, "typ": HEAD_TYPE})


def verify_head(jws: str, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """Claims ``{seq, hash, at}`` of a head signed by ``public_key``; ``HeadSignatureError`` otherwise."""
    if not isinstance(jws, str) or jws.count(".") != 2:
        raise HeadSignatureError("head is not a compact JWS")
    try:
        header = jwt.get_unverified_header(jws)
        claims = jwt.decode(jws, public_key, algorithms=["EdDSA"], options={"verify_exp": False})
    except jwt.InvalidSignatureError as exc:
        raise HeadSignatureError("head signature does not verify with the broker key") from exc
    except jwt.PyJWTError as exc:
        raise HeadSignatureError(f"head rejected: {exc}") from exc
    if header.get("typ") != HEAD_TYPE:
        raise HeadSignatureError(f"head has type {header.get('typ')!r}, expected {HEAD_TYPE!r}")
    if not isinstance(claims.get("seq"), int) or not isinstance(claims.get("hash"), str):
        raise HeadSignatureError("head claims lack an integer seq and a hash")
    return claims
