"""The Region asks the trust broker for an analytics study: the same request, grant and audit
path as a training study, with the query's fields, one "round" and the query's ε per site."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from contracts.roles import Role
from policies.loader import load_purposes
from policies.models import Reason, StudyRequest
from tasks import formations
from trust_broker.client import BrokerClient, BrokerError, StudyRefused

from .grant import admissible_delta


class QueryRefused(RuntimeError):
    """The broker refused the study; ``reasons`` name each rule (and what it was about)."""

    def __init__(self, message: str, reasons: Sequence[Reason] = ()) -> None:
        super().__init__(message)
        self.reasons = tuple(reasons)


def study_request(
    study_id: str, purpose: str, sites: Sequence[str], fields: Sequence[str], epsilon: float
) -> StudyRequest:
    return StudyRequest(
        study_id=study_id,
        purpose_id=purpose,
        task=formations.TASK,
        dataset=formations.DATASET,
        fields=tuple(fields),
        sites=tuple(sites),
        rounds=1,
        target_epsilon=epsilon,
        delta=admissible_delta(purpose, sites, formations.DATASET),
        coordinator="coordinator",
        requested_by="coordinator",
    )


def request_query_grant(request: StudyRequest, *, broker_url: str, keys: Path) -> str:
    """The signed grant (compact JWS), or QueryRefused naming every refusing rule."""
    try:
        with BrokerClient.from_folder(keys, Role.REGION, base_url=broker_url) as region:
            return region.request_study(request).grant
    except StudyRefused as exc:
        reasons = "; ".join(f"{r.rule} ({r.subject}): {r.detail}" for r in exc.reasons) or exc.detail
        raise QueryRefused(f"the broker refused study {request.study_id}: {reasons}", exc.reasons) from None
    except (BrokerError, OSError, ValueError) as exc:
        raise QueryRefused(f"asking the broker at {broker_url} for a grant: {exc}") from None


def min_cell_size(purpose: str) -> int:
    return load_purposes()[purpose].min_cell_size
