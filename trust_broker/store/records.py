"""Plain records the store hands to the service; no ORM object leaves a transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from trust_broker.roles import Role


@dataclass(frozen=True)
class Participant:
    kid: str
    role: Role
    site: str | None
    public_key: str  # base64url raw Ed25519


@dataclass(frozen=True)
class StudyRecord:
    study_id: str
    status: str  # granted | refused | revoked
    purpose: str
    dataset: str
    requested_by: str
    request: dict[str, Any]
    decision: dict[str, Any]
    grant_jws: str | None
    grant: dict[str, Any] | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None = None
    revoke_reason: str | None = None


@dataclass(frozen=True)
class ReservationRecord:
    reservation_id: str
    request_id: str
    study_id: str
    site: str
    dataset: str
    period: str
    status: str  # reserved | committed | released | refused
    mechanism: dict[str, Any]
    committed_mechanism: dict[str, Any] | None
    examples: int
    epsilon_after: float
    cap: float
    created_at: dt.datetime
    expires_at: dt.datetime
    refusal: dict[str, Any] | None = None
    receipt: dict[str, Any] | None = None  # the broker's receipt for this answer's event (audit.receipts)

    @property
    def accepted(self) -> bool:
        return self.status != "refused"


@dataclass(frozen=True)
class ReserveRequest:
    """Everything the ledger needs to decide one reserve; the service fills caps from the policies."""

    requester: str
    request_id: str
    study_id: str
    site: str
    dataset: str
    period: str
    mechanism: dict[str, Any]
    examples: int
    cap: float
    study_cap: float
    delta: float
    ttl: dt.timedelta


@dataclass(frozen=True)
class ListPage:
    """Items after a cursor and the cursor to pass next time."""

    items: list[dict[str, Any]]
    cursor: int


@dataclass(frozen=True)
class AccountBalance:
    site: str
    dataset: str
    period: str
    epsilon: float
    charged: int = 0  # reservations counted as spent (committed, pending, expired)
    mechanisms: list[dict[str, Any]] = field(default_factory=list)  # merged: one per distinct parameter set


class StoreError(Exception):
    """A request the store refuses; ``rule`` names the refusing rule, ``status`` the HTTP code to answer."""

    status = 409

    def __init__(self, rule: str, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail
        if status is not None:
            self.status = status


class NotFound(StoreError):
    status = 404


def granted_claims(study_id: str, state: tuple[str, str | None] | None) -> str:
    """The grant's claims (JSON) if the study's grant stands; the refusal names the rule otherwise."""
    if state is None:
        raise NotFound("study.unknown", f"no study {study_id}")
    status, claims = state
    if status == "revoked":
        raise StoreError("grant.revoked", f"the grant of study {study_id} was revoked", status=403)
    if status != "granted" or claims is None:
        raise StoreError("grant.refused", f"study {study_id} has no grant", status=403)
    return claims
