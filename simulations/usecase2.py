"""Use case 2 in simulation: the company study's wiring and its evaluation against the hidden truth.

``DirectFederation`` asks ``node_agent.company_study.CompanySite`` objects in this process (the
benchmark and the tests use it; the scenario goes through Flower). ``evaluate_quality`` is the
evaluator's view, which no party of a real study has: it pools every site's rows to compute the
non-private k-means++ anchor and reads the hidden types to compute the adjusted Rand index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from coordinator.company_clustering import SiteFederation
from node_agent.company_study import TASK, CompanySite, company_site_from_view
from node_agent.declined import NodeDeclined
from node_agent.gate import StudyGate, StudyTerms
from tasks.clustering_protocol import ClusteringReply, ClusteringRequest
from tasks.companies import company_view, load_companies, validate_companies
from tasks.registry import get_task


class DirectFederation(SiteFederation):
    """Sites in this process; each keeps its own record of the releases it made."""

    def __init__(self, sites: Mapping[str, CompanySite]) -> None:
        self.sites = dict(sites)
        self.done: dict[str, set[str]] = {s: set() for s in self.sites}
        self.declines: dict[str, str] = {}

    def ask(self, request: ClusteringRequest) -> dict[str, ClusteringReply]:
        replies = {}
        for name, site in self.sites.items():
            try:
                replies[name] = site.answer(request, self.done[name])
            except NodeDeclined as declined:
                self.declines[name] = declined.reason(name)
        return replies


class RecordingGate(StudyGate):
    """The benchmark's gate: no broker, every reservation accepted and kept for inspection.

    Only for in-process runs on synthetic data (benchmark, tests): the scenario's nodes use the
    broker's gate, which refuses what a cap or a grant does not allow.
    """

    def __init__(self) -> None:
        self.reserved: list[tuple[str, dict[str, object]]] = []
        self.committed: list[tuple[str, dict[str, object]]] = []

    def admit(self, instructions, spec):  # type: ignore[no-untyped-def]
        raise NotImplementedError("the recording gate admits nothing: build the site from a view")

    def still_granted(self) -> None:
        return None

    def excluded(self, terms):  # type: ignore[no-untyped-def]
        return None

    def consented(self, terms):  # type: ignore[no-untyped-def]
        return None

    def reserve(self, request_id: str, mechanism: Mapping[str, object], examples: int) -> str:
        if any(r == request_id for r, _ in self.reserved):
            raise NodeDeclined("budget.request_id", f"request {request_id} was already reserved")
        self.reserved.append((request_id, dict(mechanism)))
        return request_id

    def commit(self, reservation_id: str, mechanism: Mapping[str, object]) -> None:
        self.committed.append((reservation_id, dict(mechanism)))

    def report(self, counts: Mapping[str, object]) -> None:
        return None


def sites_from_files(
    paths: Mapping[str, Path],
    *,
    epsilon: float,
    delta: float,
    lloyd_iterations: int,
    fields: Sequence[str] | None = None,
) -> tuple[dict[str, CompanySite], dict[str, pd.DataFrame]]:
    """Release-ready sites from generated files (validated, no broker), and each site's valid rows."""
    sites: dict[str, CompanySite] = {}
    rows: dict[str, pd.DataFrame] = {}
    for name, path in paths.items():
        raw = load_companies(path, name)
        valid, _ = validate_companies(raw, str(path))
        view = company_view(valid)
        terms = StudyTerms(
            epsilon,
            delta,
            "entreprises",
            "besoins_competences_tpe_pme",
            "public_interest",
            tuple(fields or get_task(TASK).default_fields()),
        )
        sirets = valid["siret"].astype(str).to_numpy()
        sites[name] = company_site_from_view(
            view,
            site=name,
            study_id="bench",
            gate=RecordingGate(),
            terms=terms,
            lloyd_iterations=lloyd_iterations,
            sirets=sirets,
            pseudonyms=sirets,
        )
        rows[name] = valid
    return sites, rows
