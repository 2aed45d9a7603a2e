"""The node's receipts: one per change, each the broker's signature over the change's place in the chain."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from broker_support import Broker, dpsgd

from trust_broker.audit.receipts import verify_receipt
from trust_broker.client import BudgetRefused
from trust_broker.roles import Role


def test_each_change_leaves_a_signed_receipt_that_names_its_event(broker: Broker, tmp_path: Path) -> None:
    study = broker.grant()
    node = broker.client(Role.NODE, "apec")
    node.keep_receipts(tmp_path / "receipts" / "apec.jsonl")
    first = node.reserve(request_id="r1", study_id=study, dataset="parcours", mechanism=dpsgd(), examples=9)
    node.commit(first.reservation_id, dpsgd(steps=8))
    second = node.reserve(request_id="r2", study_id=study, dataset="parcours", mechanism=dpsgd(), examples=9)
    node.release(second.reservation_id)
    with pytest.raises(BudgetRefused):
        node.reserve(
            request_id="r3",
            study_id=study,
            dataset="parcours",
            mechanism=dpsgd(sigma=0.3, rate=1.0, steps=500),
            examples=9,
        )
    lines = [json.loads(text) for text in (tmp_path / "receipts" / "apec.jsonl").read_text().splitlines()]
    public = broker.context.broker_public_key
    claims = [verify_receipt(line["receipt"], public) for line in lines]
    assert [c["kind"] for c in claims] == [
        "budget.reserved",
        "budget.committed",
        "budget.reserved",
        "budget.released",
        "budget.refused",
    ]
    events = {event.seq: event for event in broker.context.store.audit_events()}
    for c in claims:
        assert events[c["seq"]].hash == c["hash"] and events[c["head_seq"]].hash == c["head_hash"]
    assert stat_mode(tmp_path / "receipts" / "apec.jsonl") == 0o600


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_an_unwritable_receipts_file_is_reported_and_does_not_undo_the_change(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "not-a-folder"  # a file where the folder should be: unwritable, even for root
    folder.write_text("x")
    study = broker.grant()
    node = broker.client(Role.NODE, "apec")
    node.keep_receipts(folder / "apec.jsonl")
    with caplog.at_level(logging.WARNING, logger="r2dde.broker_client"):
        reservation = node.reserve(
            request_id="r1", study_id=study, dataset="parcours", mechanism=dpsgd(), examples=9
        )
    assert reservation.receipt
    assert "receipts.unwritable" in caplog.text
