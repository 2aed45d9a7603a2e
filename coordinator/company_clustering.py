"""Use case 2 at the Region: federated DP k-means of companies, then the skill-needs model.

The driver only ever sees noisy vectors (``tasks.clustering_protocol``): the coreset that seeds
Lloyd and argues k, the per-cluster sums and counts of each Lloyd step, the skill-needs table and
its evaluation. Everything it publishes is post-processing of those: centres, French profiles,
noisy sizes (clusters under the purpose's minimum cell size withheld), precision@3 with its
interval. ``SiteFederation`` hides how the sites are reached: Flower's Message API
(``FlowerFederation``, a ``query.company_clustering`` message per step) or, in the benchmark,
direct calls.
"""

from __future__ import annotations

import json
import logging
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

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
from tasks.companies import ROME_DOMAINS, SECTOR_LABELS_FR, CompanyFeatures
from tasks.noisy import NoisyValue, ratio_interval
from tasks.reference import rome_grand_domaine_labels, size_brackets
from tasks.skill_needs import SkillNeedsModel

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


# --------------------------------------------------------------------------- profiles in French


def _size_label(code: str) -> str:
    row = size_brackets().loc[code]
    return f"{row['category']} ({row['label']} salariés)"


def short_label(profile: dict[str, object]) -> str:
    sectors = profile.get("sectors") or {}
    main = max(sectors, key=sectors.get) if sectors else None  # type: ignore[arg-type]
    parts = [SECTOR_LABELS_FR[main].capitalize() if main else "Entreprises"]
    if "size_bracket" in profile:
        parts.append(str(size_brackets().loc[str(profile["size_bracket"]), "category"]))
    difficulty = profile.get("difficult_projects_share")
    if isinstance(difficulty, float):
        parts.append("recrutements difficiles" if difficulty >= 0.6 else "recrutements plutôt aisés")
    seasonal = profile.get("seasonal_projects_share")
    if isinstance(seasonal, float) and seasonal >= 0.4:
        parts.append("saisonniers")
    return ", ".join(parts)


def describe_fr(profile: dict[str, object], size: NoisyValue) -> str:
    """One sentence a counselor can read: sector, size, difficulty, seasonality, occupations sought."""
    domains = rome_grand_domaine_labels()
    sentences = [f"Environ {max(size.value, 0):.0f} établissements."]
    sectors = profile.get("sectors") or {}
    if sectors:
        ranked = sorted(sectors.items(), key=lambda kv: -kv[1])  # type: ignore[union-attr]
        top = [f"{SECTOR_LABELS_FR[s]} ({w:.0%})" for s, w in ranked[:2] if w >= 0.1]
        sentences.append("Secteur : " + ", ".join(top) + ".")
    if "size_bracket" in profile:
        sentences.append(f"Taille typique : {_size_label(str(profile['size_bracket']))}.")
    if "hiring_projects" in profile:
        sentences.append(
            f"Projets de recrutement : {profile['hiring_projects']:.1f} par an en moyenne géométrique."
        )
    if "difficult_projects_share" in profile:
        sentences.append(f"Part des projets jugés difficiles : {profile['difficult_projects_share']:.0%}.")
    if "seasonal_projects_share" in profile:
        sentences.append(f"Part des projets saisonniers : {profile['seasonal_projects_share']:.0%}.")
    sought = profile.get("domains") or {}
    if sought:
        ranked = sorted(sought.items(), key=lambda kv: -kv[1])  # type: ignore[union-attr]
        top = [f"{domains.get(d, d)} ({w:.0%})" for d, w in ranked[:3] if w >= 0.05]
        sentences.append("Métiers les plus recherchés : " + " ; ".join(top) + ".")
    return " ".join(sentences)


# --------------------------------------------------------------------------- report


