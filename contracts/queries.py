"""The statistics messages, both ways: queries (use case 3) and company-clustering steps (use case 2).

Kept apart from ``contracts.records`` so that a training round does not load the query vocabulary;
the record names and the helpers are those of ``contracts.records``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flwr.app import RecordDict

from tasks.analytics import QueryAnswer, QueryRequest
from tasks.clustering_protocol import ClusteringReply, ClusteringRequest

from .instructions import RecordError, StudyInstructions
from .records import (
    ANSWER,
    CLUSTERING,
    INSTRUCTIONS,
    QUERY,
    config_record,
    instructions_record,
    read_config,
    read_instructions,
)


@dataclass(frozen=True)
class QueryMessage:
    """A statistics query (``query`` message): the instructions with the grant, and the request."""

    instructions: StudyInstructions
    request: QueryRequest

    def to_record(self) -> RecordDict:
        return RecordDict(
            {
                INSTRUCTIONS: instructions_record(self.instructions),
                QUERY: config_record(self.request.to_config()),
            }
        )

    @classmethod
    def from_record(cls, content: RecordDict) -> QueryMessage:
        instructions = read_instructions(content)
        try:
            request = QueryRequest.from_config(read_config(content, QUERY, "query message"))
        except (KeyError, ValueError) as exc:
            raise RecordError(str(exc)) from None
        return cls(instructions, request)


@dataclass(frozen=True)
class ClusteringMessage:
    """One step of a company-clustering study (``query.company_clustering`` message)."""

    instructions: StudyInstructions
    request: ClusteringRequest

    def to_record(self) -> RecordDict:
        return RecordDict(
            {
                INSTRUCTIONS: instructions_record(self.instructions),
                CLUSTERING: config_record(self.request.to_config()),
            }
        )

    @classmethod
    def from_record(cls, content: RecordDict) -> ClusteringMessage:
        instructions = read_instructions(content)
        return cls(
            instructions,
            ClusteringRequest.from_config(read_config(content, CLUSTERING, "clustering message")),
        )


@dataclass(frozen=True)
class QueryReply:
    """A site's noisy answer to a statistics query."""

    answer: QueryAnswer

    def to_record(self) -> RecordDict:
        return RecordDict({ANSWER: config_record(self.answer.to_config())})

    @classmethod
    def from_record(cls, content: RecordDict) -> QueryReply:
        return cls(QueryAnswer.from_config(read_config(content, ANSWER, "query reply")))


@dataclass(frozen=True)
class ClusteringStepReply:
    """A site's noisy release for one step of a company-clustering study."""

    reply: ClusteringReply

    def to_record(self) -> RecordDict:
        return RecordDict({CLUSTERING: config_record(self.reply.to_config())})

    @classmethod
    def from_record(cls, content: RecordDict) -> ClusteringStepReply:
        return cls(ClusteringReply.from_config(read_config(content, CLUSTERING, "clustering reply")))
