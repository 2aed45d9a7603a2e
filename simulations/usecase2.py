"""Use case 2 in simulation: the company study's wiring and its evaluation against the hidden truth.

``DirectFederation`` asks ``node_agent.company_study.CompanySite`` objects in this process (the
benchmark and the tests use it; the scenario goes through Flower). ``evaluate_quality`` is the
evaluator's view, which no party of a real study has: it pools every site's rows to compute the
non-private k-means++ anchor and reads the hidden types to compute the adjusted Rand index.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from coordinator.company_clustering import SiteFederation
from coordinator.study_folder import rows, section
from node_agent.company_study import TASK, CompanySite, company_site_from_view
from node_agent.declined import NodeDeclined
from node_agent.gate import StudyGate, StudyTerms
from node_agent.sources import load_file
from tasks.clustering import kmeans_cost
from tasks.clustering_protocol import ClusteringReply, ClusteringRequest
from tasks.companies import CompanyFeatures, RowProblem, as_read, company_view, validate_companies
from tasks.registry import get_task

from .companies import FILE_NAME, TRUTH_FILE


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
                self.declines[name] = declined.decline(name).sentence()
        return replies


class RecordingGate(StudyGate):
    """The benchmark's gate: no broker, every reservation accepted and kept for inspection.

    Only for in-process runs on synthetic data (benchmark, tests): the scenario's nodes use the
    broker's gate, which refuses what a cap or a grant does not allow.
    """

    def __init__(self) -> None:
        self.reserved: list[tuple[str, dict[str, object]]] = []
        self.released: list[str] = []
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

    def release(self, reservation_id: str) -> None:
        self.released.append(reservation_id)

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
        raw = load_file(path, name, as_read)
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


# --------------------------------------------------------------------------- the scenario's evaluation


def pooled_features(
    data_root: Path, sites: Sequence[str], fields: Sequence[str]
) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Every site's valid rows in the study's feature space, and their (site, SIRET) keys."""
    features = CompanyFeatures(tuple(fields))
    parts, keys = [], []
    for site in sites:
        path = data_root / site / FILE_NAME
        valid, _ = validate_companies(load_file(path, site, as_read), str(path))
        parts.append(features.encode(company_view(valid)))
        keys += [(site, s) for s in valid["siret"].astype(str)]
    return np.vstack(parts), keys


def evaluate_quality(study_dir: Path, report: Mapping[str, object], seed: int) -> dict[str, object]:
    """Cost ratio against non-private k-means++ on the pooled rows, and ARIs against the hidden types."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    data_root = study_dir / "data"
    fields = tuple(rows(section(report.get("grant")).get("fields"))) or get_task(TASK).default_fields()
    sites = list(section(report["sites"]))
    x, keys = pooled_features(data_root, sites, fields)
    body = section(report.get("clustering"))
    centres = np.array([c["centre"] for c in rows(body.get("clusters"))])
    if len(centres) == 0:
        return {"note": "no cluster released"}
    k = int(body.get("k", len(centres)))
    anchor = KMeans(k, n_init=10, random_state=seed).fit(x)
    truth = pd.read_csv(data_root / TRUTH_FILE, dtype=str).set_index(["site", "siret"])["type"]
    true_types = truth.reindex(keys).to_numpy()
    local = []
    for site in sites:
        path = data_root / site / "node-reports" / f"{report['study_id']}.company_types.csv"
        if path.is_file():
            labels = pd.read_csv(path, dtype=str)
            local += [((site, s), t) for s, t in zip(labels["siret"], labels["type"], strict=True)]
    labelled = dict(local)
    mask = np.array([key in labelled for key in keys])
    return {
        "k": k,
        "cost_released_centres": round(kmeans_cost(x, centres), 3),
        "cost_nonprivate_kmeanspp": round(float(anchor.inertia_), 3),
        "cost_ratio": round(kmeans_cost(x, centres) / float(anchor.inertia_), 4),
        "ari_local_labels_vs_true_types": round(
            float(
                adjusted_rand_score(
                    true_types[mask], [labelled[key] for key, m in zip(keys, mask, strict=True) if m]
                )
            ),
            4,
        )
        if mask.any()
        else None,
        "ari_nonprivate_kmeanspp_vs_true_types": round(
            float(adjusted_rand_score(true_types, anchor.labels_)), 4
        ),
        "companies_pooled": len(keys),
        "note": "évaluation hors étude : seul le simulateur voit les données regroupées et les types cachés",
    }


def bad_input_summary(
    data_root: Path, sites: Sequence[str], study_id: str, examples: int = 5
) -> dict[str, object]:
    """What each partner's own validation report says (the simulator reads every node's folder)."""
    out: dict[str, object] = {}
    for site in sites:
        path = data_root / site / "node-reports" / f"{study_id}.validation.json"
        if not path.is_file():
            continue
        detail = json.loads(path.read_text(encoding="utf-8"))
        if detail["rows_left_out"]:
            out[site] = {
                "rows_read": detail["rows_read"],
                "rows_left_out": detail["rows_left_out"],
                "by_rule": detail["by_rule"],
                "examples": [str(RowProblem(**p)) for p in detail["problems"][:examples]],
            }
    return out
