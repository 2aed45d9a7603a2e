"""The ledger's decisions, which every store asks (``ledger.decisions``): pure, on charges."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from trust_broker.accounting import LedgerAccountant
from trust_broker.ledger.account import AccountKey
from trust_broker.ledger.decisions import (
    LiveGrant,
    decide_commit,
    decide_reserve,
    grant_holds,
    release_refusal,
    replay_refusal,
)
from trust_broker.ledger.state import spelling

DELTA = 1e-6
ACCOUNT = AccountKey("apec", "parcours", "2026")


def gaussian(sigma: float) -> dict[str, object]:
    return {"kind": "gaussian", "noise_multiplier": sigma, "count": 1, "delta": DELTA}


def test_the_study_share_is_read_only_when_the_account_passes_the_study_cap() -> None:
    composer = LedgerAccountant()
    one = spelling(gaussian(2.0))
    single = composer.charged_epsilon(Counter({one: 1}), DELTA)
    reads: list[int] = []

    def study_spent() -> Counter[str]:
        reads.append(1)
        return Counter()  # the study has spent nothing itself: the others' spending is not its own

    def reserve(spent: int, cap: float, study_cap: float) -> tuple[float, str | None]:
        composed, refusal = decide_reserve(
            composer,
            Counter({one: spent}),
            one,
            account=ACCOUNT,
            study_id="s",
            cap=cap,
            study_cap=study_cap,
            delta=DELTA,
            study_spent=study_spent,
        )
        return composed.epsilon, None if refusal is None else refusal.rule

    assert reserve(0, 100.0, single * 2) == (single, None) and not reads
    assert reserve(5, 100.0, single * 1.01)[1] is None and reads == [
        1
    ]  # the account passed it, not the study
    assert reserve(5, single, 100.0)[1] == "budget.cap"


def test_a_commit_cheaper_alone_may_still_compose_past_the_cap() -> None:
    """Red-team finding 2: a mechanism cheaper than its reservation alone is composed again."""
    composer = LedgerAccountant()
    reserved, actual = gaussian(2.0), gaussian(2.5)
    old, new = spelling(reserved), spelling(actual)
    spent = Counter({old: 3})
    after = composer.charged_epsilon(Counter({old: 2, new: 1}), DELTA)
    kwargs = {
        "reservation_id": "r",
        "account": ACCOUNT,
        "study_id": "s",
        "reserved": reserved,
        "actual": actual,
        "spellings": (old, new),
        "study_cap": None,
        "delta": DELTA,
        "study_spent": Counter,
    }
    assert decide_commit(composer, spent, cap=after * 1.001, **kwargs)[1] is None  # type: ignore[arg-type]
    refused = decide_commit(composer, spent, cap=after * 0.999, **kwargs)[1]  # type: ignore[arg-type]
    assert refused is not None and refused.rule == "budget.cap"
    costlier = {**kwargs, "actual": gaussian(1.0), "spellings": (old, spelling(gaussian(1.0)))}
    refused = decide_commit(composer, spent, cap=100.0, **costlier)[1]  # type: ignore[arg-type]
    assert refused is not None and refused.rule == "budget.commit_exceeds_reservation"


def test_release_replay_and_holds() -> None:
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    expired = release_refusal("r", now - dt.timedelta(seconds=1), now)
    assert expired is not None and expired.rule == "budget.reservation_expired"
    assert release_refusal("r", now + dt.timedelta(seconds=1), now) is None
    reused = replay_refusal("q", same_request=False, previous_status="reserved")
    assert reused is not None and reused.rule == "budget.request_id_reused"
    settled = replay_refusal("q", same_request=True, previous_status="committed")
    assert settled is not None and settled.rule == "budget.request_settled"
    assert replay_refusal("q", same_request=True, previous_status="refused") is None
    grants = [
        LiveGrant("live", {"apec": 1.5}, now + dt.timedelta(days=1)),
        LiveGrant("open", {"apec": 0.5}, None),
        LiveGrant("ended", {"apec": 9.0}, now),
        LiveGrant("elsewhere", {"france_travail": 9.0}, None),
    ]
    assert grant_holds(grants, "apec", now) == {"live": 1.5, "open": 0.5}