def outcome_report(outcome: ClusteringOutcome) -> dict[str, object]:
    clusters = []
    for i, (centre, size) in enumerate(zip(outcome.centres, outcome.sizes, strict=True)):
        profile = outcome.features.decode(centre)
        low, high = size.interval()
        clusters.append(
            {
                "type": i + 1,
                "label": short_label(profile),
                "profile_fr": describe_fr(profile, size),
                "profile": profile,
                "noisy_size": round(size.value, 1),
                "size_interval_95": [round(low, 1), round(high, 1)],
                "centre": [round(float(v), 5) for v in centre],
            }
        )
    prediction: dict[str, object] = {}
    if outcome.precision_at_3 is not None and outcome.hit_at_3 is not None and outcome.evaluated is not None:
        top = {
            cluster["label"]: [ROME_DOMAINS[j] for j in np.argsort(-outcome.model.rate_sought[i])[:3]]  # type: ignore[union-attr]
            for i, cluster in enumerate(clusters)
        }
        prediction = {
            "model": "taux par type et domaine ROME (recherché ou non), table de comptages DP",
            "precision_at_3": outcome.precision_at_3[0],
            "precision_at_3_interval_95": list(outcome.precision_at_3[1:]),
            "hit_at_3": outcome.hit_at_3[0],
            "hit_at_3_interval_95": list(outcome.hit_at_3[1:]),
            "evaluated_companies_noisy": round(outcome.evaluated.value, 1),
            "hardest_domains_by_type": top,
        }
    return {
        "k": outcome.k,
        "k_choice": {
            "rule": outcome.k_chosen_by,
            "coreset_cost_by_k": {str(k): v for k, v in outcome.k_curve.items()},
        },
        "coreset_cells": outcome.coreset_cells,
        "clusters": clusters,
        "withheld_clusters": outcome.withheld,
        "features": list(outcome.features.names),
        "prediction": prediction,
    }


QUALITY_LABELS_FR = {
    "k": "nombre de types (k)",
    "cost_released_centres": "coût k-means des centres publiés, sur les données regroupées",
    "cost_nonprivate_kmeanspp": "coût de k-means++ non privé sur les données regroupées",
    "cost_ratio": "rapport des coûts (publié / non privé)",
    "ari_local_labels_vs_true_types": "indice de Rand ajusté, étiquetage local / types réels",
    "ari_nonprivate_kmeanspp_vs_true_types": "indice de Rand ajusté, k-means++ non privé / types réels",
    "companies_pooled": "lignes regroupées pour l'évaluation",
    "note": "remarque",
}


def render_markdown(report: dict[str, object]) -> str:
    """The study report in French (the people who read it are the Region's and partners' staff)."""
    lines = [
        f"# Étude {report.get('study_id', '')} — besoins en compétences des TPE/PME",
        "",
        f"Statut : **{report.get('status')}** ; durée {report.get('wall_seconds', 0):.1f} s.",
        "",
        "Toutes les valeurs ci-dessous sont des post-traitements de statistiques publiées sous "
        "confidentialité différentielle (mécanisme gaussien, bruit tiré par chaque partenaire).",
        "",
    ]
    clustering_part = report.get("clustering") or {}
    assert isinstance(clustering_part, dict)
    if clustering_part:
        lines += [
            f"## Typologie ({clustering_part['k']} types ; "
            f"choix de k : {clustering_part['k_choice']['rule']})",
            "",
            "![Types d'entreprises](types.png)",
            "",
            "![Domaines de métiers recherchés par type](types_domaines.png)",
            "",
            "| type | libellé | effectif bruité (IC 95 %) | profil |",
            "|---|---|---|---|",
        ]
        for c in clustering_part["clusters"]:
            low, high = c["size_interval_95"]
            lines.append(
                f"| {c['type']} | {c['label']} | {c['noisy_size']:.0f} ({low:.0f}–{high:.0f}) "
                f"| {c['profile_fr']} |"
            )
        withheld = clustering_part.get("withheld_clusters", 0)
        lines += [
            "",
            f"Types non publiés (effectif bruité sous la taille minimale de cellule) : {withheld}.",
            "",
        ]
        prediction = clustering_part.get("prediction") or {}
        if prediction:
            lo, hi = prediction["precision_at_3_interval_95"]
            hlo, hhi = prediction["hit_at_3_interval_95"]
            lines += [
                "## Prévision des métiers difficiles à pourvoir l'an prochain",
                "",
                f"Précision@3 : **{prediction['precision_at_3']:.3f}** (IC 95 % {lo:.3f}–{hi:.3f}) ; "
                "au moins un domaine juste parmi les 3 : "
                f"{prediction['hit_at_3']:.3f} ({hlo:.3f}–{hhi:.3f}), "
                f"sur environ {prediction['evaluated_companies_noisy']:.0f} établissements de validation.",
                "",
            ]
    quality = report.get("quality")
    if isinstance(quality, dict):
        lines += ["## Qualité (évaluation sur données synthétiques, hors étude)", ""]
        for key, value in quality.items():
            lines.append(f"- {QUALITY_LABELS_FR.get(key, key)} : {value}")
        lines.append("")
    sites = report.get("sites") or {}
    assert isinstance(sites, dict)
    lines += [
        "## Partenaires",
        "",
        "| site | statut | établissements (bruité) | ε dépensé | ε accordé | δ | publications |",
        "|---|---|---|---|---|---|---|",
    ]
    for site, s in sites.items():
        eps = s.get("epsilon")
        lines.append(
            f"| {site} | {s['status']} | {s.get('examples') or '—'} | "
            f"{eps if eps is None else f'{eps:.3f}'} | "
            f"{s.get('target_epsilon')} | {s.get('delta') or 0:.1e} | {s.get('releases', '—')} |"
        )
    bad = report.get("bad_input")
    if isinstance(bad, dict) and bad:
        lines += ["", "## Lignes écartées (rapport local des partenaires)", ""]
        for site, detail in bad.items():
            lines.append(
                f"- {site} : {detail['rows_left_out']} ligne(s) sur {detail['rows_read']} "
                f"({detail['by_rule']})"
            )
            for problem in detail.get("examples", []):
                lines.append(f"  - {problem}")
    audit = report.get("audit")
    if isinstance(audit, dict):
        lines += ["", f"Audit : export `{audit['export']}` — {'vérifié' if audit['verified'] else 'ÉCHEC'}."]
    return "\n".join(lines) + "\n"


