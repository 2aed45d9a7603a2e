"""A partner sees its node's refusals where they happen (issue 12, items 2 and 3): every decline is in the
node's own log with its rule and the full detail; the reply to the Region holds neither cell values nor
local paths, and calls a broken file a data error."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from flwr.app import ConfigRecord, Context, Message, Metadata, RecordDict

from contracts.decline import Decline
from contracts.instructions import StudyInstructions
from node_agent import client_app

HEADER = (
    "age,workclass,fnlwgt,education,education_num,marital_status,occupation,relationship,race,sex,"
    "capital_gain,capital_loss,hours_per_week,native_country,income"
)
ROW = (
    "39,State-gov,77516,Bachelors,13,Never-married,Adm-clerical,Not-in-family,White,Male,"
    "2174,0,40,United-States,<=50K"
)


def _instruction() -> Message:
    instructions = StudyInstructions(
        study_id="s1",
        task="adult_income",
        num_rounds=1,
        local_epochs=1,
        batch_size=64,
        learning_rate=0.01,
        max_grad_norm=1.0,
        target_epsilon=3.0,
        delta=1e-6,
        seed=7,
        fields="",
        grant="",
    )
    metadata = Metadata(
        run_id=1,
        message_id="instruction",
        src_node_id=0,
        dst_node_id=2,
        reply_to_message_id="",
        group_id="1",
        created_at=0.0,
        ttl=60.0,
        message_type="train",
    )
    content = RecordDict({"config": ConfigRecord({**instructions.to_config(), "server-round": 1})})
    return Message(metadata=metadata, content=content)


@pytest.fixture()
def node_log() -> list[str]:
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Keep(level=logging.WARNING)
    logger = logging.getLogger("flwr")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def test_a_bad_file_is_a_data_error_logged_at_the_node_and_sent_without_its_value(
    tmp_path: Path, node_log: list[str]
) -> None:
    data = tmp_path / "partner secret folder"
    data.mkdir()
    (data / "adult.csv").write_text(f"{HEADER}\n{ROW}\n{ROW.replace('39,', 'forty,', 1)}\n", encoding="utf-8")
    context = Context(1, 2, {"site": "site_1", "data-dir": str(data)}, RecordDict(), {})
    reply = client_app.train(_instruction(), context)
    assert reply.has_error()
    reason = reply.error.reason
    decline = Decline.from_error(reply.error)
    assert decline is not None and (decline.site, decline.kind, decline.rule) == (
        "site_1",
        "data error",
        "data.schema",
    ), reason
    assert "line 3" in reason and "'age'" in reason
    assert "forty" not in reason and "partner secret folder" not in reason
    logged = "\n".join(node_log)
    assert "rule data.schema" in logged and "line 3" in logged and "forty" in logged


def test_an_unexpected_error_is_logged_at_the_node_and_not_sent_as_a_class_name(
    tmp_path: Path, node_log: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise KeyError("/srv/partner/data/secret.csv")

    monkeypatch.setattr(client_app, "open_site_study", broken)
    context = Context(1, 2, {"site": "site_1", "data-dir": str(tmp_path)}, RecordDict(), {})
    reply = client_app.train(_instruction(), context)
    reason = reply.error.reason
    decline = Decline.from_error(reply.error)
    assert decline is not None and (decline.kind, decline.rule) == ("failed", "node.internal"), reason
    assert "KeyError" not in reason and "/srv/partner" not in reason
    assert any("unexpected error" in line for line in node_log)


def test_local_paths_are_cut_to_their_file_name_and_urls_are_kept() -> None:
    from node_agent.declined import without_local_paths

    assert without_local_paths("cannot read /srv/ft/keys/node.key: denied") == "cannot read node.key: denied"
    assert without_local_paths("in runs/fed/home-apec/site-policy.yaml") == "in site-policy.yaml"
    assert without_local_paths("site_1/adult.csv, line 3") == "site_1/adult.csv, line 3"
    kept = "no broker at http://127.0.0.1:8443/v1/health"
    assert without_local_paths(kept) == kept
