"""The broker's export verifies offline; an edited, deleted or reordered event is caught."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from broker_support import Broker, dpsgd

from trust_broker.audit.verify import verify_export
from trust_broker.roles import Role


@pytest.fixture(scope="module")
def exported(shared_broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Path:
    broker = shared_broker
    study = broker.grant("s-export")
    node = broker.client(Role.NODE, "apec")
    kept = node.reserve(request_id="e1", study_id=study, dataset="parcours", mechanism=dpsgd(), examples=50)
    node.commit(kept.reservation_id, dpsgd(steps=9))
    dropped = node.reserve(
        request_id="e2", study_id=study, dataset="parcours", mechanism=dpsgd(), examples=50
    )
    node.release(dropped.reservation_id)
    node.add_opt_out("o" * 32)
    node.post_node_report(study, round=1, records_used=50, opt_outs_applied=1, opt_out_cursor=1)
    return broker.client(Role.AUDITOR).export_audit(tmp_path_factory.mktemp("export") / "audit.jsonl")


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def _rules(path: Path) -> set[str]:
    return {problem.rule for problem in verify_export(path).problems}


def test_export_of_a_working_broker_verifies(exported: Path) -> None:
    report = verify_export(exported)
    assert report.ok, report.problems
    assert report.heads >= 1
    assert any(key.site == "apec" for key in report.accounts)


def test_edited_event_is_caught(exported: Path, tmp_path: Path) -> None:
    lines = _lines(exported)
    index = next(i for i, line in enumerate(lines) if '"budget.committed"' in line)
    record = json.loads(lines[index])
    record["payload"]["mechanism"]["steps"] = 1
    lines[index] = json.dumps(record) + "\n"
    (tmp_path / "edited.jsonl").write_text("".join(lines))
    assert "chain.hash" in _rules(tmp_path / "edited.jsonl")


def test_deleted_event_is_caught(exported: Path, tmp_path: Path) -> None:
    lines = _lines(exported)
    index = next(i for i, line in enumerate(lines) if '"budget.released"' in line)
    del lines[index]
    (tmp_path / "deleted.jsonl").write_text("".join(lines))
    assert _rules(tmp_path / "deleted.jsonl") & {"chain.gap", "chain.link"}


def test_reordered_events_are_caught(exported: Path, tmp_path: Path) -> None:
    lines = _lines(exported)
    index = next(i for i, line in enumerate(lines) if '"budget.reserved"' in line)
    lines[index], lines[index + 1] = lines[index + 1], lines[index]
    (tmp_path / "reordered.jsonl").write_text("".join(lines))
    assert _rules(tmp_path / "reordered.jsonl") & {"chain.order", "chain.link"}
