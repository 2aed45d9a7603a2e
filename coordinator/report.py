"""The study folder: final model, `report.json` (for machines and auditors), `report.md` (for people).

`report.md` is written for a Region data officer, in French like the audit report: it says when the
data are synthetic, explains its measures in a short glossary, puts names beside codes (zone d'emploi
0053 = Avignon, ROME M1607 = its label, site ids = the partners' names), and every text that came from
elsewhere (a node's reason, a code) is escaped so that it cannot break a table.
Sections are lists of rows (`QUALITY_ROWS`, `SITE_COLUMNS`, `GLOSSARY`): a new measure is one more row.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import torch

from autodiag.release import release_markdown
from tasks import reference
from tasks.metrics import RECORD_CELLS
from tasks.noisy import NoisyValue

from .journal import SiteRecord, StudyJournal
from .study_config import StudyConfig


def build_report(
    config: StudyConfig,
    journal: StudyJournal,
    *,
    status: str,
    reason: str,
    rounds_completed: int,
    round_metrics: dict[int, dict[str, dict[str, float]]],
    wall_seconds: float,
    feature_names: list[str],
    explanations: dict[str, object] | None = None,
) -> dict[str, object]:
    final = round_metrics[max(round_metrics)] if round_metrics else {}
    sites = {}
    for site, record in sorted(journal.sites.items()):
        sites[site] = {
            "status": record.status,
            "epsilon": record.epsilon,
            "target_epsilon": record.target_epsilon,
            "delta": record.delta,
            "noise_multiplier": record.noise_multiplier,
            "rounds_trained": record.rounds_trained,
            "declined": record.declined,
            "data_errors": record.data_errors,
            "failures": record.failures,
            **site_records(record),
        }
    return {
        "study_id": config.study_id,
        "task": config.task,
        "status": status,
        "reason": reason,
        "strategy": config.strategy,
        "rounds": rounds_completed,
        "rounds_planned": config.num_server_rounds,
        "wall_seconds": round(wall_seconds, 3),
        **quality_section(final),
        "metrics_by_round": {str(r): m for r, m in sorted(round_metrics.items())},
        "sites": sites,
        "fairness": journal.pooled_fairness(),
        "explanations": explanations or {},
        "rounds_detail": {str(r): d for r, d in sorted(journal.rounds.items())},
        "features": feature_names,
        "privacy": privacy_section(journal),
    }


QUALITY = ("accuracy", "auc", "log_loss", "positive_rate")


def quality_section(final: dict[str, dict[str, float]]) -> dict[str, object]:
    """The pooled holdout metrics (noisy: computed from DP releases) and their 95 % intervals."""
    return {
        "metrics": {k: final[k]["value"] if k in final else float("nan") for k in QUALITY},
        "metrics_intervals": {k: [final[k]["low"], final[k]["high"]] for k in QUALITY if k in final},
    }


def site_records(record: SiteRecord) -> dict[str, object]:
    """A site's record counts as the coordinator knows them: noisy, from its last evaluation's
    release (None where the node suppressed a cell under the small-cell rule, or never evaluated)."""
    release = record.evaluation
    cells: list[NoisyValue | None] = release.block("records") if release else [None] * len(RECORD_CELLS)
    records = {
        name: None
        if cell is None
        else {"value": round(cell.value), "interval": [round(x) for x in cell.interval()]}
        for name, cell in zip(RECORD_CELLS, cells, strict=True)
    }
    train = records["train"]
    return {"examples": train["value"] if train else None, "records": records}


def privacy_section(journal: StudyJournal) -> dict[str, object]:
    """What the ε figures protect, and how far they reach for a person present at several sites."""
    trained = {s: r for s, r in journal.sites.items() if r.rounds_trained}
    evaluated = [r.evaluation for r in trained.values() if r.evaluation is not None]
    worst = several_sites_epsilon(list(trained.values()))
    return {
        "unit": "one person's record in one partner's dataset (add/remove), per study",
        "accountant": "RDP (Opacus), composed over every DP-SGD round and every evaluation of the study",
        "evaluation_metrics": (
            "each site's holdout statistics (score histogram by outcome, record counts, per-group "
            "outcome × prediction cells; L2 sensitivity 1 per block) leave the node as one Gaussian "
            "release per evaluation, reserved and committed in the site's ledger account; cells under "
            f"{evaluated[0].min_cell if evaluated else 11} are suppressed at the node after noise; "
            "the log-loss is read from the histogram's bin mid-points; intervals are 95 % for the "
            "DP noise only (not the holdout's sampling error, nor the bias suppression adds)"
        ),
        "evaluations": {
            "granted_per_site": evaluated[0].evaluations_granted if evaluated else 0,
            "noise_std_per_cell": {s: r.evaluation.noise_std for s, r in trained.items() if r.evaluation},
        },
        "several_sites": {
            "sites": sorted(trained),
            "worst_case_epsilon": worst,
            "delta": sum(r.delta for r in trained.values()),
            "by_pair": {
                f"{a}+{b}": several_sites_epsilon([trained[a], trained[b]])
                for i, a in enumerate(sorted(trained))
                for b in sorted(trained)[i + 1 :]
            },
            "statement": (
                "a person whose records are at several partners is protected by the composition of "
                "those sites' mechanisms (every DP-SGD round and evaluation of each, composed with RDP "
                f"and read at the sum of their δ) — here up to ε = {worst:.2f} for a person at all "
                f"{len(trained)} sites, against a per-site target of "
                f"{max((r.target_epsilon for r in trained.values()), default=float('nan')):.2f}"
            ),
        },
    }


def several_sites_epsilon(records: list[SiteRecord]) -> float:
    """ε of one person present at every one of these sites: the composition of all their mechanisms
    (RDP, Opacus' analysis as the ledger uses it), converted at the sum of the sites' δ."""
    from opacus.accountants import RDPAccountant

    history = []
    for record in records:
        if record.noise_multiplier > 0 and record.steps_per_round > 0:
            steps = record.steps_per_round * len(record.rounds_trained)
            history.append((record.noise_multiplier, record.sample_rate, steps))
        release = record.evaluation
        if release is not None and release.noise_std > 0:
            history.append((release.noise_std / release.layout.l2_sensitivity, 1.0, release.evaluation))
    if not history:
        return float("nan")
    accountant = RDPAccountant()
    accountant.history = history
    return float(accountant.get_epsilon(sum(r.delta for r in records)))


def write_study_folder(folder: Path, report: dict[str, object], model: torch.nn.Module | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if model is not None:
        torch.save({"state_dict": model.state_dict(), "features": report["features"]}, folder / "model.pt")
        report["model"] = "model.pt"
    (folder / "report.json").write_text(
        json.dumps(_finite(report), indent=2, ensure_ascii=False), encoding="utf-8"
    )
    (folder / "report.md").write_text(render_markdown(report), encoding="utf-8")


def amend_report(folder: Path, extra: dict[str, object]) -> dict[str, object]:
    """Add sections known only after the study (the grant, the audit check) and re-render."""
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    report.update(extra)
    (folder / "report.json").write_text(
        json.dumps(_finite(report), indent=2, ensure_ascii=False), encoding="utf-8"
    )
    (folder / "report.md").write_text(render_markdown(report), encoding="utf-8")
    return report


def _finite(value: object) -> object:
    """JSON has no NaN/inf: write them as null so every JSON reader accepts the report."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "—" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


# --------------------------------------------------------------------------- words for people

STATUS_FR = {
    "completed": "terminée",
    "aborted": "interrompue",
    "trained": "a participé",
    "declined": "a refusé",
    "data error": "erreur de données",
    "failed": "en échec",
}

#: Model quality, one row per measure: (label, key in report["metrics"]). Add a row, get a line.
QUALITY_ROWS: list[tuple[str, str]] = [
    ("AUC (capacité à classer)", "auc"),
    ("Exactitude (accuracy, seuil 0,5)", "accuracy"),
    ("Log-loss (perte logarithmique)", "log_loss"),
    ("Taux de prédictions positives", "positive_rate"),
]

#: The glossary printed at the end of every report: term -> plain-French explanation.
GLOSSARY: dict[str, str] = {
    "AUC": (
        "probabilité que le modèle classe une personne revenue à l'emploi au-dessus d'une personne qui"
        " ne l'est pas ; 0,5 = hasard, 1 = parfait."
    ),
    "Exactitude": "part des personnes dont l'issue (emploi à 6 mois ou non) est bien prédite.",
    "Log-loss": "erreur moyenne des probabilités prédites ; plus elle est basse, mieux c'est.",
    "ε (epsilon)": (
        "budget de confidentialité différentielle dépensé par un partenaire : plus il est petit, moins"
        " le résultat dépend d'une personne en particulier. Chaque partenaire fixe un plafond."
    ),
    "δ (delta)": (
        "probabilité, très petite, que la garantie ε ne tienne pas ; toujours inférieure à"
        " 1/(10 × nombre d'enregistrements)."
    ),
    "σ (sigma)": "multiplicateur du bruit ajouté à chaque étape d'apprentissage (DP-SGD).",
    "Écart de parité démographique": "différence de taux de prédictions positives entre groupes.",
    "Écart d'égalité des chances": "différence de taux de vrais positifs entre groupes.",
}

FIELD_FR = {
    "zone_emploi": "zone d'emploi",
    "rome_target": "métier visé (ROME)",
    "rome_previous": "métier précédent (ROME)",
    "age_band": "tranche d'âge",
    "sex": "sexe",
    "education_level": "niveau de formation",
    "months_unemployed": "mois de chômage",
    "mobility_km": "mobilité (km)",
    "driving_licence": "permis de conduire",
    "training_followed": "formation suivie",
    "departement": "département",
}


def md_cell(value: object) -> str:
    """Text from elsewhere made safe for a Markdown table cell: one line, no column break, no HTML."""
    text = " ".join(str(value).split())
    for char, escaped in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), (">", "&gt;"), ("`", "\\`")):
        text = text.replace(char, escaped)
    return text


