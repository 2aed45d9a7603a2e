"""Typed codecs of use case 2's messages (Flower ``query.company_clustering``), coordinator ⇄ node.

The coordinator asks for one step at a time; the node answers with one noisy vector and the
standard deviation of the noise it added. Only what the coordinator may decide travels in a
request (which step, the current centres, the model to evaluate); the noise, its σ and the
number of releases are the node's (from its grant and its own data).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from .record_values import ConfigValue, read_float, read_floats, read_int, read_str, read_strs

#: Flower message type of every step: a ``query`` with its own action name, so it does not share
#: the ClientApp's default ``query`` handler (analytics) nor ``train``/``evaluate``.
MESSAGE_ACTION = "company_clustering"
MESSAGE_TYPE = f"query.{MESSAGE_ACTION}"


class Step(StrEnum):
    CORESET = "coreset"  # noisy per-cell sums and counts on the public grid
    LLOYD = "lloyd"  # noisy per-cluster sums and counts for the sent centres
    SKILLS = "skills"  # local labelling, then the noisy skill-needs table per released type
    EVALUATE = "evaluate"  # noisy precision@3 / hit@3 sums and count on the node's holdout


def planned_releases(lloyd_iterations: int) -> int:
    """Releases one site makes in a study: coreset, each Lloyd step, the table, its evaluation."""
    return lloyd_iterations + 3


class ProtocolError(ValueError):
    """A message lacks a field or carries one of the wrong shape."""


def _matrix(flat: list[float], n: int, what: str) -> np.ndarray:
    values = np.asarray(flat, dtype=np.float64)
    if n == 0:
        return np.zeros((0, 0))
    if values.size % n:
        raise ProtocolError(f"{what}: {values.size} values do not make {n} rows")
    return values.reshape(n, -1)


@dataclass(frozen=True)
class ClusteringRequest:
    step: Step
    index: int = 0  # Lloyd iteration (1-based); 0 for the other steps
    centres: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    labels: tuple[str, ...] = ()  # short French names of the released types (local labelling)
    model: tuple[float, ...] = ()  # the skill-needs model to evaluate (``SkillNeedsModel.to_list``)

    def to_config(self) -> dict[str, ConfigValue]:
        return {
            "step": str(self.step),
            "index": self.index,
            "centres": [float(v) for v in self.centres.reshape(-1)],
            "centre-rows": int(self.centres.shape[0]),
            "labels": list(self.labels),
            "model": [float(v) for v in self.model],
        }

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> ClusteringRequest:
        try:
            step = Step(read_str(config, "step"))
            return cls(
                step=step,
                index=read_int(config, "index", 0),
                centres=_matrix(
                    read_floats(config, "centres", None), read_int(config, "centre-rows", 0), "centres"
                ),
                labels=tuple(read_strs(config, "labels", None)),
                model=tuple(read_floats(config, "model", None)),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ProtocolError(f"clustering request: {exc}") from None

    @property
    def release_name(self) -> str:
        return f"{self.step}-{self.index}" if self.step == Step.LLOYD else str(self.step)


@dataclass(frozen=True)
class ClusteringReply:
    site: str
    step: Step
    values: tuple[float, ...]
    noise_std: float
    epsilon_spent: float  # this study's releases at this site so far, composed (RDP)
    delta: float
    releases: int

    def to_config(self) -> dict[str, ConfigValue]:
        return {
            "site": self.site,
            "step": str(self.step),
            "values": list(self.values),
            "noise-std": self.noise_std,
            "epsilon-spent": self.epsilon_spent,
            "delta": self.delta,
            "releases": self.releases,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> ClusteringReply:
        try:
            return cls(
                site=read_str(config, "site"),
                step=Step(read_str(config, "step")),
                values=tuple(read_floats(config, "values")),
                noise_std=read_float(config, "noise-std"),
                epsilon_spent=read_float(config, "epsilon-spent"),
                delta=read_float(config, "delta"),
                releases=read_int(config, "releases"),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ProtocolError(f"clustering reply: {exc}") from None

    def vector(self) -> np.ndarray:
        return np.asarray(self.values, dtype=float)
