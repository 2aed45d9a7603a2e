"""Attacks on an export: each edit, deletion, reordering or forgery is detected at the right line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import event_lines, grant_for, rechain_from, rehash, write_lines
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trust_broker.audit.verify import verify_export


def _rules_at(path: Path) -> set[tuple[int, str]]:
    return {(problem.line, problem.rule) for problem in verify_export(path).problems}


def test_an_untouched_export_verifies(export_lines: list[str], tmp_path: Path) -> None:
    report = verify_export(write_lines(tmp_path, export_lines))
    assert report.ok, report.problems
    assert {key.site for key in report.accounts} == {"france_travail", "apec"}
    for account in report.accounts.values():
        assert account.epsilon_recomputed > 0
        assert account.epsilon_recorded == pytest.approx(account.epsilon_recomputed, rel=0.02)


def _edit_study(record: dict[str, Any]) -> None:
    record["payload"]["study_id"] = "etude-pirate"  # changes no ε: only the chain can tell


def test_an_edited_payload_breaks_its_own_hash(export_lines: list[str], tmp_path: Path) -> None:
    line = event_lines(export_lines, "budget.committed")[1]
    lines = list(export_lines)
    record = json.loads(lines[line - 1])
    _edit_study(record)
    lines[line - 1] = json.dumps(record)
    assert _rules_at(write_lines(tmp_path, lines)) == {(line, "chain.hash")}


def test_an_edited_and_rehashed_event_breaks_the_next_link(export_lines: list[str], tmp_path: Path) -> None:
    line = event_lines(export_lines, "budget.committed")[1]
    lines = list(export_lines)
    lines[line - 1] = rehash(lines[line - 1], _edit_study)
    assert _rules_at(write_lines(tmp_path, lines)) == {(line + 1, "chain.link")}


def test_a_deleted_event_is_located_where_it_was(export_lines: list[str], tmp_path: Path) -> None:
    line = event_lines(export_lines, "budget.reserved")[2]
    lines = export_lines[: line - 1] + export_lines[line:]
    assert (line, "chain.gap") in _rules_at(write_lines(tmp_path, lines))


def test_two_swapped_events_are_both_located(export_lines: list[str], tmp_path: Path) -> None:
    line = event_lines(export_lines, "node.report")[0]
    lines = list(export_lines)
    lines[line - 1], lines[line] = lines[line], lines[line - 1]
    rules = _rules_at(write_lines(tmp_path, lines))
    assert {(line, "chain.order"), (line + 1, "chain.order")} <= rules
    assert all(found in (line, line + 1) for found, _ in rules)


def test_a_duplicated_event_is_located(export_lines: list[str], tmp_path: Path) -> None:
    line = event_lines(export_lines, "study.decided")[0]
    lines = export_lines[:line] + [export_lines[line - 1]] + export_lines[line:]
    assert (line + 1, "chain.duplicate") in _rules_at(write_lines(tmp_path, lines))


def test_a_head_signed_by_another_key_is_a_forgery(export_lines: list[str], tmp_path: Path) -> None:
    from trust_broker.audit.chain import AuditEvent, sign_head

    last = json.loads(event_lines_text(export_lines)[-1])
    last.pop("type")
    forged = sign_head(Ed25519PrivateKey.generate(), AuditEvent.model_validate(last), "broker")
    lines = [*export_lines[:-1], json.dumps({"type": "head", "jws": forged})]
    assert _rules_at(write_lines(tmp_path, lines)) == {(len(lines), "head.signature")}


def event_lines_text(lines: list[str]) -> list[str]:
    return [line for line in lines if json.loads(line).get("type") == "event"]


def test_a_rehashed_last_event_no_longer_matches_the_signed_head(
    export_lines: list[str], tmp_path: Path
) -> None:
    line = event_lines(export_lines, "budget.expired")[0]
    lines = list(export_lines)
    lines[line - 1] = rehash(lines[line - 1], lambda record: record["payload"].update(epsilon=0.1))
    rules = _rules_at(write_lines(tmp_path, lines))
    assert (len(lines), "head.mismatch") in rules


def test_a_truncated_tail_is_caught_by_the_head(export_lines: list[str], tmp_path: Path) -> None:
    last_event = event_lines(export_lines, "budget.expired")[0]
    lines = export_lines[: last_event - 1] + export_lines[last_event:]
    assert (len(lines), "head.unknown_event") in _rules_at(write_lines(tmp_path, lines))


def test_an_export_without_heads_is_vouched_for_by_nobody(export_lines: list[str], tmp_path: Path) -> None:
    lines = event_lines_text(export_lines)
    path = write_lines(tmp_path, [export_lines[0], *lines])
    assert {rule for _, rule in _rules_at(path)} == {"head.missing"}


def test_events_after_the_last_head_are_reported_as_not_vouched_for(
    export_lines: list[str], tmp_path: Path
) -> None:
    lines = export_lines[:-1]  # drop the final head; the earlier one (after grant.issued) remains
    rules = _rules_at(write_lines(tmp_path, lines))
    assert rules == {(event_lines(export_lines, "budget.expired")[0], "head.stale")}


def test_a_broker_rewriting_a_signed_node_report_is_caught_even_with_a_consistent_chain(
    export_lines: list[str], tmp_path: Path, broker_key: Ed25519PrivateKey
) -> None:
    line = event_lines(export_lines, "node.report")[1]
    lines = rechain_from(export_lines, line, lambda record: record["payload"].update(records=5), broker_key)
    assert _rules_at(write_lines(tmp_path, lines)) == {(line, "signature.payload")}


def test_a_grant_not_signed_by_the_broker_is_caught(
    export_lines: list[str], tmp_path: Path, broker_key: Ed25519PrivateKey
) -> None:
    line = event_lines(export_lines, "grant.issued")[0]
    other = Ed25519PrivateKey.generate()
    lines = rechain_from(
        export_lines,
        line,
        lambda record: record["payload"].update(grant=grant_for("etude-2026-001", other)),
        broker_key,
    )
    assert _rules_at(write_lines(tmp_path, lines)) == {(line, "grant.signature")}


def test_every_single_edit_or_deletion_is_located_wherever_it_happens(
    export_lines: list[str], tmp_path: Path
) -> None:
    events = [
        number for number, text in enumerate(export_lines, start=1) if json.loads(text)["type"] == "event"
    ]
    last = events[-1]
    for line in events:
        edited = list(export_lines)
        record = json.loads(edited[line - 1])
        record["payload"]["note"] = "ajout"
        edited[line - 1] = json.dumps(record)
        assert (line, "chain.hash") in _rules_at(write_lines(tmp_path, edited)), line
        deleted = export_lines[: line - 1] + export_lines[line:]
        rules = _rules_at(write_lines(tmp_path, deleted))
        if line == last:  # nothing follows: the signed head is what notices
            assert (len(deleted), "head.unknown_event") in rules
        else:
            assert (line, "chain.gap") in rules, line
