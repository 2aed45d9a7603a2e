"""The node's train handler as a curious coordinator meets it: it cannot reproduce the released
weights from the instructions' seed, cannot have a round trained twice (same run, new run,
concurrent) or beyond the grant, and reads no training loss in the reply."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, Metadata, RecordDict

from contracts.decline import DECLINED_CODE
from contracts.records import MODEL, model_arrays
from coordinator.study_config import StudyConfig
from node_agent import site_study, training
from node_agent.client_app import train
from simulations.adult import load_adult_train
from tasks.models import mlp
from tasks.registry import get_task
from tasks.schema import ADULT_COLUMNS

SITE = "site_1"


@pytest.fixture(scope="module")
def adult_rows() -> object:
    return load_adult_train().iloc[:600][list(ADULT_COLUMNS)]


@pytest.fixture
def data_dir(tmp_path: Path, adult_rows) -> Path:
    folder = tmp_path / SITE
    folder.mkdir()
    adult_rows.to_csv(folder / "adult.csv", index=False, lineterminator="\n")
    return folder


def _train(msg: Message, context: Context) -> Message:
    """One message, handled as a fresh deployment process handles it (no session cached)."""
    site_study._SESSIONS.clear()
    return train(msg, context)


def _config(**overrides) -> StudyConfig:
    base = dict(
        study_id="replay-test",
        task="adult_income",
        sites=(SITE,),
        num_server_rounds=2,
        target_epsilon=2.0,
        local_epochs=1,
        batch_size=256,
        learning_rate=0.01,
        seed=42,
    )
    return StudyConfig(**{**base, **overrides})


def _message(config: StudyConfig, server_round: int) -> Message:
    spec = get_task(config.task)
    model = mlp(spec.encoder().width, spec.hidden, seed=config.seed)
    content = RecordDict(
        {
            "arrays": model_arrays(model),
            "config": ConfigRecord({**config.instructions().to_config(), "server-round": server_round}),
        }
    )
    metadata = Metadata(
        run_id=1,
        message_id=f"train-{server_round}",
        src_node_id=0,
        dst_node_id=1,
        reply_to_message_id="",
        group_id=str(server_round),
        created_at=time.time(),
        ttl=3600.0,
        message_type="train",
    )
    return Message(content=content, metadata=metadata)


def _context(data_dir: Path, **node_config) -> Context:
    return Context(
        run_id=1,
        node_id=1,
        node_config={"site": SITE, "data-dir": str(data_dir), **node_config},
        state=RecordDict(),
        run_config={},
    )


def _weights(reply: Message) -> np.ndarray:
    assert not reply.has_error(), reply.error.reason
    return np.asarray(reply.content["arrays"][MODEL].numpy())


def _declined(reply: Message) -> str:
    assert reply.has_error() and reply.error.code == DECLINED_CODE
    return reply.error.reason


def test_the_coordinator_cannot_reproduce_the_release_from_the_instructions(data_dir, tmp_path):
    """Same records, same message, same seed: the coordinator's re-run no longer matches the node's."""
    config = _config()
    released = _weights(_train(_message(config, 1), _context(data_dir)))
    replica = tmp_path / "coordinator-copy"
    shutil.copytree(data_dir, replica, ignore=shutil.ignore_patterns(".r2dde-node"))
    rerun = _weights(_train(_message(config, 1), _context(replica)))
    assert not np.allclose(released, rerun, atol=1e-7)


def test_reproducible_runs_are_a_node_setting_and_are_reported_as_not_private(data_dir, tmp_path):
    config = _config()
    first = _train(_message(config, 1), _context(data_dir, **{"reproducible-seed": 7}))
    replica = tmp_path / "copy"
    shutil.copytree(data_dir, replica, ignore=shutil.ignore_patterns(".r2dde-node"))
    again = _train(_message(config, 1), _context(replica, **{"reproducible-seed": 7}))
    assert np.array_equal(_weights(first), _weights(again))
    assert first.content["metrics"]["epsilon"] == float("inf")
    assert "not private" in str(first.content["site"]["randomness"])


def test_the_reply_carries_no_training_loss_and_a_finite_epsilon(data_dir):
    reply = _train(_message(_config(), 1), _context(data_dir))
    _weights(reply)
    metrics = reply.content["metrics"]
    assert "train-loss" not in metrics
    assert 0 < metrics["epsilon"] <= 2.0 and reply.content["site"]["randomness"] == "secret"


def test_a_round_is_trained_once_in_this_run_and_in_any_later_run(data_dir):
    config = _config()
    context = _context(data_dir)
    _weights(_train(_message(config, 1), context))
    assert "node.round_repeated" in _declined(_train(_message(config, 1), context))
    assert "node.round_repeated" in _declined(_train(_message(config, 1), _context(data_dir)))  # new run
    _weights(_train(_message(config, 2), context))


def test_a_round_beyond_the_studys_rounds_is_refused(data_dir):
    config = _config()
    assert "node.round_beyond_grant" in _declined(_train(_message(config, 3), _context(data_dir)))
    assert "node.round_beyond_grant" in _declined(_train(_message(config, 0), _context(data_dir)))


def test_changing_the_round_count_mid_study_cannot_spend_past_the_target(data_dir):
    """Round 1 calibrated for a 1-round study spends the whole ε; a 'round 2 of 2' is refused."""
    _weights(_train(_message(_config(num_server_rounds=1), 1), _context(data_dir)))
    reason = _declined(_train(_message(_config(num_server_rounds=2), 2), _context(data_dir)))
    assert "node.round_over_budget" in reason


def test_a_deleted_record_under_a_running_study_fails_closed(data_dir):
    config = _config()
    context = _context(data_dir)
    _weights(_train(_message(config, 1), context))
    shutil.rmtree(data_dir / ".r2dde-node")
    assert "node.round_record_lost" in _declined(_train(_message(config, 2), context))


def test_a_round_whose_reservation_was_refused_can_be_asked_again(data_dir, monkeypatch):
    from node_agent.declined import NodeDeclined
    from node_agent.gate import StandaloneGate

    def refuse(self, request_id, mechanism, examples):
        raise NodeDeclined("budget.exhausted", "the ledger refused this round")

    config = _config()
    with monkeypatch.context() as patched:
        patched.setattr(StandaloneGate, "reserve", refuse)
        assert "budget.exhausted" in _declined(_train(_message(config, 1), _context(data_dir)))
    _weights(_train(_message(config, 1), _context(data_dir)))


def test_a_training_that_fails_gives_its_reservation_back_and_is_not_retrained(data_dir, monkeypatch):
    from node_agent.gate import StandaloneGate

    released: list[str] = []
    monkeypatch.setattr(StandaloneGate, "release", lambda self, reservation: released.append(reservation))

    def crash(*args, **kwargs):
        raise RuntimeError("out of memory")

    config = _config()
    with monkeypatch.context() as patched:
        patched.setattr(training, "train_round", crash)  # the train handler imports it when it runs
        crashed = _train(_message(config, 1), _context(data_dir))
    assert "node.internal" in _declined(crashed)  # the crash's details stay in the node's log
    assert released == ["replay-test:site_1:round-1"]
    assert "node.round_repeated" in _declined(_train(_message(config, 1), _context(data_dir)))
