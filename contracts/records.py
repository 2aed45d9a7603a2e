"""The Flower records between the coordinator and the nodes, both ways, one codec each.

A message's content is a ``RecordDict``; the names of its records and of their keys are written
here and nowhere else, so that the node that writes a reply and the coordinator that reads it cannot
drift apart. Every codec has ``to_record()`` and ``from_record()``; a reply the node declines is a
Flower ``Error`` whose reason is a ``contracts.decline.Decline``, never a sentence to parse back.
What a reply may carry is the node's privacy rule (DESIGN.md, "Released statistics"): the codecs
carry DP releases and the parameters of the mechanisms that made them, nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from tasks.metrics import HoldoutRelease

from .instructions import InstructionError, RecordError, StudyInstructions

if TYPE_CHECKING:
    from torch import nn

#: The record names of a message's content. ``INSTRUCTIONS`` and ``ARRAYS`` are also the names
#: Flower's strategies write the round config and the model under (``configrecord_key``,
#: ``arrayrecord_key``): the coordinator passes these to its strategy.
INSTRUCTIONS = "config"
ARRAYS = "arrays"
METRICS = "metrics"
SITE = "site"
QUERY = "query"
ANSWER = "answer"
CLUSTERING = "clustering"
#: The one array of the ``ARRAYS`` record: the model's state-dict tensors, flattened and joined in
#: the model's own order. Flower sends each array of a record as two objects (the array, its chunk),
#: each its own HTTP call at every hop (ServerApp → SuperLink → SuperNode → ClientApp, and back): one
#: array for the whole model instead of one per tensor halves a round's calls (issue 17;
#: ``benchmarks/deployment/round_overhead.py``). Both ends build the model from the same factory
#: (``tasks.models``), so the receiver's own state dict says where to cut.
MODEL = "model"
#: The key FedAvg weighs updates by: the site's DP-SGD batches per epoch (1/q), a function of the
#: plan whose sample rate q every train reply and every ledger record already carry. It adds no
#: release about the site's people beyond q (which bounds the site's size to within one batch — a
#: plan independent of the size is open work); an exact record count would be a new release (issue
#: 10, item 4). Equal weights cost about 1 to 2 accuracy points on non-IID Adult (README).
AGGREGATION_WEIGHT = "aggregation-weight"
#: Flower adds the round number to the config record of every train and evaluate message.
SERVER_ROUND = "server-round"

_Scalar = TypeVar("_Scalar", int, float, str)


def config_record(values: Mapping[str, object]) -> ConfigRecord:
    """A config record of the scalars and lists a codec wrote (Flower's own value types)."""
    return ConfigRecord(cast("dict[str, Any]", dict(values)))


def read_config(content: RecordDict, name: str, what: str) -> ConfigRecord:
    if name not in content.config_records:
        raise RecordError(f"{what} lacks its '{name}' config record")
    return content.config_records[name]


def _metrics(content: RecordDict, what: str) -> MetricRecord:
    if METRICS not in content.metric_records:
        raise RecordError(f"{what} lacks its '{METRICS}' record")
    return content.metric_records[METRICS]


def read_value(record: Mapping[str, object], key: str, kind: type[_Scalar], what: str) -> _Scalar:
    if key not in record:
        raise RecordError(f"{what} lacks '{key}'")
    raw: Any = record[key]
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise RecordError(f"{what} '{key}' = {raw!r} is not a {kind.__name__}") from None


# --------------------------------------------------------------------------- coordinator → node


@dataclass(frozen=True)
class RoundMessage:
    """A train or evaluate message: the study's instructions, the round, the model to start from.

    The coordinator's strategy writes it (``StudyInstructions.to_record()`` as its round config);
    Flower adds ``server-round``.
    """

    instructions: StudyInstructions
    server_round: int
    arrays: ArrayRecord

    @classmethod
    def from_record(cls, content: RecordDict) -> RoundMessage:
        instructions, arrays = read_instructions(content), round_arrays(content)
        try:
            config = content.config_records[INSTRUCTIONS]
            server_round = read_value(config, SERVER_ROUND, int, "round message")
        except RecordError as exc:
            raise InstructionError(str(exc)) from None
        return cls(instructions, server_round, arrays)

    def to_record(self) -> RecordDict:
        config = config_record({**self.instructions.to_config(), SERVER_ROUND: self.server_round})
        return RecordDict({ARRAYS: self.arrays, INSTRUCTIONS: config})


def round_arrays(content: RecordDict) -> ArrayRecord:
    """The model a train or evaluate message starts from."""
    if ARRAYS not in content.array_records:
        raise InstructionError(f"the round message lacks its '{ARRAYS}' record")
    return content.array_records[ARRAYS]


def model_arrays(model: nn.Module) -> ArrayRecord:
    """The ``ARRAYS`` record of ``model``: its one array ``MODEL``."""
    tensors = list(model.state_dict().values())
    if not tensors or any(not t.is_floating_point() or t.dtype != tensors[0].dtype for t in tensors):
        raise ValueError("a model travels as one array: its tensors must share one floating-point type")
    vector = np.concatenate([t.detach().cpu().reshape(-1).numpy() for t in tensors])
    return ArrayRecord({MODEL: Array(vector)})


def load_model(model: nn.Module, arrays: ArrayRecord, what: str) -> None:
    """``model`` takes the values of ``arrays`` (written by :func:`model_arrays` for the same model).

    Any floating-point type is taken, as the model's own (an aggregate may come back wider: FedAdam's
    is float64); another number of values, another layout, values that are not finite or do not read
    as one array raise ``RecordError``, which names what differs, and leave ``model`` as it was.
    """
    import torch

    if list(arrays) != [MODEL]:
        raise RecordError(
            f"{what}: its '{ARRAYS}' record must hold the one array '{MODEL}', not {sorted(arrays)[:5]}"
        )
    try:
        vector = arrays[MODEL].numpy()  # numpy's loader, no pickle: any error is a malformed record
    except Exception as exc:  # noqa: BLE001  (crafted bytes raise zip, tokenizer, overflow errors…)
        raise RecordError(f"{what}: its model does not read as an array ({type(exc).__name__})") from None
    state = model.state_dict()
    size = sum(t.numel() for t in state.values())
    if not (
        isinstance(vector, np.ndarray)
        and vector.shape == (size,)
        and np.issubdtype(vector.dtype, np.floating)
    ):
        described = (
            f"{vector.dtype} values of shape {vector.shape}" if isinstance(vector, np.ndarray) else "no array"
        )
        raise RecordError(
            f"{what}: its model holds {described}; this study's model is {size} floating-point values"
        )
    pieces = np.split(vector, np.cumsum([t.numel() for t in state.values()])[:-1])
    with np.errstate(over="ignore", invalid="ignore"):  # in the model's type, a value too large is inf
        values = [
            piece.astype(t.numpy().dtype).reshape(t.shape)
            for t, piece in zip(state.values(), pieces, strict=True)
        ]
    if not all(np.isfinite(v).all() for v in values):
        raise RecordError(f"{what}: its model holds values that are not finite in the model's own type")
    model.load_state_dict({name: torch.from_numpy(v) for name, v in zip(state, values, strict=True)})


def instructions_record(instructions: StudyInstructions) -> ConfigRecord:
    """The round config the coordinator's strategy sends with every train and evaluate message."""
    return config_record(instructions.to_config())


def read_instructions(content: RecordDict) -> StudyInstructions:
    """The instructions of any message (train, evaluate, query); ``InstructionError`` names the key."""
    if INSTRUCTIONS not in content.config_records:
        raise InstructionError(f"the message lacks its '{INSTRUCTIONS}' record")
    return StudyInstructions.from_config(content.config_records[INSTRUCTIONS])


# --------------------------------------------------------------------------- node → coordinator


@dataclass(frozen=True)
class TrainReply:
    """A site's trained model and the parameters of the DP-SGD that made it (no loss, no count)."""

    site: str
    arrays: ArrayRecord
    #: FedAvg's weight: the plan's batches per epoch (1/q), already in every ledger record.
    aggregation_weight: float
    #: The site's composed ε for this study so far (∞ when its randomness was reproducible).
    epsilon: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int
    target_epsilon: float
    #: "secret", or a note that the node's own settings made the run reproducible (not private).
    randomness: str

    def to_record(self) -> RecordDict:
        metrics = MetricRecord(
            {
                AGGREGATION_WEIGHT: self.aggregation_weight,
                "epsilon": self.epsilon,
                "delta": self.delta,
                "noise-multiplier": self.noise_multiplier,
                "sample-rate": self.sample_rate,
                "steps": self.steps,
            }
        )
        site = ConfigRecord(
            {"site": self.site, "target-epsilon": self.target_epsilon, "randomness": self.randomness}
        )
        return RecordDict({ARRAYS: self.arrays, METRICS: metrics, SITE: site})

    @classmethod
    def from_record(cls, content: RecordDict) -> TrainReply:
        what = "train reply"
        metrics, info = _metrics(content, what), read_config(content, SITE, what)
        if ARRAYS not in content.array_records:
            raise RecordError(f"{what} lacks its '{ARRAYS}' record")
        return cls(
            site=read_value(info, "site", str, what),
            arrays=content.array_records[ARRAYS],
            aggregation_weight=read_value(metrics, AGGREGATION_WEIGHT, float, what),
            epsilon=read_value(metrics, "epsilon", float, what),
            delta=read_value(metrics, "delta", float, what),
            noise_multiplier=read_value(metrics, "noise-multiplier", float, what),
            sample_rate=read_value(metrics, "sample-rate", float, what),
            steps=read_value(metrics, "steps", int, what),
            target_epsilon=read_value(info, "target-epsilon", float, what),
            randomness=str(info.get("randomness", "")),
        )


@dataclass(frozen=True)
class EvaluateReply:
    """A site's evaluation of the sent model on its holdout: one DP release of counts, no metric."""

    site: str
    release: HoldoutRelease

    def to_record(self) -> RecordDict:
        return RecordDict({SITE: ConfigRecord({"site": self.site, "evaluation": self.release.to_json()})})

    @classmethod
    def from_record(cls, content: RecordDict) -> EvaluateReply:
        info = read_config(content, SITE, "evaluate reply")
        site = read_value(info, "site", str, "evaluate reply")
        evaluation = read_value(info, "evaluation", str, "evaluate reply")
        return cls(site, HoldoutRelease.from_json(evaluation))


def reply_site(content: RecordDict) -> str:
    """The site a train or evaluate reply names (both carry it in their ``site`` record)."""
    return read_value(read_config(content, SITE, "reply"), "site", str, "reply")