@lru_cache(maxsize=1)
def _site_labels() -> dict[str, str]:
    """The partners' names from their policy documents, parsed once per process (not per row)."""
    from policies.loader import load_site_policies

    return {site: policy.label for site, policy in load_site_policies().items()}


def site_name(site: str) -> str:
    """``apec`` → ``APEC — Centre Provence-Alpes-Côte d'Azur (apec)``, from the partners' policy documents."""
    try:
        label = _site_labels()[site]
    except Exception:  # noqa: BLE001 - a name is a courtesy: the id alone is still right
        return site
    return f"{label} ({site})"


def named(field: str, value: object) -> str:
    """A code with its name beside it: zone d'emploi ``0053`` → ``0053 (Avignon)``."""
    code = str(value)
    lookups = {"zone_emploi": reference.zone_label, "rome_target": reference.rome_label}
    lookups["rome_previous"] = reference.rome_label
    lookup = lookups.get(field)
    if lookup is None:
        return code
    try:
        return f"{code} ({lookup(code)})"
    except Exception:  # noqa: BLE001 - unknown code or no reference data here: show the code alone
        return code


def _fr(value: object, digits: int = 3) -> str:
    return _fmt(value, digits).replace(".", ",")


def _status(value: object) -> str:
    return STATUS_FR.get(str(value), str(value))


