"""The round instructions the coordinator sends and nodes read (a Flower ConfigRecord's content).

Only what the coordinator may decide travels here; what a site may do comes from the grant,
which the node verifies itself, and where its data lives comes from the node's own settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from contracts.dashed import read_dashed, write_dashed


class RecordError(ValueError):
    """A message lacks a record or a key, or carries one of the wrong type; the text names it."""


class InstructionError(RecordError):
    """A message to a node lacks its instructions or a field of them, or carries one of the wrong type."""


@dataclass(frozen=True)
class StudyInstructions:
    study_id: str
    task: str
    num_rounds: int
    local_epochs: int
    batch_size: int
    learning_rate: float
    max_grad_norm: float
    #: Used only by nodes running without a broker (public benchmark data): a grant sets it otherwise.
    target_epsilon: float
    delta: float
    seed: int
    #: Comma-separated fields the study was granted; empty means every field of the task.
    fields: str = ""
    #: Compact JWS issued by the trust broker; empty for broker-less benchmark runs.
    grant: str = ""

    def to_config(self) -> dict[str, str | int | float]:
        return write_dashed(self)

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> StudyInstructions:
        return cls(**read_dashed(cls, config, what="round instructions", error=InstructionError))

    @property
    def field_list(self) -> tuple[str, ...]:
        return tuple(f for f in self.fields.split(",") if f)
