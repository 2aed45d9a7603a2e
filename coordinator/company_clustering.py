"""Use case 2 at the Region: federated DP k-means of companies, then the skill-needs model.

The driver only ever sees noisy vectors (``tasks.clustering_protocol``): the coreset that seeds
Lloyd and argues k, the per-cluster sums and counts of each Lloyd step, the skill-needs table and
its evaluation. Everything it publishes is post-processing of those: centres, French profiles,
noisy sizes (clusters under the purpose's minimum cell size withheld), precision@3 with its
interval. ``SiteFederation`` hides how the sites are reached: Flower's Message API
(``FlowerFederation``, a ``query.company_clustering`` message per step) or, in the benchmark,
direct calls. The report (profiles in French, plots) is ``coordinator.company_report``'s.
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from contracts.decline import Decline
from contracts.instructions import StudyInstructions
from contracts.queries import ClusteringMessage, ClusteringStepReply
from tasks import clustering
from tasks.clustering_protocol import (
    MESSAGE_TYPE,
    ClusteringReply,
    ClusteringRequest,
    ProtocolError,
    Step,
)
from tasks.companies import CompanyFeatures
from tasks.noisy import NoisyValue, ratio_interval
from tasks.skill_needs import SkillNeedsModel

from .company_report import outcome_report, short_label, write_company_report

if TYPE_CHECKING:
    from flwr.serverapp import Grid, ServerApp

    from .journal import RoundListener
    from .study_config import StudyConfig

log = logging.getLogger(__name__)


class StudyStopped(RuntimeError):
    """Too few sites answered a step: the study stops, and says which sites declined and why."""


class SiteFederation(ABC):
    """The sites of a study, asked one step at a time."""

    declines: dict[str, str]

    @abstractmethod
    def ask(self, request: ClusteringRequest) -> dict[str, ClusteringReply]:
        """Every answering site's reply; sites that declined are recorded in ``declines``."""


@dataclass(frozen=True)
class Noisy:
    """A vector summed over sites, with the standard deviation of its noise (variances add)."""

    values: np.ndarray
    noise_std: float


def _summed(replies: dict[str, ClusteringReply]) -> Noisy:
    vectors = [r.vector() for r in replies.values()]
    if len({v.shape for v in vectors}) != 1:
        raise ProtocolError("sites answered vectors of different shapes")
    return Noisy(np.sum(vectors, axis=0), math.sqrt(sum(r.noise_std**2 for r in replies.values())))


@dataclass
class ClusteringOutcome:
    features: CompanyFeatures
    k: int
    k_curve: dict[int, float]
    k_chosen_by: str
    centres: np.ndarray  # released clusters only
    sizes: list[NoisyValue]  # noisy size of each released cluster
    withheld: int
    coreset_cells: int
    model: SkillNeedsModel | None = None
    precision_at_3: tuple[float, float, float] | None = None
    hit_at_3: tuple[float, float, float] | None = None
    evaluated: NoisyValue | None = None
    sites: dict[str, ClusteringReply] = field(default_factory=dict)
    records: dict[str, float] = field(default_factory=dict)


def run_company_clustering(
    federation: SiteFederation,
    features: CompanyFeatures,
    *,
    k: int | None,
    lloyd_iterations: int,
    min_cell_size: int,
    min_sites: int,
    seed: int,
    skill_needs: bool = True,
) -> ClusteringOutcome:
    """Coreset → k → Lloyd × T → suppression → local labelling + skill-needs table → evaluation."""

    def ask(request: ClusteringRequest) -> dict[str, ClusteringReply]:
        replies = federation.ask(request)
        if len(replies) < min_sites:
            declined = "; ".join(f"{s}: {r}" for s, r in federation.declines.items()) or "no reply"
            raise StudyStopped(
                f"step {request.release_name}: {len(replies)} site(s) answered, "
                f"{min_sites} needed ({declined})"
            )
        return replies

    width = features.width
    grid = clustering.CoresetGrid(features)
    replies = ask(ClusteringRequest(Step.CORESET))
    coreset_sum = _summed(replies)
    sums, counts = clustering.split_statistics(coreset_sum.values, grid.n_cells, width)
    records = {
        s: float(clustering.split_statistics(r.vector(), grid.n_cells, width)[1].sum())
        for s, r in replies.items()
    }
    floor = max(float(min_cell_size), 2.0 * coreset_sum.noise_std)
    coreset = clustering.build_coreset(sums, counts, floor, features)
    if len(coreset.points) < 2:
        raise StudyStopped("the DP coreset kept fewer than two cells: too few companies for this ε")
    if k is None:
        k, curve = clustering.choose_k(coreset, seed)
        chosen_by = (
            "coude de la courbe de coût du coreset DP : plus petit k au-delà duquel un type de plus "
            f"explique moins de {clustering.ELBOW_GAIN:.0%} de la dispersion totale"
        )
    else:
        curve, chosen_by = {}, "fixé par l'étude"
    centres, _ = clustering.weighted_kmeans(coreset, k, seed)
    k = len(centres)
    last = Noisy(np.zeros(0), 0.0)
    for iteration in range(1, lloyd_iterations + 1):
        last = _summed(ask(ClusteringRequest(Step.LLOYD, iteration, centres)))
        sums, counts = clustering.split_statistics(last.values, k, width)
        centres = clustering.noisy_means(
            sums, counts, centres, max(float(min_cell_size), 2.0 * last.noise_std), features
        )
    counts = clustering.split_statistics(last.values, k, width)[1] if lloyd_iterations else np.full(k, np.inf)
    kept = clustering.released_clusters(counts, min_cell_size)
    outcome = ClusteringOutcome(
        features=features,
        k=k,
        k_curve=curve,
        k_chosen_by=chosen_by,
        centres=centres[kept],
        sizes=[NoisyValue(float(counts[i]), last.noise_std) for i in kept],
        withheld=k - len(kept),
        coreset_cells=len(coreset.points),
        records=records,
    )
    outcome.sites.update(replies)
    if not skill_needs or len(kept) == 0:
        return outcome
    labels = tuple(short_label(features.decode(c)) for c in outcome.centres)
    n_types = len(kept)
    table = _summed(ask(ClusteringRequest(Step.SKILLS, centres=outcome.centres, labels=labels)))
    outcome.model = SkillNeedsModel.from_statistics(table.values, n_types)
    evaluation = ask(
        ClusteringRequest(Step.EVALUATE, centres=outcome.centres, model=tuple(outcome.model.to_list()))
    )
    total = _summed(evaluation)
    precision, hit, count = (NoisyValue(float(v), total.noise_std) for v in total.values)
    outcome.precision_at_3 = ratio_interval(precision, count)
    outcome.hit_at_3 = ratio_interval(hit, count)
    outcome.evaluated = count
    outcome.sites.update(evaluation)
    return outcome