def _interval(pair: object) -> str:
    if not isinstance(pair, list | tuple) or None in pair:
        return ""
    return f" [{_fr(pair[0])} ; {_fr(pair[1])}]"


def _noisy_count(cell: object) -> str:
    if not isinstance(cell, dict):
        return "masqué"
    low, high = cell["interval"]
    return f"≈{cell['value']} [{low} ; {high}]"


def render_fairness(report: dict[str, object]) -> list[str]:
    """Group rates and gaps from the pooled noisy cells, with their 95 % intervals."""
    fairness = report["fairness"]
    assert isinstance(fairness, dict)
    if not fairness:
        return []
    lines = [
        "",
        "## Équité (échantillons de test réunis ; petits groupes masqués au nœud ; intervalles à 95 %)",
        "",
    ]
    for attribute, f in fairness.items():
        gaps = f.get("gap_intervals", {})
        suppressed = ", ".join(
            md_cell(g) for g in [*f["suppressed_groups"], *f.get("suppressed_at_sites", [])]
        )
        shown = ", ".join(
            f"{label} {_fr(f[key])}{_interval(gaps.get(key))}"
            for label, key in (
                ("écart de parité démographique", "demographic_parity_gap"),
                ("écart d'égalité des chances", "equal_opportunity_gap"),
                ("écart des issues observées", "observed_outcome_gap"),
            )
        )
        lines.append(
            f"- **{FIELD_FR.get(attribute, md_cell(attribute))}** : {shown}"
            + (f" (masqués : {suppressed})" if suppressed else "")
        )
        lines += [
            "",
            "  | groupe | effectif | taux de sélection | taux de vrais positifs | taux observé |",
            "  |---|---|---|---|---|",
        ]
        for group, r in f["groups"].items():
            within = r.get("intervals", {})
            lines.append(
                f"  | {md_cell(group)} | ≈{_fmt(r['n'], 0)} | "
                + " | ".join(
                    f"{_fr(r[k])}{_interval(within.get(k))}"
                    for k in ("selection_rate", "true_positive_rate", "observed_rate")
                )
                + " |"
            )
        lines.append("")
    return lines


def render_privacy(report: dict[str, object]) -> list[str]:
    """The unit of privacy and the worst case of a person present at several sites."""
    privacy = report.get("privacy")
    if not isinstance(privacy, dict) or "several_sites" not in privacy:
        return []
    several = privacy["several_sites"]
    target = max((s.get("target_epsilon") or 0.0 for s in report["sites"].values()), default=0.0)  # type: ignore[union-attr]
    return [
        "",
        "## Unité de confidentialité",
        "",
        "- Unité : l'enregistrement d'une personne chez un partenaire (ajout ou retrait), pour une étude.",
        "- Évaluations : chaque partenaire publie les statistiques de son échantillon de test (histogramme"
        " des scores par issue, effectifs, cellules issue × prédiction par groupe) en une seule"
        " publication gaussienne par évaluation, réservée puis enregistrée dans son compte de budget ;"
        " les cellules de moins de 11 personnes sont masquées au nœud après le bruit. Les intervalles"
        " (95 %) couvrent le bruit seul.",
        f"- Personne présente chez plusieurs partenaires : protégée par la composition des mécanismes de"
        f" ces partenaires, soit au pire ε = {_fr(several.get('worst_case_epsilon'), 2)} pour une personne"
        f" présente chez les {len(several.get('sites', []))} partenaires (cible par partenaire :"
        f" {_fr(target, 2)}).",
    ]


