"""Linking a change's events to the audit chain, whatever holds the chain (database rows, memory).

The hashing and the event's form are ``audit.chain``'s; this is what every store adds: events
pending until their change is decided, a tip to link after, and when the broker signs the head.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from trust_broker.audit.chain import AuditEvent, next_event

HeadSigner = Callable[[AuditEvent], str]


class Tip(NamedTuple):
    """The chain's last event, by (seq, hash); (0, GENESIS) before the first."""

    seq: int
    hash: str


class PendingEvent(NamedTuple):
    """A change's event before it is linked: its place in the chain is fixed when its transaction ends."""

    kind: str
    actor: str
    payload: dict[str, Any]


class HeadSigning(NamedTuple):
    """Who signs the chain's head, and how often: after a transaction that passes a multiple of ``every``."""

    sign: HeadSigner | None
    every: int = 1


class Extended(NamedTuple):
    events: list[AuditEvent]  # the linked events, in order (the last is the chain's new head)
    head_jws: str | None  # the head signed for them, if this extension passed a multiple of ``every``


def link(tip: Tip, pending: Sequence[PendingEvent], heads: HeadSigning) -> Extended:
    """Link ``pending`` after ``tip`` (one timestamp for them all) and sign the new head when the
    extension passes a multiple of ``heads.every``. The caller writes the events and the head."""
    if not pending:
        return Extended([], None)
    at = dt.datetime.now(dt.UTC)
    # ``next_event`` links to the previous event by its seq and hash only: the tip holds both.
    previous = None if tip.seq == 0 else AuditEvent.model_construct(seq=tip.seq, hash=tip.hash)
    linked = []
    for item in pending:
        previous = next_event(previous, kind=item.kind, actor=item.actor, payload=item.payload, at=at)
        linked.append(previous)
    head_jws = None
    if heads.sign is not None and linked[-1].seq // heads.every > tip.seq // heads.every:
        head_jws = heads.sign(linked[-1])
    return Extended(linked, head_jws)
