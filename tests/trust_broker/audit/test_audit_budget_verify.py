"""The auditor recomputes every account's ε: a broker that under-reports or overspends is caught."""

from __future__ import annotations

from pathlib import Path

import pytest
from audit_helpers import APEC, CAP, DELTA, FT, ROUND, BrokerLog, typical_log
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trust_broker.audit.verify import verify_export


def _verify(log: BrokerLog, tmp_path: Path):  # type: ignore[no-untyped-def]
    log.sign_last()
    return verify_export(log.write(tmp_path / "audit.jsonl"))


def test_a_broker_under_reporting_epsilon_is_caught_at_that_event(
    broker_key: Ed25519PrivateKey, node_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    log = typical_log(broker_key, node_key)
    log.budget("budget.reserved", APEC, "etude-2026-001/apec/r5", ROUND, epsilon_factor=0.7)
    report = _verify(log, tmp_path)
    assert not report.ok
    problem = report.problems[-1]
    assert problem.rule == "budget.epsilon_mismatch"
    assert problem.line == len(log.events) + 1  # header is line 1
    assert "apec/parcours/2026" in problem.detail and "under-reported" in problem.detail


def test_an_account_spent_past_its_cap_is_caught_even_when_the_broker_reports_honestly(
    broker_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    log = BrokerLog(broker_key)
    log.budget("budget.reserved", FT, "r1", ROUND)
    heavy = ROUND.model_copy(update={"steps": 4000, "noise_multiplier": 0.9})
    log.budget("budget.committed", FT, "r1", heavy)  # the node ran far more than it reserved
    report = _verify(log, tmp_path)
    assert [(p.line, p.rule) for p in report.problems] == [(3, "budget.overspend")]
    account = report.accounts[FT]
    assert account.overspent and account.epsilon_recomputed > CAP
    assert account.epsilon_recorded == pytest.approx(account.epsilon_recomputed, rel=0.02)


def test_epsilon_reported_at_a_looser_delta_is_caught(broker_key: Ed25519PrivateKey, tmp_path: Path) -> None:
    log = BrokerLog(broker_key)
    log.budget("budget.reserved", FT, "r1", ROUND)
    event = log.events[-1]
    payload = {**event.payload, "delta": DELTA * 100}
    log.events.pop()
    log.add("budget.reserved", "broker", payload)
    rules = {p.rule for p in _verify(log, tmp_path).problems}
    assert "budget.delta" in rules


def test_a_commit_without_reservation_and_a_budget_event_without_cap_are_located(
    broker_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    log = BrokerLog(broker_key)
    log.budget("budget.reserved", FT, "r1", ROUND)
    log.add("budget.committed", "broker", {**log.events[-1].payload, "request_id": "ghost"})
    incomplete = {k: v for k, v in log.events[0].payload.items() if k != "cap"}
    log.add("budget.reserved", "broker", {**incomplete, "request_id": "r2"})
    problems = [(p.line, p.rule) for p in _verify(log, tmp_path).problems]
    assert problems == [(3, "budget.transition"), (4, "budget.payload")]


def test_accounts_report_the_last_state_and_their_history(
    broker_key: Ed25519PrivateKey, node_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    log = typical_log(broker_key, node_key)
    report = verify_export(log.write(tmp_path / "audit.jsonl"))
    ft = report.accounts[FT]
    # 3 rounds reserved then committed, then one reservation that expired (still charged)
    assert [point.kind for point in ft.points] == ["budget.reserved", "budget.committed"] * 3 + [
        "budget.reserved",
        "budget.expired",
    ]
    committed = [point.epsilon_recomputed for point in ft.points if point.kind == "budget.committed"]
    assert committed == sorted(committed) and len(set(committed)) == 3
    apec = report.accounts[APEC]
    assert apec.points[-1].kind == "budget.released"
    assert apec.epsilon_recomputed < apec.points[-2].epsilon_recomputed  # a release gives back
    assert ft.epsilon_recomputed == pytest.approx(ft.points[-2].epsilon_recomputed)  # an expiry does not
