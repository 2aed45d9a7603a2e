"""Study grants: compact JWS (EdDSA / Ed25519) that the broker signs and every node checks.

A node calls ``verify_grant(jws, pinned_broker_key, site=...)`` before touching a record: the
signature must verify with the pinned key (never a key named inside the token), the grant must
not be expired, and the node's site must be listed. Revocation is checked against the broker
(``BrokerClient.grant_status``) because a signed token cannot revoke itself.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from policies.models import EvaluationBudget

GRANT_TYPE = "r2dde-grant+jwt"
ISSUER = "r2dde-trust-broker"
CLOCK_LEEWAY_SECONDS = 30


class GrantError(Exception):
    """A grant a node must not act on; the message says why (never the token itself)."""

    rule = "grant.invalid"


class GrantInvalid(GrantError):
    rule = "grant.invalid"


class GrantExpired(GrantError):
    rule = "grant.expired"


class GrantSiteNotListed(GrantError):
    rule = "grant.site"


class GrantRevoked(GrantError):
    rule = "grant.revoked"


class DPBounds(BaseModel):
    """Limits on the DP parameters a node may use under this grant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_noise_multiplier: float = Field(ge=0.0)
    max_grad_norm_min: float = Field(gt=0.0)
    max_grad_norm_max: float = Field(gt=0.0)
    max_sample_rate: float = Field(gt=0.0, le=1.0, default=1.0)
    #: Training hyper-parameters a node accepts (issue 10): it refuses a round outside them.
    min_learning_rate: float = Field(gt=0.0, default=1e-5)
    max_learning_rate: float = Field(gt=0.0, default=1.0)
    max_local_epochs: int = Field(ge=1, default=20)
    min_batch_size: int = Field(ge=1, default=16)
    max_batch_size: int = Field(ge=1, default=65_536)


class Grant(BaseModel):
    """What a grant binds; the JWS claims are exactly these fields plus iss/iat/exp/jti."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    study_id: str
    purpose: str
    policy_digest: str
    task: str
    dataset: str
    fields: tuple[str, ...]
    sites: tuple[str, ...]
    epsilon: dict[str, float]  # per-site ε cap for this study
    delta: float = Field(gt=0.0, lt=1.0)
    dp_bounds: DPBounds
    rounds: int = Field(ge=1)
    #: The holdout evaluations each site may release (their number and ε share): a grant without
    #: it pays for none. Copied from the purpose's policy at issue, so the node need not trust the
    #: policy documents shipped in the coordinator's app bundle.
    evaluation: EvaluationBudget = EvaluationBudget(evaluations=0)
    #: Released cells under this size are suppressed at the node, after noise (the purpose's rule).
    min_cell_size: int = Field(default=11, ge=2)
    coordinator: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    kid: str = ""

    def mechanism_refusal(self, mechanism: dict[str, Any]) -> tuple[str, str] | None:
        """(rule, detail) if ``mechanism`` (its JSON) is outside this grant's DP bounds, else None.

        Checked on every reserve and every commit: what a node says it ran is held to the grant too.
        """
        bounds = self.dp_bounds
        sigma = float(mechanism["noise_multiplier"])
        if sigma < bounds.min_noise_multiplier:
            return (
                "grant.dp_bounds",
                f"noise multiplier {sigma} is below the grant's minimum {bounds.min_noise_multiplier}",
            )
        rate = mechanism.get("sample_rate")
        if rate is not None and float(rate) > bounds.max_sample_rate:
            return (
                "grant.dp_bounds",
                f"sample rate {rate} is above the grant's maximum {bounds.max_sample_rate}",
            )
        if float(mechanism["delta"]) > self.delta:
            return "grant.delta", f"mechanism δ {mechanism['delta']} is above the grant's δ {self.delta}"
        return None

    def epsilon_for(self, site: str) -> float:
        if site not in self.epsilon:
            raise GrantSiteNotListed(f"site {site!r} is not listed in grant {self.study_id}")
        return self.epsilon[site]

    def to_claims(self) -> dict[str, Any]:
        body = self.model_dump(mode="json", exclude={"study_id", "issued_at", "expires_at", "kid"})
        return {
            "iss": ISSUER,
            "jti": self.study_id,
            "iat": int(self.issued_at.timestamp()),
            "exp": int(self.expires_at.timestamp()),
            **body,
        }

    @classmethod
    def from_claims(cls, claims: dict[str, Any], kid: str) -> Grant:
        data = {k: v for k, v in claims.items() if k not in {"iss", "jti", "iat", "exp"}}
        return cls(
            study_id=claims["jti"],
            issued_at=dt.datetime.fromtimestamp(claims["iat"], tz=dt.UTC),
            expires_at=dt.datetime.fromtimestamp(claims["exp"], tz=dt.UTC),
            kid=kid,
            **data,
        )


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