def plot_types(report: dict[str, object], path: Path) -> None:
    """Bubbles: difficulty × seasonality, area = noisy size, one per released type."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clusters = (report.get("clustering") or {}).get("clusters", [])  # type: ignore[union-attr]
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for c in clusters:
        p = c["profile"]
        x, y = p.get("difficult_projects_share", 0.0), p.get("seasonal_projects_share", 0.0)
        ax.scatter(x, y, s=max(c["noisy_size"], 1) / 5, alpha=0.5, label=f"{c['type']}. {c['label']}")
        ax.annotate(str(c["type"]), (x, y), fontsize=9, ha="center", va="center", weight="bold")
    ax.set_xlabel("part des projets jugés difficiles")
    ax.set_ylabel("part des projets saisonniers")
    ax.set_title("Types d'entreprises (taille des bulles : effectif bruité)")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), markerscale=0.3, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_domains(report: dict[str, object], path: Path) -> None:
    """Heat map: share of each type's hiring projects in each ROME grand domaine (released centres)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clusters = (report.get("clustering") or {}).get("clusters", [])  # type: ignore[union-attr]
    if not clusters or "domains" not in clusters[0]["profile"]:
        return
    shares = np.array([[c["profile"]["domains"][d] for d in ROME_DOMAINS] for c in clusters])
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(clusters) + 1.5))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(ROME_DOMAINS)), ROME_DOMAINS)
    ax.set_yticks(range(len(clusters)), [f"{c['type']}. {c['label']}" for c in clusters], fontsize=7)
    ax.set_xlabel("grand domaine ROME des métiers recherchés")
    fig.colorbar(image, ax=ax, label="part des projets")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_company_report(folder: Path, report: dict[str, object]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(_finite(report), indent=2, ensure_ascii=False), "utf-8")
    (folder / "report.md").write_text(render_markdown(report), "utf-8")
    if report.get("clustering"):
        plot_types(report, folder / "types.png")
        plot_domains(report, folder / "types_domaines.png")


def amend_company_report(folder: Path, extra: dict[str, object]) -> dict[str, object]:
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    report.update(extra)
    write_company_report(folder, report)
    return report


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.floating | np.integer):
        return _finite(value.item())
    return value


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


def run_company_study(grid, config, k: int | None = None, on_round=None) -> dict[str, object]:  # type: ignore[no-untyped-def]
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
    status, reason, body = "completed", "", {}
    outcome = None
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
    sites: dict[str, object] = {}
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
        "epsilon_per_site": {s: v["epsilon"] for s, v in sites.items()},  # type: ignore[index]
    }
    write_company_report(config.study_dir, report)
    if on_round is not None:
        on_round(config.num_server_rounds, [s for s, v in sites.items() if v["status"] == "completed"])  # type: ignore[index]
    return report


def company_server_app(config, k: int | None = None, on_round=None):  # type: ignore[no-untyped-def]
    """A ServerApp bound to one company study (the simulation engine gives ServerApps no run config)."""
    from flwr.serverapp import Grid, ServerApp

    bound = ServerApp()

    @bound.main()
    def _main(grid: Grid, context) -> None:  # type: ignore[no-untyped-def]
        run_company_study(grid, config, k, on_round)

    return bound