# --------------------------------------------------------------------------- on Flower


class FlowerFederation(SiteFederation):
    """Each step is one ``query.company_clustering`` message per node through Flower's Grid."""

    def __init__(self, grid, instructions: StudyInstructions, timeout: float) -> None:  # type: ignore[no-untyped-def]
        self.grid = grid
        self.instructions = instructions
        self.timeout = timeout
        self.declines: dict[str, str] = {}
        #: Each site's latest reply, kept even if the study stops later: its ε is spent.
        self.latest: dict[str, ClusteringReply] = {}

    def ask(self, request: ClusteringRequest) -> dict[str, ClusteringReply]:
        from flwr.app import Message

        messages = [
            Message(
                ClusteringMessage(self.instructions, request).to_record(),
                dst_node_id=node,
                message_type=MESSAGE_TYPE,
            )
            for node in self.grid.get_node_ids()
        ]
        replies: dict[str, ClusteringReply] = {}
        for reply in self.grid.send_and_receive(messages, timeout=self.timeout):
            if reply.has_error():
                decline = Decline.from_error(reply.error)
                if decline is None:
                    self.declines[str(reply.metadata.src_node_id)] = reply.error.reason
                else:
                    self.declines[decline.site] = decline.sentence()
                continue
            answer = ClusteringStepReply.from_record(reply.content).reply
            replies[answer.site] = answer
        self.latest.update(replies)
        return replies


def run_company_study(
    grid: Grid, config: StudyConfig, k: int | None = None, on_round: RoundListener | None = None
) -> dict[str, object]:
    """The ServerApp's body for a ``company_clustering`` study (``StudyConfig``, granted)."""
    from policies.loader import load_purposes

    from .server_app import _await_sites

    if not config.grant:
        raise StudyStopped("a company study needs a grant from the trust broker")
    started = time.monotonic()
    _await_sites(grid, len(config.sites))
    federation = FlowerFederation(grid, config.instructions(), config.round_timeout)
    purpose = next((p for p in load_purposes().values() if "company_clustering" in p.allowed_tasks), None)
    min_cell = purpose.min_cell_size if purpose is not None else 11
    status, reason = "completed", ""
    body: dict[str, object] = {}
    outcome: ClusteringOutcome | None = None
    try:
        outcome = run_company_clustering(
            federation,
            CompanyFeatures(config.fields),
            k=k,
            lloyd_iterations=config.num_server_rounds,
            min_cell_size=min_cell,
            min_sites=config.min_sites,
            seed=config.seed,
        )
        body = outcome_report(outcome)
    except (StudyStopped, ProtocolError) as exc:
        status, reason = "aborted", str(exc)
        log.error("study %s stopped: %s", config.study_id, exc)
    sites: dict[str, dict[str, object]] = {}
    for site in config.sites:
        reply = federation.latest.get(site)
        done = outcome is not None and site in outcome.sites
        sites[site] = {
            "status": "declined"
            if site in federation.declines
            else ("completed" if done else ("stopped" if reply else "absent")),
            "reason": federation.declines.get(site, ""),
            "examples": round(outcome.records.get(site, 0.0))
            if outcome and site in outcome.records
            else None,
            "epsilon": reply.epsilon_spent if reply else None,
            "target_epsilon": config.target_epsilon,
            "delta": reply.delta if reply else None,
            "releases": reply.releases if reply else 0,
        }
    report: dict[str, object] = {
        "study_id": config.study_id,
        "task": config.task,
        "status": status,
        "reason": reason,
        "wall_seconds": time.monotonic() - started,
        "metrics": {},
        "clustering": body,
        "clusters": body.get("clusters", []),
        "prediction": body.get("prediction", {}),
        "sites": sites,
        "epsilon_per_site": {s: v["epsilon"] for s, v in sites.items()},
    }
    write_company_report(config.study_dir, report)
    if on_round is not None:
        on_round(config.num_server_rounds, [s for s, v in sites.items() if v["status"] == "completed"])
    return report


def company_server_app(
    config: StudyConfig, k: int | None = None, on_round: RoundListener | None = None
) -> ServerApp:
    """A ServerApp bound to one company study (the simulation engine gives ServerApps no run config)."""
    from flwr.app import Context
    from flwr.serverapp import ServerApp

    bound = ServerApp()

    @bound.main()
    def _main(grid: Grid, context: Context) -> None:
        run_company_study(grid, config, k, on_round)

    return bound
