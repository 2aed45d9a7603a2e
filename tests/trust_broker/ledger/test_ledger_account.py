"""Account keys, budget periods and the life of a reservation (reserve, commit, release, expire)."""

from __future__ import annotations

import datetime as dt

import pytest

from trust_broker.ledger import AccountBook, AccountKey, LedgerError, SubsampledGaussian, period_of

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


def test_commit_replaces_the_reserved_parameters() -> None:
    book = AccountBook(KEY)
    book.reserve("r1", PLANNED)
    assert book.charged() == [PLANNED]
    book.commit("r1", ACTUAL)
    assert book.charged() == [ACTUAL]


def test_released_reservations_are_not_charged_expired_ones_are() -> None:
    book = AccountBook(KEY)
    book.reserve("released", PLANNED)
    book.reserve("expired", PLANNED)
    book.release("released")
    book.expire("expired")
    assert book.charged() == [PLANNED]


def test_reserve_is_idempotent_per_request_id_but_refuses_other_parameters() -> None:
    book = AccountBook(KEY)
    book.reserve("r1", PLANNED)
    book.reserve("r1", PLANNED)
    assert book.charged() == [PLANNED]
    with pytest.raises(LedgerError, match="already reserved with other parameters"):
        book.reserve("r1", ACTUAL)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([("commit", "ghost")], "never reserved"),
        ([("reserve", "r"), ("commit", "r"), ("release", "r")], "it is committed"),
        ([("reserve", "r"), ("release", "r"), ("commit", "r")], "it is released"),
        ([("reserve", "r"), ("release", "r"), ("expire", "r")], "it is released"),
    ],
)
def test_impossible_transitions_are_refused(steps: list[tuple[str, str]], message: str) -> None:
    book = AccountBook(KEY)
    kinds = {"reserve": "budget.reserved", "commit": "budget.committed", "release": "budget.released"}
    kinds["expire"] = "budget.expired"
    with pytest.raises(LedgerError, match=message):
        for action, request_id in steps:
            book.apply(kinds[action], request_id, PLANNED)


def test_a_late_commit_after_expiry_records_the_actual_parameters() -> None:
    book = AccountBook(KEY)
    book.reserve("r1", PLANNED)
    book.expire("r1")
    book.commit("r1", ACTUAL)
    assert book.charged() == [ACTUAL]


def test_replaying_a_reservation_without_its_mechanism_is_refused() -> None:
    with pytest.raises(LedgerError, match="records no mechanism"):
        AccountBook(KEY).apply("budget.reserved", "r1", None)
