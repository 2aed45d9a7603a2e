"""The Flower records between coordinator and nodes: each codec reads back what it wrote, names
what is missing, and a site's refusal is read from its fields, never from a sentence."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Error, MetricRecord, RecordDict

from contracts.decline import DECLINED_CODE, Decline
from contracts.instructions import InstructionError, RecordError, StudyInstructions
from contracts.queries import ClusteringMessage, ClusteringStepReply, QueryReply
from contracts.records import (
    MODEL,
    EvaluateReply,
    RoundMessage,
    TrainReply,
    instructions_record,
    load_model,
    model_arrays,
    read_instructions,
)
from tasks.analytics import QueryAnswer
from tasks.clustering_protocol import ClusteringReply, ClusteringRequest, Step
from tasks.metrics import HoldoutLayout, HoldoutRelease
from tasks.models import mlp

INSTRUCTIONS = StudyInstructions(
    study_id="s1",
    task="employment_outcome",
    num_rounds=3,
    local_epochs=1,
    batch_size=64,
    learning_rate=0.05,
    max_grad_norm=1.0,
    target_epsilon=3.0,
    delta=1e-6,
    seed=7,
    fields="sex,age_band",
    grant="a.b.c",
)


def _arrays() -> ArrayRecord:
    return ArrayRecord([np.arange(6, dtype=np.float32).reshape(2, 3)])


def test_a_round_message_reads_back_its_instructions_round_and_model() -> None:
    sent = RoundMessage(INSTRUCTIONS, 2, _arrays())
    read = RoundMessage.from_record(sent.to_record())
    assert read.instructions == INSTRUCTIONS and read.server_round == 2
    assert np.array_equal(read.arrays.to_numpy_ndarrays()[0], _arrays().to_numpy_ndarrays()[0])


def test_a_model_travels_as_one_array_and_loads_back_exactly() -> None:
    """One array, not one per tensor: Flower sends each array as two objects, one HTTP call each."""
    sent = mlp(12, (8, 4), seed=3)
    arrays = model_arrays(sent)
    assert list(arrays) == [MODEL] and len(sent.state_dict()) == 6
    received = mlp(12, (8, 4), seed=99)
    load_model(received, arrays, "test")
    for name, tensor in sent.state_dict().items():
        assert np.array_equal(tensor.numpy(), received.state_dict()[name].numpy())


def test_a_wider_float_type_is_the_models_own() -> None:
    """FedAdam's aggregate comes back as float64, a node may answer in another byte order: the
    values are taken as the model's float32 (as load_state_dict did with the per-tensor record)."""
    sent = mlp(12, (8, 4), seed=3)
    vector = np.asarray(model_arrays(sent)[MODEL].numpy())
    for other in (vector.astype(np.float64), vector.astype(">f4")):
        received = mlp(12, (8, 4), seed=99)
        load_model(received, ArrayRecord({MODEL: Array(other)}), "test")
        assert all(t.dtype == torch.float32 for t in received.state_dict().values())
        assert np.allclose(np.asarray(model_arrays(received)[MODEL].numpy()), vector)


def _npz(vector: np.ndarray) -> Array:
    """An array whose bytes are a zip of arrays: numpy's loader returns no array for it."""
    buffer = io.BytesIO()
    np.savez(buffer, a=vector)
    return Array(dtype="float32", shape=tuple(vector.shape), stype="numpy.ndarray", data=buffer.getvalue())


def _raw(data: bytes) -> Array:
    """An array record's bytes as a coordinator may craft them."""
    return Array(dtype="float32", shape=(1,), stype="numpy.ndarray", data=data)


def test_a_model_of_another_shape_is_named_not_loaded() -> None:
    """Another size, layout, number type, values that are not finite, bytes that are no array, or
    the per-tensor record: each named, and the model is left as it was."""
    received = mlp(12, (8, 4), seed=99)
    before = {k: v.clone() for k, v in received.state_dict().items()}
    vector = np.asarray(model_arrays(mlp(12, (8, 4)))[MODEL].numpy())
    poisoned = vector.copy()
    poisoned[3] = np.nan
    for arrays, says in [
        (model_arrays(mlp(13, (8, 4))), "this study's model is"),
        (ArrayRecord({MODEL: Array(vector[:-1])}), "this study's model is"),
        (ArrayRecord({MODEL: Array(vector.astype(np.int32))}), "int32 values"),
        (ArrayRecord({MODEL: Array(vector.reshape(5, -1))}), "shape"),
        (ArrayRecord({MODEL: Array(poisoned)}), "not finite"),
        (ArrayRecord({MODEL: Array(np.full_like(vector, np.inf))}), "not finite"),
        (ArrayRecord({MODEL: Array(np.full(vector.size, 1e300))}), "not finite"),  # inf as float32
        (ArrayRecord({MODEL: _raw(b"PK\x03\x04" + bytes(40))}), "does not read"),  # a broken zip
        (ArrayRecord({MODEL: _raw(b"\x93NUMPY\x01\x00\x01\x00{")}), "does not read"),  # a broken header
        (ArrayRecord({MODEL: _npz(vector)}), "no array"),
        (ArrayRecord(mlp(12, (8, 4)).state_dict()), "one array 'model'"),
        (ArrayRecord({MODEL: Array(vector), "extra": Array(vector)}), "one array 'model'"),
    ]:
        with pytest.raises(RecordError, match=says):
            load_model(received, arrays, "the round message")
    assert all(np.array_equal(v, received.state_dict()[k]) for k, v in before.items())


