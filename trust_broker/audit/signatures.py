"""Participant signatures carried inside audit payloads, checkable offline by an auditor.

A participant (node, coordinator) may sign what it asked the broker to record, e.g. a ``node.report``
or the mechanism it committed: ``payload["signature"] = {"kid", "alg": "EdDSA", "value"}`` where
``value`` is the base64url Ed25519 signature of the RFC 8785 JSON of the payload *without* its
``signature`` key. The auditor finds the key in the chain's own ``participant.registered`` events,
so a broker that altered a signed payload, or invented one, is caught.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from trust_broker.audit.chain import canonical_json

SIGNATURE_KEY = "signature"


class PayloadSignatureError(ValueError):
    """A payload signature that is malformed, from an unknown participant, or does not verify."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signed_body(payload: dict[str, Any]) -> bytes:
    """The bytes a participant signs: the payload without its signature, canonicalized."""
    return canonical_json({key: value for key, value in payload.items() if key != SIGNATURE_KEY})


def sign_payload(payload: dict[str, Any], private_key: Ed25519PrivateKey, kid: str) -> dict[str, Any]:
    """A copy of ``payload`` with the participant's signature added."""
    value = _b64(private_key.sign(signed_body(payload)))
    return {**payload, SIGNATURE_KEY: {"kid": kid, "alg": "EdDSA", "value": value}}


def encode_public_key(key: Ed25519PublicKey) -> str:
    """Raw 32-byte key, base64url without padding (as in a JWK's ``x`` and in the provisioning files)."""
    return _b64(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def decode_public_key(text: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(_unb64(text))
    except (ValueError, TypeError) as exc:
        raise PayloadSignatureError(f"not a base64url Ed25519 public key: {exc}") from exc


def verify_payload(payload: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> str:
    """Check ``payload``'s signature against the registered ``keys``; returns the signer's kid."""
    signature = payload.get(SIGNATURE_KEY)
    if not isinstance(signature, dict):
        raise PayloadSignatureError("signature must be an object {kid, alg, value}")
    kid, alg, value = signature.get("kid"), signature.get("alg"), signature.get("value")
    if alg != "EdDSA" or not isinstance(kid, str) or not isinstance(value, str):
        raise PayloadSignatureError("signature must be {kid: str, alg: 'EdDSA', value: base64url}")
    key = keys.get(kid)
    if key is None:
        raise PayloadSignatureError(f"signed by {kid!r}, who is not registered earlier in the chain")
    try:
        key.verify(_unb64(value), signed_body(payload))
    except (InvalidSignature, ValueError) as exc:
        raise PayloadSignatureError(f"signature of {kid!r} does not verify") from exc
    return kid
