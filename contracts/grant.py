"""A study grant's claims, as the broker signs them and every node reads them.

The model is shared: the broker issues it (``trust_broker.grants.issue_grant``), nodes verify it
(``trust_broker.grants.verify_grant``) and the broker's API answers with it (``GrantResponse``).
Signing and verification stay with the broker's package; this module holds only the value.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from policies.models import EvaluationBudget

GRANT_TYPE = "r2dde-grant+jwt"
ISSUER = "r2dde-trust-broker"


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
