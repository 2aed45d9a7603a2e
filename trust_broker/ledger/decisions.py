"""The ledger's decisions on one request: accept or refuse a reserve, a commit, a release.

Every store (SQL, in memory) persists and locks, then asks these functions; none of them decides on
its own. They are pure: an account's charge (mechanism spelling → how many) in, the composed ε and
the refusal (if any) out, so two stores holding the same charges give the same answers, and a
rule changes in one place.

The study's share of an account is asked for lazily (``study_spent``): RDP composition is monotone,
so the study's own mechanisms (a subset of the account's) can pass the study's cap only when the
whole account does, and the costly read is skipped otherwise.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, Protocol

from trust_broker.ledger.account import AccountKey


class Composer(Protocol):
    """The composition a decision needs (``trust_broker.accounting.LedgerAccountant`` is one)."""

    def charged_delta(self, charged: Mapping[str, int], delta: float) -> float: ...

    def charged_epsilon(self, charged: Mapping[str, int], delta: float) -> float: ...

    def within(self, actual: dict[str, Any], reserved: dict[str, Any], delta: float) -> bool: ...


class Refusal(NamedTuple):
    """Why a request is refused: the rule's name, a sentence, and the limit and value compared."""

    rule: str
    detail: str
    limit: float | None = None
    value: float | None = None

    def body(self) -> dict[str, Any]:
        """As a refused reservation stores and answers it."""
        return {"rule": self.rule, "detail": self.detail, "limit": self.limit, "value": self.value}


class Composed(NamedTuple):
    """An account's δ and its ε composed at that δ."""

    delta: float
    epsilon: float


def recharged(charged: Mapping[str, int], add: str, remove: str | None = None) -> Counter[str]:
    """A copy of ``charged`` with one ``add`` more (and one ``remove`` less)."""
    after = Counter(charged)
    if remove is not None:
        after[remove] -= 1
    after[add] += 1
    return after


def _study_refusal(
    composer: Composer,
    composed: Composed,
    study_cap: float | None,
    study_after: Callable[[], Counter[str]],
    describe: Callable[[float, float], str],
) -> Refusal | None:
    if study_cap is None or composed.epsilon <= study_cap:
        return None  # the study's share can pass its cap only if the whole account does
    study_eps = composer.charged_epsilon(study_after(), composed.delta)
    if study_eps <= study_cap:
        return None
    return Refusal("budget.study_cap", describe(study_eps, study_cap), study_cap, study_eps)


def decide_reserve(
    composer: Composer,
    spent: Mapping[str, int],
    mechanism: str,
    *,
    account: AccountKey,
    study_id: str,
    cap: float,
    study_cap: float,
    delta: float,
    study_spent: Callable[[], Counter[str]],
) -> tuple[Composed, Refusal | None]:
    """Would one more ``mechanism`` keep the account within ``cap`` and the study within its grant?"""
    after = recharged(spent, mechanism)
    account_delta = composer.charged_delta(after, delta)
    composed = Composed(account_delta, composer.charged_epsilon(after, account_delta))
    if composed.epsilon > cap:
        detail = f"composed ε {composed.epsilon:.4f} of {account.label} would pass the cap {cap:.4f}"
        return composed, Refusal("budget.cap", detail, cap, composed.epsilon)
    return composed, _study_refusal(
        composer,
        composed,
        study_cap,
        lambda: recharged(study_spent(), mechanism),
        lambda eps, limit: (
            f"study {study_id} would spend ε {eps:.4f} at {account.site}, above its grant's cap {limit:.4f}"
        ),
    )


def decide_commit(
    composer: Composer,
    spent: Mapping[str, int],
    *,
    reservation_id: str,
    account: AccountKey,
    study_id: str,
    reserved: dict[str, Any],
    actual: dict[str, Any],
    spellings: tuple[str, str],
    cap: float,
    study_cap: float | None,
    delta: float,
    study_spent: Callable[[], Counter[str]],
) -> tuple[Composed, Refusal | None]:
    """May the parameters actually used (``actual``) replace the ``reserved`` ones?

    The actual mechanism alone may not cost more than the reserved one; and since a mechanism cheaper
    alone can compose to far more (red-team finding 2), the account is composed again with it and
    checked against the cap and the study's grant like a reserve. ``spellings``: (reserved, actual).
    """
    old, new = spellings
    if actual != reserved and not composer.within(actual, reserved, delta):
        detail = f"committed mechanism of {reservation_id} costs more than was reserved"
        return Composed(delta, 0.0), Refusal("budget.commit_exceeds_reservation", detail)
    after = recharged(spent, new, old)
    account_delta = composer.charged_delta(after, delta)
    composed = Composed(account_delta, composer.charged_epsilon(after, account_delta))
    if composed.epsilon > cap:
        detail = (
            f"committing {reservation_id} would compose ε {composed.epsilon:.4f} on {account.label}, "
            f"past the cap {cap:.4f}; the reservation stays charged"
        )
        return composed, Refusal("budget.cap", detail, cap, composed.epsilon)
    return composed, _study_refusal(
        composer,
        composed,
        study_cap,
        lambda: recharged(study_spent(), new, old),
        lambda eps, limit: (
            f"committing {reservation_id} would make study {study_id} spend ε {eps:.4f} at "
            f"{account.site}, above its grant's {limit:.4f}"
        ),
    )


def release_refusal(reservation_id: str, expires_at: dt.datetime, now: dt.datetime) -> Refusal | None:
    """An expired reservation cannot be given back: the node may have run, so it counts as spent."""
    if expires_at < now:
        return Refusal(
            "budget.reservation_expired",
            f"reservation {reservation_id} expired; an expired reservation counts as spent",
        )
    return None


def replay_refusal(request_id: str, *, same_request: bool, previous_status: str) -> Refusal | None:
    """A request id sent again: the same request is answered with its reservation; anything else is
    refused. A settled reservation is not answered either: that would tell a node its round is
    covered when it is not (a request id is reserved once, and once settled it is spent)."""
    if not same_request:
        return Refusal(
            "budget.request_id_reused",
            f"request id {request_id} was already used for a different reservation",
        )
    if previous_status not in ("reserved", "refused"):
        return Refusal(
            "budget.request_settled",
            f"request id {request_id} was already {previous_status}; reserve with a new one",
        )
    return None


class LiveGrant(NamedTuple):
    """A granted study on a dataset, as ``grant_holds`` reads it."""

    study_id: str
    epsilon: Mapping[str, float]  # the grant's per-site ε
    expires_at: dt.datetime | None


def grant_holds(grants: Iterable[LiveGrant], site: str, now: dt.datetime) -> dict[str, float]:
    """ε held at ``site`` by every grant still live: a grant holds its whole share from issue
    (red-team finding 5), so two grants cannot both be promised the same budget."""
    return {
        grant.study_id: float(grant.epsilon[site])
        for grant in grants
        if site in grant.epsilon and (grant.expires_at is None or grant.expires_at > now)
    }
