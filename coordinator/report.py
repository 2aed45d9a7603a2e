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
from pathlib import Path

import torch

from tasks import reference
from tasks.metrics import fairness_gaps

from .journal import StudyJournal
from .study_config import StudyConfig


def build_report(
    config: StudyConfig,
    journal: StudyJournal,
    *,
    status: str,
    reason: str,
    rounds_completed: int,
    round_metrics: dict[int, dict[str, float]],
    wall_seconds: float,
    feature_names: list[str],
    explanations: dict[str, object] | None = None,
    min_cell: int = 11,
) -> dict[str, object]:
    final = round_metrics[max(round_metrics)] if round_metrics else {}
    sites = {}
    for site, record in sorted(journal.sites.items()):
        sites[site] = {
            "status": record.status,
            "epsilon": record.epsilon,
            "target_epsilon": record.target_epsilon,
            "delta": record.delta,
            "examples": record.examples,
            "noise_multiplier": record.noise_multiplier,
            "rounds_trained": record.rounds_trained,
            "declined": record.declined,
            "data_errors": record.data_errors,
            "failures": record.failures,
            "counts": record.counts,
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
        "metrics": {k: final.get(k, float("nan")) for k in ("accuracy", "auc", "log_loss")},
        "metrics_by_round": {str(r): m for r, m in sorted(round_metrics.items())},
        "sites": sites,
        "fairness": {a: fairness_gaps(g, min_cell) for a, g in journal.pooled_fairness().items()},
        "explanations": explanations or {},
        "rounds_detail": {str(r): d for r, d in sorted(journal.rounds.items())},
        "features": feature_names,
        "privacy": {
            "unit": "one person's record in one partner's dataset",
            "accountant": "RDP (Opacus), composed over all rounds of the study",
            "evaluation_metrics": (
                "each site's holdout: accuracy, log-loss, per-group counts and a 50-bin score histogram"
                " (pooled AUC), released as aggregates without DP noise"
            ),
        },
    }


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


def site_name(site: str) -> str:
    """``apec`` → ``APEC — Centre Provence-Alpes-Côte d'Azur (apec)``, from the partners' policy documents."""
    try:
        from policies.loader import load_site_policies

        label = load_site_policies()[site].label
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
        "## Qualité du modèle (évaluation fédérée sur l'échantillon de test de chaque partenaire)",
        "",
        "| mesure | valeur |",
        "|---|---|",
    ]
    lines += [f"| {label} | {_fr(metrics.get(key))} |" for label, key in QUALITY_ROWS]
    lines += [
        "",
        "## Partenaires et confidentialité dépensée (cette étude, tous les tours composés)",
        "",
        "| partenaire | statut | enregistrements lus | oppositions appliquées | exemples | ε dépensé"
        " | ε prévu | δ | σ | remarques |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    sites = report["sites"]
    assert isinstance(sites, dict)
    for site, s in sites.items():
        notes = "; ".join([*s["declined"], *s.get("data_errors", []), *s["failures"]])
        counts = s["counts"] or {}
        lines.append(
            f"| {md_cell(site_name(site))} | {_status(s['status'])} | {counts.get('records_loaded', '—')}"
            f" | {counts.get('opt_outs_applied', '—')} | {s['examples']}"
            f" | {_fr(s['epsilon'])} | {_fr(s['target_epsilon'])}"
            f" | {s['delta'] or 0:.2e} | {_fr(s['noise_multiplier'])} | {md_cell(notes)} |"
        )
    fairness = report["fairness"]
    assert isinstance(fairness, dict)
    if fairness:
        lines += [
            "",
            "## Équité (échantillons de test réunis ; groupes de moins de 11 personnes masqués)",
            "",
        ]
        for attribute, f in fairness.items():
            suppressed = ", ".join(md_cell(g) for g in f["suppressed_groups"])
            lines.append(
                f"- **{FIELD_FR.get(attribute, attribute)}** : écart de parité démographique"
                f" {_fr(f['demographic_parity_gap'])}, écart d'égalité des chances"
                f" {_fr(f['equal_opportunity_gap'])}, écart des issues observées"
                f" {_fr(f['observed_outcome_gap'])}" + (f" (masqués : {suppressed})" if suppressed else "")
            )
            lines.append("")
            lines.append(
                "  | groupe | effectif | taux de sélection | taux de vrais positifs | taux observé |"
            )
            lines.append("  |---|---|---|---|---|")
            for group, r in f["groups"].items():
                lines.append(
                    f"  | {md_cell(group)} | {int(r['n'])} | {_fr(r['selection_rate'])} | "
                    f"{_fr(r['true_positive_rate'])} | {_fr(r['observed_rate'])} |"
                )
            lines.append("")
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
    lines += ["", "## Glossaire", ""]
    lines += [f"- **{term}** : {text}" for term, text in GLOSSARY.items()]
    return "\n".join(lines) + "\n"