def render_markdown(report: dict[str, object]) -> str:
    metrics = report["metrics"]
    assert isinstance(metrics, dict)
    reason = f" ({md_cell(report['reason'])})" if report["reason"] else ""
    lines = [f"# Étude {md_cell(report['study_id'])} — {md_cell(report['task'])}", ""]
    data = report.get("data")
    if isinstance(data, dict) and data.get("synthetic"):
        lines += [
            "> **Données synthétiques.** "
            + md_cell(data.get("description") or "")
            + " Aucun résultat de ce rapport ne décrit des personnes réelles.",
            "",
        ]
    lines += [
        f"Statut : **{_status(report['status'])}**{reason}",
        "",
        f"Tours : {report['rounds']} sur {report['rounds_planned']} · stratégie {md_cell(report['strategy'])}"
        f" · durée {_fr(report['wall_seconds'], 1)} s",
        "",
        "## Qualité du modèle (échantillons de test réunis, publiés sous confidentialité différentielle ;"
        " intervalles à 95 % pour le bruit)",
        "",
        "| mesure | valeur |",
        "|---|---|",
    ]
    intervals = report.get("metrics_intervals") or {}
    assert isinstance(intervals, dict)
    lines += [
        f"| {label} | {_fr(metrics.get(key))}{_interval(intervals.get(key))} |" for label, key in QUALITY_ROWS
    ]
    lines += [
        "",
        "## Partenaires et confidentialité dépensée (cette étude, tous les tours et évaluations composés)",
        "",
        "| partenaire | statut | apprentissage (bruité) | test (bruité) | non utilisés (bruité) | ε dépensé"
        " | ε prévu | δ | σ | remarques |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    sites = report["sites"]
    assert isinstance(sites, dict)
    for site, s in sites.items():
        notes = "; ".join([*s["declined"], *s.get("data_errors", []), *s["failures"]])
        counts = [_noisy_count(s["records"].get(c)) for c in RECORD_CELLS]
        lines.append(
            f"| {md_cell(site_name(site))} | {_status(s['status'])} | {' | '.join(counts)}"
            f" | {_fr(s['epsilon'])} | {_fr(s['target_epsilon'])}"
            f" | {s['delta'] or 0:.2e} | {_fr(s['noise_multiplier'])} | {md_cell(notes)} |"
        )
    lines += render_fairness(report)
    lines += render_privacy(report)
    explanations = report.get("explanations")
    if isinstance(explanations, dict) and explanations:
        profile = ", ".join(
            f"{FIELD_FR.get(k, k)} = {md_cell(named(k, v))}"
            for k, v in explanations["reference_profile"].items()
        )
        lines += [
            "",
            "## Ce qui fait varier la chance prédite (modèle seul, aucun enregistrement utilisé)",
            "",
            f"Profil de référence : {profile} → chance prédite"
            f" **{_fr(explanations['reference_probability'])}**.",
            "",
            "| facteur | chance prédite selon la valeur |",
            "|---|---|",
        ]
        for factor in explanations["factors_by_influence"]:
            values = ", ".join(
                f"{md_cell(named(factor, v))} : {_fr(p)}" for v, p in explanations["factors"][factor].items()
            )
            lines.append(f"| {FIELD_FR.get(factor, md_cell(factor))} | {values} |")
    grant = report.get("grant")
    if isinstance(grant, dict):
        lines += [
            "",
            "## Autorisation (grant du tiers de confiance)",
            "",
            f"Finalité {md_cell(grant['purpose'])}, empreinte de la politique"
            f" {md_cell(grant['policy_digest'])}.",
            f"Champs autorisés : {', '.join(md_cell(f) for f in grant['fields'])}.",
        ]
    audit = report.get("audit")
    if isinstance(audit, dict):
        verdict = "**vérifié**" if audit["verified"] else "**ÉCHEC**"
        lines += [
            "",
            "## Audit",
            "",
            f"{md_cell(audit['export'])} : {verdict} par la vérification hors ligne de l'auditeur.",
        ]
        lines += [f"- {md_cell(p)}" for p in audit["problems"]]
    lines += release_markdown(report)  # autodiag: whether the fairness gate passed, with the numbers
    lines += ["", "## Glossaire", ""]
    lines += [f"- **{term}** : {text}" for term, text in GLOSSARY.items()]
    return "\n".join(lines) + "\n"
