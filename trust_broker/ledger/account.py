"""A dataset's budget account: its key, its period, and the states a reservation in it goes through.

One account per (site, dataset, period). A reservation moves through
``reserved → committed`` (the node ran and reports the actual parameters), ``reserved → released``
(the node did not run: nothing is charged) or ``reserved → expired`` (nobody said: it counts as
spent, since the node may have run). The transitions themselves are ``ledger.state.Ledger.apply``'s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from enum import StrEnum
from typing import Any, NamedTuple


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
