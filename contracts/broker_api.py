"""Request and response bodies of the broker's HTTP API (its OpenAPI is generated from these).

Shared by the service, which validates them, and the client that nodes, the coordinator and
auditors use, which parses them: one definition, and no web framework behind it.
A study request and the broker's decision are the governance model's own values
(``policies.StudyRequest``, ``policies.Decision``); the error body's ``reasons`` are its ``Reason``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from contracts.grant import Grant
from contracts.mechanisms import Mechanism
from policies.models import Decision, Reason

NoteKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")]
NoteText = Annotated[str, StringConstraints(max_length=512)]
"""A node report's notes are small counters and labels: 32 of them, 512 characters each at most (a
900 kB note once went into the chain)."""
PSEUDONYM_PATTERN = r"^[A-Za-z0-9_\-=+/:.]{16,128}$"
IDENT_PATTERN = r"^[A-Za-z0-9_.:\-]{1,128}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReceiptOut(_Body):
    """Where a change sits in the audit chain: its event (seq, hash, kind) and the chain's head after
    its transaction, signed by the broker (``head``, a compact JWS over ``{seq, hash, at}``). The head's
    hash commits to every event before it, the change's included (``audit.receipts``)."""

    head: str
    seq: int
    hash: str
    kind: str


class ErrorBody(_Body):
    """Every 4xx answer: a stable rule id and a sentence; ``reasons`` for policy refusals."""

    rule: str
    detail: str
    reasons: list[Reason] = Field(default_factory=list)
    limit: float | None = None
    value: float | None = None
    reservation_id: str | None = None
    receipt: ReceiptOut | None = None


class Health(_Body):
    status: Literal["ok"]
    database: str
    participants: int
    policies: dict[str, str]
    broker_kid: str
    broker_public_key: str


class GrantResponse(_Body):
    study_id: str
    grant: str = Field(description="compact JWS (EdDSA) the nodes verify with the pinned broker key")
    claims: Grant
    decision: Decision


class GrantStatus(_Body):
    study_id: str
    status: Literal["granted", "refused", "revoked", "expired"]
    expires_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    reason: str | None = None


class RevokeIn(_Body):
    reason: str = Field(min_length=1, max_length=500)


class NodeReportIn(_Body):
    """A node's entry for one round, recorded as a ``node.report`` audit event.

    The project's nodes send no record or opt-out count (exact counts are not DP releases and the
    audit export leaves the broker): the opt-out cursor, and digests in ``notes``. The count fields
    stay optional for nodes of older versions.
    """

    round: int | None = Field(default=None, ge=0)
    records_used: int | None = Field(default=None, ge=0)
    opt_outs_applied: int | None = Field(default=None, ge=0)
    consents_missing: int = Field(default=0, ge=0)
    opt_out_cursor: int = Field(ge=0, description="cursor of the opt-out list the node applied")
    consent_cursor: int | None = Field(default=None, ge=0)
    reservation_id: str | None = Field(default=None, pattern=IDENT_PATTERN)
    notes: dict[NoteKey, int | float | NoteText] = Field(default_factory=dict, max_length=32)


class EventRecorded(_Body):
    seq: int


class EventRemoved(_Body):
    kid: str
    removed: bool


class OptOutIn(_Body):
    linkage_pseudonym: str = Field(
        pattern=PSEUDONYM_PATTERN, description="linkage pseudonym, never an identifier"
    )
    purpose: str | None = Field(default=None, pattern=IDENT_PATTERN, description="null: every purpose")


class OptOutItem(_Body):
    """What a node reads: the pseudonym and the purpose, never where nor when the person objected (an
    auditor or an admin sees ``site`` and ``at``)."""

    seq: int
    linkage_pseudonym: str
    purpose: str | None
    site: str | None = None
    at: str | None = None


class OptOutPage(_Body):
    items: list[OptOutItem]
    cursor: int


class ConsentIn(_Body):
    linkage_pseudonym: str = Field(pattern=PSEUDONYM_PATTERN)
    purpose: str = Field(pattern=IDENT_PATTERN)
    action: Literal["given", "withdrawn"] = "given"


class ConsentItem(_Body):
    seq: int
    linkage_pseudonym: str
    purpose: str
    action: Literal["given", "withdrawn"]
    site: str | None = None  # not shown to nodes (see ``OptOutItem``)
    at: str | None = None


class ConsentPage(_Body):
    items: list[ConsentItem]
    cursor: int


class ReserveIn(_Body):
    request_id: str = Field(pattern=IDENT_PATTERN, description="idempotency key chosen by the node")
    study_id: str = Field(pattern=IDENT_PATTERN)
    dataset: str = Field(pattern=IDENT_PATTERN)
    mechanism: Mechanism
    examples: int = Field(ge=1, le=10**9, description="records the mechanism runs over")


class CommitIn(_Body):
    reservation_id: str = Field(pattern=IDENT_PATTERN)
    mechanism: Mechanism


class ReleaseIn(_Body):
    reservation_id: str = Field(pattern=IDENT_PATTERN)


class ReservationOut(_Body):
    reservation_id: str
    request_id: str
    study_id: str
    site: str
    dataset: str
    period: str
    status: Literal["reserved", "committed", "released", "refused"]
    mechanism: dict[str, Any]
    committed_mechanism: dict[str, Any] | None = None
    examples: int
    epsilon_after: float
    cap: float
    expires_at: dt.datetime
    receipt: ReceiptOut | None = Field(
        default=None, description="the broker's receipt for this change's audit event: keep it"
    )


class BalanceOut(_Body):
    site: str
    dataset: str
    period: str
    epsilon: float
    cap: float
    reservations: int = Field(description="reservations counted as spent (committed, pending and expired)")


class ParticipantOut(_Body):
    kid: str
    role: str
    site: str | None
    public_key: str


class ParticipantIn(_Body):
    kid: str = Field(pattern=IDENT_PATTERN)
    role: Literal["region", "node", "auditor", "admin"]
    site: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,63}$")
    public_key: str = Field(pattern=r"^[A-Za-z0-9_\-]{43}$", description="raw Ed25519 key, base64url")
