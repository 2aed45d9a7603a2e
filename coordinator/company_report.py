"""Use case 2's study report: the released types in French, the skill-needs prediction, two plots.

Everything here is post-processing of what ``coordinator.company_clustering`` received (noisy
vectors only): centres decoded into profiles a counselor can read, noisy sizes with their
intervals, precision@3 of the skill-needs model. ``report.json`` and ``report.md`` are written by
``coordinator.study_folder`` like every study's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tasks.companies import ROME_DOMAINS, SECTOR_LABELS_FR
from tasks.noisy import NoisyValue
from tasks.reference import rome_grand_domaine_labels, size_brackets

from .study_folder import read_report, rows, section, write_report

if TYPE_CHECKING:
    from .company_clustering import ClusteringOutcome

def _size_label(code: str) -> str:
    row = size_brackets().loc[code]
    return f"{row['category']} ({row['label']} salariés)"


def short_label(profile: dict[str, object]) -> str:
    sectors = section(profile.get("sectors"))
    main = max(sectors, key=sectors.__getitem__) if sectors else None
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
    sectors = section(profile.get("sectors"))
    if sectors:
        ranked = sorted(sectors.items(), key=lambda kv: -kv[1])
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
    sought = section(profile.get("domains"))
    if sought:
        ranked = sorted(sought.items(), key=lambda kv: -kv[1])
        top = [f"{domains.get(d, d)} ({w:.0%})" for d, w in ranked[:3] if w >= 0.05]
        sentences.append("Métiers les plus recherchés : " + " ; ".join(top) + ".")
    return " ".join(sentences)


# --------------------------------------------------------------------------- report


def outcome_report(outcome: ClusteringOutcome) -> dict[str, object]:
    clusters: list[dict[str, object]] = []
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
    model, precision, hit = outcome.model, outcome.precision_at_3, outcome.hit_at_3
    evaluated = outcome.evaluated
    if model is not None and precision is not None and hit is not None and evaluated is not None:
        top = {
            str(cluster["label"]): [ROME_DOMAINS[j] for j in np.argsort(-model.rate_sought[i])[:3]]
            for i, cluster in enumerate(clusters)
        }
        prediction = {
            "model": "taux par type et domaine ROME (recherché ou non), table de comptages DP",
            "precision_at_3": precision[0],
            "precision_at_3_interval_95": list(precision[1:]),
            "hit_at_3": hit[0],
            "hit_at_3_interval_95": list(hit[1:]),
            "evaluated_companies_noisy": round(evaluated.value, 1),
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
    clustering_part = section(report.get("clustering"))
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
        for c in rows(clustering_part.get("clusters")):
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
        prediction = section(clustering_part.get("prediction"))
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
    sites = section(report.get("sites"))
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

    clusters = rows(section(report.get("clustering")).get("clusters"))
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

    clusters = rows(section(report.get("clustering")).get("clusters"))
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
    write_report(folder, report, render_markdown(report))
    if report.get("clustering"):
        plot_types(report, folder / "types.png")
        plot_domains(report, folder / "types_domaines.png")


def amend_company_report(folder: Path, extra: dict[str, object]) -> dict[str, object]:
    """Add sections known only after the study (the grant, the audit check) and re-render."""
    report = read_report(folder)
    report.update(extra)
    write_company_report(folder, report)
    return report
