"""Study grants: compact JWS (EdDSA / Ed25519) that the broker signs and every node checks.

A node calls ``verify_grant(jws, pinned_broker_key, site=...)`` before touching a record: the
signature must verify with the pinned key (never a key named inside the token), the grant must
not be expired, and the node's site must be listed. Revocation is checked against the broker
(``BrokerClient.grant_status``) because a signed token cannot revoke itself.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from contracts.grant import (
    GRANT_TYPE,
    ISSUER,
    DPBounds,
    Grant,
    GrantError,
    GrantExpired,
    GrantInvalid,
    GrantRevoked,
    GrantSiteNotListed,
)

CLOCK_LEEWAY_SECONDS = 30
#: The broker's public key as a node pins it in its keys folder (grants verify with it only).
PINNED_BROKER_KEY = "broker.pub"

__all__ = [
    "GRANT_TYPE",
    "ISSUER",
    "DPBounds",
    "Grant",
    "GrantError",
    "GrantExpired",
    "GrantInvalid",
    "GrantRevoked",
    "GrantSiteNotListed",
    "issue_grant",
    "load_pinned_broker_key",
    "verify_grant",
]


def load_pinned_broker_key(keys_dir: Path) -> Ed25519PublicKey:
    """The broker key a node pins (``keys_dir/broker.pub``); ``ValueError`` names a bad file."""
    from trust_broker.provision.keys import load_public_key

    return load_public_key(Path(keys_dir) / PINNED_BROKER_KEY)


def issue_grant(grant: Grant, private_key: Ed25519PrivateKey, *, kid: str) -> str:
    """Sign the grant as a compact JWS with EdDSA; the ``kid`` header names the broker key."""
    return jwt.encode(
        grant.to_claims(), private_key, algorithm="EdDSA", headers={"kid": kid, "typ": GRANT_TYPE}
    )


def verify_grant(
    jws: str, broker_public_key: Ed25519PublicKey, *, site: str, now: dt.datetime | None = None
) -> Grant:
    """Check signature (pinned key, EdDSA only), expiry and that ``site`` is listed; return the grant.

    Raises ``GrantInvalid``, ``GrantExpired`` or ``GrantSiteNotListed``.
    """
    if not isinstance(jws, str) or jws.count(".") != 2:
        raise GrantInvalid("grant is not a compact JWS")
    try:
        header = jwt.get_unverified_header(jws)
        claims = jwt.decode(
            jws,
            broker_public_key,
            algorithms=["EdDSA"],
            issuer=ISSUER,
            options={"verify_exp": False, "verify_iat": False, "require": ["iss", "jti", "iat", "exp"]},
        )
    except jwt.InvalidSignatureError as exc:
        raise GrantInvalid("grant signature does not verify with the pinned broker key") from exc
    except jwt.PyJWTError as exc:
        raise GrantInvalid(f"grant rejected: {exc}") from exc
    if header.get("typ") != GRANT_TYPE:
        raise GrantInvalid(f"grant has type {header.get('typ')!r}, expected {GRANT_TYPE!r}")
    try:
        grant = Grant.from_claims(claims, kid=str(header.get("kid", "")))
    except (ValidationError, TypeError, KeyError, ValueError, OverflowError) as exc:
        raise GrantInvalid(f"grant claims are malformed: {exc}") from exc
    moment = now or dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    if moment > grant.expires_at + dt.timedelta(seconds=CLOCK_LEEWAY_SECONDS):
        raise GrantExpired(f"grant {grant.study_id} expired at {grant.expires_at.isoformat()}")
    if site not in grant.sites:
        raise GrantSiteNotListed(f"site {site!r} is not listed in grant {grant.study_id}")
    return grant
