"""The ledger through the service: caps, idempotency, commit limits, release, expiry."""

from __future__ import annotations

import datetime as dt

import pytest
from broker_support import Broker, dpsgd

from trust_broker.client import BudgetRefused, GrantNotUsable
from trust_broker.roles import Role
from trust_broker.service import BrokerSettings


def _reserve(node, study: str, request_id: str, **mechanism: object):  # noqa: ANN001, ANN202
    return node.reserve(
        request_id=request_id, study_id=study, dataset="parcours", mechanism=dpsgd(**mechanism), examples=500
    )


def test_same_request_id_gets_the_same_answer_and_is_counted_once(broker: Broker) -> None:
    study = broker.grant()
    node = broker.client(Role.NODE, "apec")
    first = _reserve(node, study, "round-1")
    again = _reserve(node, study, "round-1")
    assert again.reservation_id == first.reservation_id
    assert node.balance("parcours").reservations == 1
    assert node.balance("parcours").epsilon == pytest.approx(first.epsilon_after)


def test_request_id_reused_with_other_parameters_is_a_conflict(broker: Broker) -> None:
    study = broker.grant()
    node = broker.client(Role.NODE, "apec")
    _reserve(node, study, "round-1")
    with pytest.raises(BudgetRefused) as conflict:
        _reserve(node, study, "round-1", steps=11)
    assert conflict.value.rule == "budget.request_id_reused"


def test_reserve_passing_the_study_cap_is_refused_and_the_refusal_is_repeated(broker: Broker) -> None:
    study = broker.grant(target_epsilon=1.0, sites=("apec",))
    node = broker.client(Role.NODE, "apec")
    with pytest.raises(BudgetRefused) as refused:
        _reserve(node, study, "big", steps=200)
    assert refused.value.rule == "budget.study_cap"
    assert refused.value.value > refused.value.limit
    with pytest.raises(BudgetRefused) as again:
        _reserve(node, study, "big", steps=200)
    assert again.value.reservation_id == refused.value.reservation_id
    assert node.balance("parcours").reservations == 0


def test_reserve_passing_the_account_cap_is_refused_across_studies(broker: Broker) -> None:
    node = broker.client(Role.NODE, "apec")
    first = broker.grant(target_epsilon=3.5, sites=("apec",))
    _reserve(node, first, "a", sigma=0.8)  # ε ≈ 3.09 of APEC's 4
    second = broker.grant(target_epsilon=0.5, sites=("apec", "france_travail"))
    with pytest.raises(BudgetRefused) as refused:
        _reserve(node, second, "b", sigma=0.5)
    assert refused.value.rule == "budget.cap"
    assert refused.value.limit == pytest.approx(4.0)
    assert node.balance("parcours").epsilon <= 4.0  # APEC's cap


def test_commit_records_actual_parameters_but_never_more_than_reserved(broker: Broker) -> None:
    study = broker.grant()
    node = broker.client(Role.NODE, "apec")
    reservation = _reserve(node, study, "r", steps=10)
    with pytest.raises(BudgetRefused) as refused:
        node.commit(reservation.reservation_id, dpsgd(steps=20))
    assert refused.value.rule == "budget.commit_exceeds_reservation"
    committed = node.commit(reservation.reservation_id, dpsgd(steps=8))
    assert committed.status == "committed"
    assert committed.epsilon_after < reservation.epsilon_after
    assert node.commit(reservation.reservation_id, dpsgd(steps=8)).status == "committed"  # idempotent


def test_release_gives_the_budget_back(broker: Broker) -> None:
    study = broker.grant()
    node = broker.client(Role.NODE, "apec")
    reservation = _reserve(node, study, "r")
    released = node.release(reservation.reservation_id)
    assert released.status == "released"
    assert node.balance("parcours").epsilon == 0.0
    with pytest.raises(BudgetRefused):
        node.commit(reservation.reservation_id, dpsgd())


def test_expired_reservation_counts_as_spent_and_cannot_be_released(make_broker) -> None:  # noqa: ANN001
    broker = make_broker(settings=BrokerSettings(reservation_ttl=dt.timedelta(seconds=-1)))
    study = broker.grant()
    node = broker.client(Role.NODE, "apec")
    reservation = _reserve(node, study, "r")
    with pytest.raises(BudgetRefused) as refused:
        node.release(reservation.reservation_id)
    assert refused.value.rule == "budget.reservation_expired"
    assert node.balance("parcours").epsilon == pytest.approx(reservation.epsilon_after)


def test_mechanism_outside_the_grants_bounds_is_refused(broker: Broker) -> None:
    study = broker.grant()
    node = broker.client(Role.NODE, "apec")
    with pytest.raises(GrantNotUsable) as weak:
        _reserve(node, study, "weak", sigma=0.1)
    assert weak.value.rule == "grant.dp_bounds"
    loose = dict(dpsgd(), delta=1e-3)
    with pytest.raises(GrantNotUsable) as refused:
        node.reserve(request_id="loose", study_id=study, dataset="parcours", mechanism=loose, examples=5)
    assert refused.value.rule == "grant.delta"


def test_reserve_for_another_dataset_than_the_grants_is_refused(broker: Broker) -> None:
    study = broker.grant()
    with pytest.raises(GrantNotUsable) as refused:
        broker.client(Role.NODE, "apec").reserve(
            request_id="x", study_id=study, dataset="entreprises", mechanism=dpsgd(), examples=5
        )
    assert refused.value.rule == "grant.dataset"
