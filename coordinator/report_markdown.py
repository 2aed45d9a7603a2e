"""`report.md` of a model study, in French for a Region data officer (like the audit report).

It says when the data are synthetic, explains its measures in a short glossary, puts names beside
codes (zone d'emploi 0053 = Avignon, ROME M1607 = its label, site ids = the partners' names), and every
text that came from elsewhere (a node's reason, a code) is escaped so that it cannot break a table.
Sections are lists of rows (`QUALITY_ROWS`, `GLOSSARY`): a new measure is one more row.
"""

from __future__ import annotations

import math
from functools import lru_cache

from autodiag.release import release_markdown
from tasks import reference
from tasks.metrics import RECORD_CELLS

from .study_folder import section


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "—" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


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
    sites = section(report.get("sites")).values()
    target = max((section(s).get("target_epsilon") or 0.0 for s in sites), default=0.0)
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
