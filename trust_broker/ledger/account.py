"""A dataset's budget account: its key, its period, and the life of each reservation in it.

One account per (site, dataset, period). A reservation moves through
``reserved → committed`` (the node ran and reports the actual parameters), ``reserved → released``
(the node did not run: nothing is charged) or ``reserved → expired`` (nobody said: it counts as
spent, since the node may have run). ``charged()`` is what the accountant composes.

This module is pure: the service persists the same transitions atomically in its store, and the
auditor replays them from the audit chain, so both read the same rules from here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from trust_broker.ledger.mechanisms import Mechanism


class LedgerError(ValueError):
    """A transition the ledger refuses (e.g. committing a request that was never reserved)."""


class AccountKey(NamedTuple):
    """Where a spend is booked: a site's dataset during one budget period."""

    site: str
    dataset: str
    period: str

    @property
    def label(self) -> str:
        return f"{self.site}/{self.dataset}/{self.period}"

    def to_json(self) -> dict[str, str]:
        return {"site": self.site, "dataset": self.dataset, "period": self.period}

    @classmethod
    def from_json(cls, data: Any) -> AccountKey:
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in cls._fields):
            raise ValueError(f"an account key needs string fields {', '.join(cls._fields)}, got {data!r}")
        return cls(site=data["site"], dataset=data["dataset"], period=data["period"])


PERIOD_LABELS: dict[str, Callable[[dt.datetime], str]] = {
    "calendar_year": lambda at: f"{at.year:04d}",
    "P1Y": lambda at: f"{at.year:04d}",
    "P6M": lambda at: f"{at.year:04d}-H{(at.month - 1) // 6 + 1}",
    "P3M": lambda at: f"{at.year:04d}-Q{(at.month - 1) // 3 + 1}",
    "P1M": lambda at: f"{at.year:04d}-{at.month:02d}",
}
"""Calendar-aligned periods (the values of ``policies.models.Period``) → label of the period of a date."""


def period_of(at: dt.datetime, period: str) -> str:
    """Label of the budget period containing ``at`` (UTC), e.g. ``2026``, ``2026-Q4``, ``2026-11``."""
    if at.tzinfo is None:
        raise ValueError("period_of needs a timezone-aware datetime")
    try:
        label = PERIOD_LABELS[period]
    except KeyError as exc:
        raise ValueError(f"unknown budget period {period!r}; known: {', '.join(PERIOD_LABELS)}") from exc
    return label(at.astimezone(dt.UTC))


class EntryState(StrEnum):
    RESERVED = "reserved"
    COMMITTED = "committed"
    RELEASED = "released"
    EXPIRED = "expired"


CHARGED_STATES = frozenset({EntryState.RESERVED, EntryState.COMMITTED, EntryState.EXPIRED})
"""A pending reservation is held against the cap; an expired one counts as spent; a released one not."""


@dataclass
class Entry:
    request_id: str
    mechanism: Mechanism
    state: EntryState


@dataclass
class AccountBook:
    """The reservations of one account, in the order they were made."""

    key: AccountKey
    entries: dict[str, Entry] = field(default_factory=dict)

    def charged(self) -> list[Mechanism]:
        """Mechanisms the account is charged for, in reservation order."""
        return [entry.mechanism for entry in self.entries.values() if entry.state in CHARGED_STATES]

    def _entry(self, request_id: str, action: str) -> Entry:
        entry = self.entries.get(request_id)
        if entry is None:
            raise LedgerError(
                f"{self.key.label}: cannot {action} request {request_id!r}: it was never reserved"
            )
        return entry

    def reserve(self, request_id: str, mechanism: Mechanism) -> Entry:
        """Hold ``mechanism``; repeating the same request id with the same mechanism is a no-op."""
        entry = self.entries.get(request_id)
        if entry is not None:
            if entry.mechanism != mechanism:
                raise LedgerError(
                    f"{self.key.label}: request {request_id!r} was already reserved with other parameters"
                )
            return entry
        entry = Entry(request_id, mechanism, EntryState.RESERVED)
        self.entries[request_id] = entry
        return entry

    def commit(self, request_id: str, mechanism: Mechanism) -> Entry:
        """Record the parameters actually used (a late commit after expiry also replaces the held ones)."""
        entry = self._entry(request_id, "commit")
        if entry.state is EntryState.COMMITTED and entry.mechanism == mechanism:
            return entry
        if entry.state not in (EntryState.RESERVED, EntryState.EXPIRED):
            raise LedgerError(f"{self.key.label}: cannot commit request {request_id!r}: it is {entry.state}")
        entry.mechanism = mechanism
        entry.state = EntryState.COMMITTED
        return entry

    def release(self, request_id: str, mechanism: Mechanism | None = None) -> Entry:
        """Give back a reservation the node did not use."""
        return self._settle(request_id, EntryState.RELEASED, "release")

    def expire(self, request_id: str, mechanism: Mechanism | None = None) -> Entry:
        """Close a reservation nobody committed nor released: it stays charged."""
        return self._settle(request_id, EntryState.EXPIRED, "expire")

    def _settle(self, request_id: str, state: EntryState, action: str) -> Entry:
        entry = self._entry(request_id, action)
        if entry.state is state:
            return entry
        if entry.state is not EntryState.RESERVED:
            raise LedgerError(
                f"{self.key.label}: cannot {action} request {request_id!r}: it is {entry.state}"
            )
        entry.state = state
        return entry

    def apply(self, event_kind: str, request_id: str, mechanism: Mechanism | None) -> Entry:
        """Replay one ``budget.*`` audit event on this book."""
        try:
            transition = TRANSITIONS[event_kind]
        except KeyError as exc:
            raise LedgerError(f"{event_kind!r} is not a budget transition") from exc
        if mechanism is None and event_kind in NEEDS_MECHANISM:
            raise LedgerError(f"{event_kind} of request {request_id!r} records no mechanism")
        return transition(self, request_id, mechanism)


TRANSITIONS: dict[str, Callable[[AccountBook, str, Any], Entry]] = {
    "budget.reserved": AccountBook.reserve,
    "budget.committed": AccountBook.commit,
    "budget.released": AccountBook.release,
    "budget.expired": AccountBook.expire,
}
NEEDS_MECHANISM = frozenset({"budget.reserved", "budget.committed"})
