"""The node's gate to a study: admission (grant + local policy), opt-outs, and the budget ledger.

`BrokerGate` (in `broker_gate.py`) is the real one. `StandaloneGate` serves only public,
non-personal benchmark data (UCI Adult) on a node configured without a broker: the node, not
the coordinator, decides that, and a personal-data task is refused there.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

from contracts.instructions import StudyInstructions
from policies.models import EvaluationBudget
from tasks.registry import TaskSpec

from .declined import NodeDeclined


@dataclass(frozen=True)
class StudyTerms:
    """What this site agreed to spend on this study."""

    target_epsilon: float
    delta: float
    dataset: str
    purpose: str
    #: `public_interest` uses every record but opt-outs; `consent` only records with a live consent.
    legal_basis: str
    #: The fields this site may use for the study (empty: every field of a public benchmark task).
    fields: tuple[str, ...] = ()
    #: Holdout evaluations this site may release and the share of its ε set aside for them.
    evaluation: EvaluationBudget = EvaluationBudget(evaluations=0)
    #: Released counts under this size are suppressed at the node, after noise.
    min_cell_size: int = 11
    #: When the grant lapses (None: no grant, public data): the node's prepared table goes with it.
    expires_at: dt.datetime | None = None


class StudyGate(ABC):
    @abstractmethod
    def admit(self, instructions: StudyInstructions, spec: TaskSpec) -> StudyTerms:
        """Verify the study may run here; raise NodeDeclined naming the rule otherwise."""

    @abstractmethod
    def still_granted(self) -> None:
        """Before every round: raise NodeDeclined if the grant was revoked or has expired since."""

    @abstractmethod
    def excluded(self, terms: StudyTerms) -> frozenset[str] | None:
        """Linkage pseudonyms to drop (opt-outs), or None when the study needs no such filter."""

    @abstractmethod
    def consented(self, terms: StudyTerms) -> frozenset[str] | None:
        """For consent-based purposes, the linkage pseudonyms that may be used; None otherwise."""

    @abstractmethod
    def reserve(self, request_id: str, mechanism: Mapping[str, object], examples: int) -> str:
        """Reserve a round's privacy cost before any record is touched; returns a reservation id."""

    @abstractmethod
    def commit(self, reservation_id: str, mechanism: Mapping[str, object]) -> None:
        """Record what was actually spent."""

    @abstractmethod
    def release(self, reservation_id: str) -> None:
        """Give back a reservation whose round released nothing (its training failed at the node)."""

    @abstractmethod
    def report(self, counts: Mapping[str, object]) -> None:
        """Send the round's entry for the broker's audit trail (round, reservation, a commitment to
        the counts the node keeps): never an exact count of records, which is not a DP release."""


class StandaloneGate(StudyGate):
    """No broker: only tasks without personal data, with the ε the instructions carry."""

    def admit(self, instructions: StudyInstructions, spec: TaskSpec) -> StudyTerms:
        if spec.personal_identifiers:
            raise NodeDeclined(
                "node.broker_required",
                f"task {spec.name} uses personal data; this node has no trust broker configured",
            )
        return StudyTerms(
            instructions.target_epsilon,
            instructions.delta,
            spec.dataset,
            "benchmark",
            "public_data",
            instructions.field_list,
            evaluation=EvaluationBudget(),  # public data: the purposes' default evaluation budget
        )

    def still_granted(self) -> None:
        return None

    def excluded(self, terms: StudyTerms) -> frozenset[str] | None:
        return None

    def consented(self, terms: StudyTerms) -> frozenset[str] | None:
        return None

    def reserve(self, request_id: str, mechanism: Mapping[str, object], examples: int) -> str:
        return request_id

    def commit(self, reservation_id: str, mechanism: Mapping[str, object]) -> None:
        return None

    def release(self, reservation_id: str) -> None:
        return None

    def report(self, counts: Mapping[str, object]) -> None:
        return None