def test_the_strategy_config_is_the_instructions() -> None:
    content = RecordDict({"config": instructions_record(INSTRUCTIONS)})
    assert read_instructions(content) == INSTRUCTIONS


def test_a_message_without_instructions_or_round_is_named() -> None:
    with pytest.raises(InstructionError, match="'config'"):
        read_instructions(RecordDict({}))
    content = RecordDict({"config": instructions_record(INSTRUCTIONS), "arrays": _arrays()})
    with pytest.raises(InstructionError, match="server-round"):
        RoundMessage.from_record(content)


def test_a_train_reply_reads_back_every_field() -> None:
    sent = TrainReply(
        site="apec",
        arrays=_arrays(),
        aggregation_weight=12.0,
        epsilon=1.25,
        delta=1e-6,
        noise_multiplier=1.1,
        sample_rate=1 / 12,
        steps=24,
        target_epsilon=3.0,
        randomness="secret",
    )
    read = TrainReply.from_record(sent.to_record())
    assert (read.site, read.epsilon, read.steps, read.sample_rate) == ("apec", 1.25, 24, 1 / 12)
    assert (read.aggregation_weight, read.target_epsilon, read.randomness) == (12.0, 3.0, "secret")


def test_a_train_reply_without_its_epsilon_is_refused_with_the_key() -> None:
    content = TrainReply("apec", _arrays(), 1.0, 1.0, 1e-6, 1.0, 0.1, 1, 3.0, "secret").to_record()
    metrics = dict(content.metric_records["metrics"])
    del metrics["epsilon"]
    content["metrics"] = MetricRecord(metrics)
    with pytest.raises(RecordError, match="'epsilon'"):
        TrainReply.from_record(content)


def test_an_evaluate_reply_carries_the_release() -> None:
    layout = HoldoutLayout(bins=2, groups=(("sex", ("F", "M")),))
    cells = tuple(float(i) for i in range(layout.size))
    release = HoldoutRelease(layout, cells, 2.0, 1, 1, 1.5, 1e-6, 11)
    read = EvaluateReply.from_record(EvaluateReply("apec", release).to_record())
    assert read.site == "apec" and read.release.to_json() == release.to_json()


def test_query_and_clustering_replies_read_back() -> None:
    answer = QueryAnswer("apec", "r1", {"cells": [[1.0, 2.0]]}, {"cells": 0.5}, 1.0, 1e-6, 2.0, 1)
    assert QueryReply.from_record(QueryReply(answer).to_record()).answer == answer
    request = ClusteringRequest(Step.LLOYD, index=1, centres=np.ones((2, 3)))
    read = ClusteringMessage.from_record(ClusteringMessage(INSTRUCTIONS, request).to_record())
    assert read.instructions == INSTRUCTIONS and read.request.step == Step.LLOYD
    assert np.array_equal(read.request.centres, request.centres)
    reply = ClusteringReply("apec", Step.LLOYD, (1.0, 2.0), 0.5, 1.0, 1e-6, 2)
    assert ClusteringStepReply.from_record(ClusteringStepReply(reply).to_record()).reply.site == "apec"


def test_a_decline_reads_back_its_site_kind_rule_and_detail() -> None:
    decline = Decline("apec", "data error", "data.schema", "line 3, field 'age' — rule range: x")
    assert Decline.from_error(decline.to_error()) == decline


def test_a_detail_cannot_pass_for_another_site_or_kind() -> None:
    """With a sentence parsed back, a detail that reads like a refusal could name another site."""
    decline = Decline("site apec", "failed", "node.internal", "site france_travail declined — rule x: y")
    read = Decline.from_error(decline.to_error())
    assert read is not None and (read.site, read.kind) == ("site apec", "failed")


def test_an_error_the_node_did_not_write_is_not_a_decline() -> None:
    assert Decline.from_error(Error(code=0, reason="Node Unavailable")) is None
    assert Decline.from_error(Error(code=DECLINED_CODE, reason="site apec declined — rule x: y")) is None
    assert (
        Decline.from_error(Error(code=DECLINED_CODE, reason='{"site": "a", "kind": "x", "rule": "r"}'))
        is None
    )


def test_literal_record_keys_live_in_the_codecs_only() -> None:
    """Node and coordinator go through the codecs: no ``content["…"]`` left in their handlers."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    handlers = [
        "node_agent/client_app.py",
        "node_agent/query_handler.py",
        "node_agent/company_study.py",
        "coordinator/journal.py",
        "coordinator/analytics.py",
        "coordinator/company_clustering.py",
    ]
    for name in handlers:
        text = (root / name).read_text(encoding="utf-8")
        assert "content[" not in text, name
        assert "Error(code" not in text, name
        assert ConfigRecord.__name__ + '({"site"' not in text, name
