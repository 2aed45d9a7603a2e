"""What each change of the broker's state records in the audit chain, and the refusals it can meet,
for every store: two stores making the same change append the same event.

The ledger's changes are ``ledger_flow``'s; these are the others (participants, studies,
registries), plus the conversions both stores share.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from trust_broker.audit.chain import EVENT_KINDS
from trust_broker.store.linking import PendingEvent
from trust_broker.store.records import NotFound, Participant, StoreError, StudyRecord

ALL_PURPOSES = "*"
CONSENT_ACTIONS = frozenset({"given", "withdrawn"})


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def aware(moment: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes; everything in the broker is UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def dumps(data: Any) -> str:
    """The JSON a store keeps (sorted keys, no spaces): equal values, equal text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def digest(pseudonym: str) -> str:
    """What the chain records of a pseudonym: its digest, never the pseudonym itself."""
    return "sha256:" + hashlib.sha256(pseudonym.encode("utf-8")).hexdigest()


# -- participants ------------------------------------------------------------------------------------
def participant_registered(participant: Participant, actor: str) -> PendingEvent:
    payload = {
        "kid": participant.kid,
        "role": participant.role.value,
        "site": participant.site,
        "public_key": participant.public_key,
    }
    return PendingEvent("participant.registered", actor, payload)


def participant_removed(kid: str, role: str, site: str | None, actor: str) -> PendingEvent:
    return PendingEvent("participant.removed", actor, {"kid": kid, "role": role, "site": site})


# -- studies -----------------------------------------------------------------------------------------
def study_exists(study_id: str) -> StoreError:
    return StoreError("study.exists", f"study {study_id} already exists")


def study_unknown(study_id: str) -> NotFound:
    return NotFound("study.unknown", f"no study {study_id}")


def study_recorded(study: StudyRecord, actor: str, broker_kid: str) -> list[PendingEvent]:
    """A decided study's events: requested, decided, and its grant if one was issued."""
    events = [
        PendingEvent("study.requested", actor, dict(study.request)),
        PendingEvent("study.decided", actor, {"study_id": study.study_id, **study.decision}),
    ]
    if study.grant_jws is not None:
        grant = {
            "study_id": study.study_id,
            "grant": study.grant_jws,
            "kid": broker_kid,
            "claims": study.grant,
        }
        events.append(PendingEvent("grant.issued", actor, grant))
    return events


def revocation(study_id: str, status: str, actor: str, reason: str) -> PendingEvent | None:
    """The event revoking a study in ``status``: None if revoked already; refused if it had no grant."""
    if status == "refused":
        raise StoreError("study.refused", f"study {study_id} was refused; there is no grant to revoke")
    if status == "revoked":
        return None
    return PendingEvent("grant.revoked", actor, {"study_id": study_id, "reason": reason})


def node_report(study_id: str, site: str, report: dict[str, Any], actor: str) -> PendingEvent:
    return PendingEvent("node.report", actor, {"study_id": study_id, "site": site, **report})


# -- registries --------------------------------------------------------------------------------------
def opt_out_added(seq: int, pseudonym: str, purpose_key: str, site: str, actor: str) -> PendingEvent:
    payload = {"seq": seq, "count": 1, "digest": digest(pseudonym), "purpose": purpose_key, "site": site}
    return PendingEvent("optout.added", actor, payload)


def opt_out_item(seq: int, pseudonym: str, purpose_key: str, site: str, at: dt.datetime) -> dict[str, Any]:
    """An opt-out as a page lists it (``purpose`` None: every purpose)."""
    purpose = None if purpose_key == ALL_PURPOSES else purpose_key
    return {
        "seq": seq,
        "linkage_pseudonym": pseudonym,
        "purpose": purpose,
        "site": site,
        "at": at.isoformat(),
    }


def check_consent_action(action: str) -> None:
    if action not in CONSENT_ACTIONS:
        raise StoreError(
            "consent.action", f"consent action must be given or withdrawn, not {action!r}", status=422
        )
    if f"consent.{action}" not in EVENT_KINDS:
        raise StoreError(
            "consent.unavailable", "this broker's audit chain cannot record consents yet", status=503
        )


def consent_recorded(
    seq: int, pseudonym: str, purpose: str, action: str, site: str, actor: str
) -> PendingEvent:
    payload = {"seq": seq, "count": 1, "digest": digest(pseudonym), "purpose": purpose, "site": site}
    return PendingEvent(f"consent.{action}", actor, payload)


def consent_item(
    seq: int, pseudonym: str, purpose: str, action: str, site: str, at: dt.datetime
) -> dict[str, Any]:
    return {
        "seq": seq,
        "linkage_pseudonym": pseudonym,
        "purpose": purpose,
        "action": action,
        "site": site,
        "at": at.isoformat(),
    }
