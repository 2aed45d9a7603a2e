"""The ledger's one state machine: reservations ``reserved → committed | released | expired``.

``Ledger.apply(event)`` is the only place the life of a reservation and the charge of an account are
written down. The broker's writer applies the events it records, its catch-up applies the events
other broker processes recorded, and the auditor replays the exported chain through the same
method — so the three cannot drift apart (issue 11, finding 6: the σ-spelling bug came from three
copies of these rules).

A mechanism is held by its canonical JSON spelling (RFC 8785, the audit chain's), so the same
mechanism is one key whether it came from a request, a database row or an event; ``mechanism_of``
parses a spelling once.

The writer's ledger is *partial*: it holds the accounts and reservations it has read, not all of
them. ``apply`` then updates what it holds and says (``Applied.complete``) whether it could follow
the event exactly; the auditor's ledger starts from the genesis and holds everything, so for it an
event it cannot follow is a ``LedgerError``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

import rfc8785

from trust_broker.ledger.account import AccountKey, EntryState, LedgerError
from trust_broker.ledger.mechanisms import Mechanism, parse_mechanism

BUDGET_EVENTS = frozenset({"budget.reserved", "budget.committed", "budget.released", "budget.expired"})
"""The events that move a reservation (``budget.refused`` changes no account)."""


@lru_cache(maxsize=8192)
def _canonical(text: str) -> str:
    return rfc8785.dumps(json.loads(text)).decode("utf-8")


def spelling(mechanism: str | dict[str, Any] | Mechanism) -> str:
    """The one spelling of a mechanism (RFC 8785 JSON, where σ = 1.0 is ``1``)."""
    if isinstance(mechanism, str):
        return _canonical(mechanism)
    if not isinstance(mechanism, dict):
        mechanism = mechanism.model_dump(mode="json")
    return _canonical(json.dumps(mechanism, sort_keys=True))


@lru_cache(maxsize=8192)
def mechanism_of(text: str) -> Mechanism:
    """The typed mechanism of a spelling (validated once per distinct mechanism)."""
    return parse_mechanism(json.loads(text))


class LedgerEvent(NamedTuple):
    """One transition, as the audit chain records it.

    ``reservation`` identifies the reservation (the broker's reservation id; an auditor replaying an
    export without ids uses the request id); ``mechanism`` is a spelling, required for ``reserved``
    and ``committed``; ``reserved_mechanism`` (a commit's) lets a partial ledger follow a commit of a
    reservation it never saw.
    """

    kind: str
    account: AccountKey
    reservation: str
    mechanism: str | None = None
    study_id: str | None = None
    reserved_mechanism: str | None = None

    @classmethod
    def from_payload(cls, kind: str, payload: dict[str, Any]) -> LedgerEvent:
        """Read a ``budget.*`` event's payload (raises ``ValueError`` naming the field)."""
        account = AccountKey.from_json(payload.get("account"))
        reservation = payload.get("reservation_id") or payload.get("request_id")
        if not isinstance(reservation, str) or not reservation:
            raise ValueError("reservation_id or request_id must be a non-empty string")
        study = payload.get("study_id")
        raw, reserved = payload.get("mechanism"), payload.get("reserved_mechanism")
        return cls(
            kind=kind,
            account=account,
            reservation=reservation,
            mechanism=None if raw is None else spelling(raw),
            study_id=study if isinstance(study, str) else None,
            reserved_mechanism=None if reserved is None else spelling(reserved),
        )


@dataclass
class Reservation:
    account: AccountKey
    mechanism: str
    state: EntryState
    study_id: str | None = None


class Applied(NamedTuple):
    changed: bool  # the event changed the ledger (False: a repeat of a transition already made)
    complete: bool  # a partial ledger followed it exactly (always True for a full ledger)


CHARGED_STATES = frozenset({EntryState.RESERVED, EntryState.COMMITTED, EntryState.EXPIRED})
"""A pending reservation is held against the cap; an expired one counts as spent; a released one not."""


@dataclass
class Ledger:
    """Accounts (charged mechanism spelling → how many) and the reservations behind them."""

    full: bool = True
    accounts: dict[AccountKey, Counter[str]] = field(default_factory=dict)
    reservations: dict[str, Reservation] = field(default_factory=dict)

    # -- reading -----------------------------------------------------------------------------------
    def charged(self, account: AccountKey) -> Counter[str]:
        """What ``account`` is charged for (empty if unknown)."""
        return self.accounts.get(account, Counter())

    def mechanisms(self, account: AccountKey) -> list[Mechanism]:
        """The charged mechanisms, identical ones merged into one with their repeats added."""
        return merged_mechanisms(self.charged(account))

    def load(self, account: AccountKey, charged: Counter[str]) -> Counter[str]:
        """A partial ledger learns an account's charge (read from the database)."""
        self.accounts[account] = charged
        return charged

    # -- the state machine -------------------------------------------------------------------------
    def apply(self, event: LedgerEvent) -> Applied:
        """Make one transition; ``LedgerError`` for one the rules refuse (on a full ledger, also for
        a reservation it does not know)."""
        if event.kind not in BUDGET_EVENTS:
            raise LedgerError(f"{event.kind!r} is not a budget transition")
        if event.kind in ("budget.reserved", "budget.committed") and event.mechanism is None:
            raise LedgerError(f"{event.kind} of {event.reservation!r} records no mechanism")
        if not self.full:
            return self._follow(event)
        live = self.reservations.get(event.reservation)
        if live is not None and live.account != event.account:
            raise LedgerError(
                f"{event.account.label}: reservation {event.reservation!r} belongs to {live.account.label}"
            )
        state = next_state(
            None if live is None else live.state,
            event.kind,
            same_mechanism=live is not None and live.mechanism == event.mechanism,
            where=f"{event.account.label}: request {event.reservation!r}",
        )
        if state is None:
            return Applied(False, True)
        if live is None:
            assert event.mechanism is not None
            self.reservations[event.reservation] = Reservation(
                event.account, event.mechanism, state, event.study_id
            )
            self._charge(event.account, add=event.mechanism)
            return Applied(True, True)
        if event.kind == "budget.committed":
            assert event.mechanism is not None
            self._charge(event.account, remove=live.mechanism, add=event.mechanism)
            live.mechanism = event.mechanism
        elif event.kind == "budget.released":
            self._charge(event.account, remove=live.mechanism)
        live.state = state
        return Applied(True, True)

    def _follow(self, event: LedgerEvent) -> Applied:
        """A partial ledger (the writer's) keeps charges only: the reservations' states are the
        database's rows, checked with ``next_state`` by the store. A commit or release names the
        mechanism it replaces or gives back (``reserved_mechanism``); without it, not ``complete``."""
        charged = self.accounts.get(event.account)
        if charged is None or event.kind == "budget.expired":
            return Applied(True, True)  # nothing held here changes
        if event.kind == "budget.reserved":
            self._charge(event.account, add=event.mechanism)
            return Applied(True, True)
        if event.reserved_mechanism is None:
            return Applied(True, False)
        added = event.mechanism if event.kind == "budget.committed" else None
        self._charge(event.account, remove=event.reserved_mechanism, add=added)
        return Applied(True, True)

    def _charge(self, account: AccountKey, *, add: str | None = None, remove: str | None = None) -> None:
        charged = self.accounts.get(account)
        if charged is None:
            charged = self.accounts[account] = Counter()
        if remove is not None:
            charged[remove] -= 1
            if charged[remove] < 0:
                raise LedgerError(f"{account.label}: the charge of {remove} went negative")
            if charged[remove] == 0:
                del charged[remove]
        if add is not None:
            charged[add] += 1


_TARGET = {
    "budget.reserved": EntryState.RESERVED,
    "budget.committed": EntryState.COMMITTED,
    "budget.released": EntryState.RELEASED,
    "budget.expired": EntryState.EXPIRED,
}


def next_state(
    current: EntryState | str | None, kind: str, *, same_mechanism: bool, where: str = "reservation"
) -> EntryState | None:
    """The one transition table: the state ``kind`` moves a reservation in ``current`` to, None when
    it is a repeat of a transition already made (idempotent), ``LedgerError`` when it is refused.

    ``current`` None: never reserved; a store's ``refused`` row is no reservation either.
    """
    target = _TARGET.get(kind)
    if target is None:
        raise LedgerError(f"{kind!r} is not a budget transition")
    if isinstance(current, str):
        if current not in EntryState._value2member_map_:  # a store's "refused" row
            raise LedgerError(f"{where} is {current}, not a reservation")
        current = EntryState(current)
    if target is EntryState.RESERVED:
        if current is None:
            return target
        if same_mechanism:
            return None
        raise LedgerError(f"{where} was already reserved with other parameters")
    action = {"committed": "commit", "released": "release", "expired": "expire"}[target.value]
    if current is None:
        raise LedgerError(f"cannot {action} {where}: it was never reserved")
    if current is target and (same_mechanism or target is not EntryState.COMMITTED):
        return None
    allowed = (
        (EntryState.RESERVED, EntryState.EXPIRED)
        if target is EntryState.COMMITTED
        else (EntryState.RESERVED,)
    )
    if current not in allowed:
        raise LedgerError(f"cannot {action} {where}: it is {current.value}")
    return target


def merged_mechanisms(charged: Counter[str]) -> list[Mechanism]:
    """The charged mechanisms with identical ones merged (their steps or counts added): exact under
    RDP composition, and a long history costs one entry per distinct parameter set."""
    merged: list[Mechanism] = []
    for text, count in charged.items():
        if count < 0:
            raise LedgerError(f"negative charge {count} for {text}")
        if count == 0:
            continue
        mechanism = mechanism_of(text)
        repeat = "steps" if mechanism.kind == "subsampled_gaussian" else "count"
        merged.append(mechanism.model_copy(update={repeat: getattr(mechanism, repeat) * count}))
    return merged
