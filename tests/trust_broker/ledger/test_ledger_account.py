"""Account keys, budget periods and the life of a reservation (reserve, commit, release, expire)."""

from __future__ import annotations

import datetime as dt

import pytest

from trust_broker.ledger import (
    AccountKey,
    Ledger,
    LedgerError,
    LedgerEvent,
    SubsampledGaussian,
    period_of,
    spelling,
)

KEY = AccountKey("apec", "parcours", "2026")
PLANNED = SubsampledGaussian(noise_multiplier=1.0, sample_rate=0.01, steps=100, delta=1e-6)
ACTUAL = PLANNED.model_copy(update={"steps": 80})


@pytest.mark.parametrize(
    ("period", "label"),
    [("calendar_year", "2026"), ("P1Y", "2026"), ("P6M", "2026-H2"), ("P3M", "2026-Q4"), ("P1M", "2026-11")],
)
def test_period_labels_are_calendar_aligned(period: str, label: str) -> None:
    assert period_of(dt.datetime(2026, 11, 25, 17, 0, tzinfo=dt.UTC), period) == label


def test_period_is_taken_in_utc() -> None:
    paris_new_year = dt.datetime(2027, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert period_of(paris_new_year, "calendar_year") == "2026"


def test_period_refuses_naive_times_and_unknown_periods() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        period_of(dt.datetime(2026, 1, 1), "P1Y")
    with pytest.raises(ValueError, match="unknown budget period 'P2W'"):
        period_of(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "P2W")


def test_account_key_round_trips_through_json_and_rejects_partial_keys() -> None:
    assert AccountKey.from_json(KEY.to_json()) == KEY
    assert KEY.label == "apec/parcours/2026"
    with pytest.raises(ValueError, match="account key"):
        AccountKey.from_json({"site": "apec", "dataset": "parcours"})


def _event(kind: str, reservation: str, mechanism: SubsampledGaussian | None = PLANNED) -> LedgerEvent:
    return LedgerEvent(f"budget.{kind}", KEY, reservation, None if mechanism is None else spelling(mechanism))


def test_commit_replaces_the_reserved_parameters() -> None:
    ledger = Ledger()
    ledger.apply(_event("reserved", "r1"))
    assert ledger.mechanisms(KEY) == [PLANNED]
    ledger.apply(_event("committed", "r1", ACTUAL))
    assert ledger.mechanisms(KEY) == [ACTUAL]


def test_released_reservations_are_not_charged_expired_ones_are() -> None:
    ledger = Ledger()
    ledger.apply(_event("reserved", "released"))
    ledger.apply(_event("reserved", "expired"))
    ledger.apply(_event("released", "released", None))
    ledger.apply(_event("expired", "expired", None))
    assert ledger.mechanisms(KEY) == [PLANNED]


def test_identical_mechanisms_merge_into_one_with_their_steps_added() -> None:
    ledger = Ledger()
    for request in ("r1", "r2", "r3"):
        ledger.apply(_event("reserved", request))
    assert ledger.mechanisms(KEY) == [PLANNED.model_copy(update={"steps": 300})]


def test_one_mechanism_has_one_spelling() -> None:
    """σ = 1.0 from a row and σ = 1 from an event are the same charge (the bug of the last change)."""
    as_row = {"kind": "gaussian", "noise_multiplier": 1.0, "count": 1, "delta": 1e-6}
    as_event = {"kind": "gaussian", "noise_multiplier": 1, "count": 1, "delta": 1e-6}
    assert (
        spelling(as_row)
        == spelling(as_event)
        == spelling('{"count":1,"delta":1e-6,"kind":"gaussian","noise_multiplier":1.0}')
    )


def test_reserve_is_idempotent_per_request_id_but_refuses_other_parameters() -> None:
    ledger = Ledger()
    ledger.apply(_event("reserved", "r1"))
    assert ledger.apply(_event("reserved", "r1")).changed is False
    assert ledger.mechanisms(KEY) == [PLANNED]
    with pytest.raises(LedgerError, match="already reserved with other parameters"):
        ledger.apply(_event("reserved", "r1", ACTUAL))


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([("committed", "ghost")], "never reserved"),
        ([("reserved", "r"), ("committed", "r"), ("released", "r")], "it is committed"),
        ([("reserved", "r"), ("released", "r"), ("committed", "r")], "it is released"),
        ([("reserved", "r"), ("released", "r"), ("expired", "r")], "it is released"),
    ],
)
def test_impossible_transitions_are_refused(steps: list[tuple[str, str]], message: str) -> None:
    ledger = Ledger()
    with pytest.raises(LedgerError, match=message):
        for kind, request_id in steps:
            ledger.apply(_event(kind, request_id))


def test_a_late_commit_after_expiry_records_the_actual_parameters() -> None:
    ledger = Ledger()
    ledger.apply(_event("reserved", "r1"))
    ledger.apply(_event("expired", "r1", None))
    ledger.apply(_event("committed", "r1", ACTUAL))
    assert ledger.mechanisms(KEY) == [ACTUAL]


def test_replaying_a_reservation_without_its_mechanism_is_refused() -> None:
    with pytest.raises(LedgerError, match="records no mechanism"):
        Ledger().apply(_event("reserved", "r1", None))


def test_a_partial_ledger_follows_what_it_holds_and_says_when_it_cannot() -> None:
    """The writer's catch-up: accounts it never read are skipped; a release of a reservation it does not
    know, on an account it holds, cannot be followed (its mechanism is only in the database)."""
    from collections import Counter

    partial = Ledger(full=False)
    partial.load(KEY, Counter({spelling(PLANNED): 2}))
    assert partial.apply(
        _event("committed", "other-process", ACTUAL)._replace(reserved_mechanism=spelling(PLANNED))
    ).complete
    assert partial.mechanisms(KEY) == [PLANNED, ACTUAL]
    assert not partial.apply(_event("released", "unknown", None)).complete
    other = AccountKey("apec", "parcours", "2025")
    assert partial.apply(LedgerEvent("budget.reserved", other, "x", spelling(PLANNED))).complete
    assert other not in partial.accounts
