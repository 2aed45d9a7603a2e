"""The study folder of an analytics study: report.json, report.md (in French) and plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tasks import keysets

from .analytics import SUPPRESSION_Z
from .study_folder import number, rows, section, write_report

#: A released cell as the report holds it (JSON: measure, group, value, interval, suppressed).
Cell = dict[str, Any]

MAX_PLOTTED = 30


def _label(group: dict[str, str]) -> str:
    parts = []
    for field, value in group.items():
        key_set = keysets.key_set_of(field)
        parts.append(key_set.label(value) if key_set else value)
    return " × ".join(parts) or "ensemble"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * float(value):.1f} %"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{float(value):,.1f}".replace(",", " ")


def _points(value: float | None) -> str:
    return "—" if value is None else f"{100 * float(value):+.1f} pts"


def _interval(row: Cell) -> str:
    """A value added in percentage points with its interval."""
    return f"{_points(row['value'])} [{_points(row['ci_low'])} ; {_points(row['ci_high'])}]"


def _whole(value: float | None) -> str:
    return "—" if value is None else f"{float(value):,.0f}".replace(",", " ")


def _cells(report: dict[str, object]) -> list[Cell]:
    return [section(r) for r in rows(report.get("cells"))]


def _rows(report: dict[str, object], measure: str, table: str | None = None) -> list[Cell]:
    return [
        r for r in _cells(report) if r["measure"] == measure and (table is None or r.get("table") == table)
    ]


def _plot_intervals(
    cells: list[Cell], title: str, path: Path, percent: bool, zero_line: bool = False
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in cells if not r["suppressed"] and r["value"] is not None][:MAX_PLOTTED]
    if not shown:
        return
    shown.sort(key=lambda r: float(r["value"]))
    scale = 100.0 if percent else 1.0
    values = [scale * float(r["value"]) for r in shown]
    lows = [v - scale * float(r["ci_low"]) for v, r in zip(values, shown, strict=True)]
    highs = [scale * float(r["ci_high"]) - v for v, r in zip(values, shown, strict=True)]
    labels = [_label(r["group"]) for r in shown]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(shown) + 1.4))
    ax.errorbar(values, range(len(shown)), xerr=[lows, highs], fmt="o", capsize=3)
    ax.set_yticks(range(len(shown)), labels, fontsize=8)
    if zero_line:
        ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel(("points de %" if zero_line else "%") if percent else "")
    ax.set_title(f"{title} (intervalles à 95 %)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_epsilon(report: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sites = section(report["sites"])
    fig, ax = plt.subplots(figsize=(5, 2.5))
    ax.bar(list(sites), [float(s["epsilon"] or 0.0) for s in sites.values()])
    ax.axhline(number(report["epsilon_target"]), color="red", linestyle="--", label="ε accordé")
    ax.set_ylabel("ε dépensé")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_query_folder(folder: Path, report: dict[str, object]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    plots: list[str] = []
    _plot_epsilon(report, folder / "epsilon_par_site.png")
    plots.append("epsilon_par_site.png")
    if report["kind"] == "usecase3":
        for measure, title, name, zero in (
            (
                "valeur_ajoutee",
                "Valeur ajoutée par domaine de formation",
                "valeur_ajoutee_par_domaine.png",
                True,
            ),
            ("taux_emploi_6m", "Taux d'emploi à six mois par domaine", "taux_emploi_par_domaine.png", False),
        ):
            _plot_intervals(_rows(report, measure, "training_domain"), title, folder / name, True, zero)
            plots.append(name)
    else:
        measures = {str(r["measure"]) for r in _cells(report)}
        for measure in sorted(measures):
            cells = _rows(report, measure)
            percent = (
                any(r["ci_high"] is not None and float(r["ci_high"]) <= 1.0 for r in cells)
                and "[" in str(measure)
                or str(measure).startswith(("taux", "part"))
            )
            name = f"{str(measure).replace('[', '_').replace(']', '')}.png"
            _plot_intervals(cells, str(measure), folder / name, percent)
            if (folder / name).exists():
                plots.append(name)
    report["plots"] = [p for p in plots if (folder / p).exists()]
    write_report(folder, report, render_markdown(report))


def render_markdown(report: dict[str, object]) -> str:
    sites = section(report["sites"])
    cells = _cells(report)
    lines = []
    if report["kind"] == "usecase3":
        lines += [
            "# Commande publique de formation : où les formations financées mènent à l'emploi",
            "",
            f"Étude `{report['study_id']}` — note aux acheteurs de formation de la Région.",
            "",
            "Ce tableau compare, pour chaque domaine de formation et zone d'emploi, le **taux d'emploi "
            "observé six mois après la sortie** au **taux attendu** compte tenu du profil des stagiaires "
            "(âge, sexe, niveau d'études, durée sans emploi avant la formation), comme l'indicateur de "
            "valeur ajoutée d'InserJeunes. **Valeur ajoutée = observé − attendu** : positive, la formation "
            "fait mieux que ce que le profil de ses stagiaires laissait prévoir.",
            "",
            "Les données ne quittent jamais les partenaires (Carif-Oref, France Travail) : chacun calcule "
            "sa part, y ajoute un bruit gaussien (confidentialité différentielle) et n'envoie que le "
            "résultat bruité. Chaque valeur est donnée avec son intervalle de confiance à 95 % (bruit "
            "compris). Les cellules trop petites ne sont pas publiées.",
            "",
        ]
    else:
        lines += [f"# Requête statistique `{report['study_id']}`", ""]
    lines += [
        "## Confidentialité",
        "",
        "| partenaire | statut | ε dépensé | δ | motif |",
        "|---|---|---|---|---|",
    ]
    for site, info in sites.items():
        delta = "—" if info["delta"] is None else f"{float(info['delta']):.1e}"
        lines.append(
            f"| {site} | {info['status']} | {float(info['epsilon'] or 0):.3f} | {delta} "
            f"| {info['declined'] or ''} |"
        )
    suppressed = [r for r in cells if r["suppressed"]]
    lines += [
        "",
        f"ε accordé par partenaire : {report['epsilon_target']}. Taille minimale de cellule : "
        f"{report['min_cell_size']} personnes ; une cellule n'est publiée que si son effectif bruité, "
        f"diminué de {SUPPRESSION_Z:.2f} écarts-types du bruit".replace(".", ",")
        + ", atteint ce seuil (décision prise sur les seuls comptes "
        f"bruités). Valeurs publiées : {report['released_values']} ; "
        f"masquées : {report['suppressed_values']}.",
        "",
    ]
    if report["kind"] == "usecase3":
        lines += _usecase3_tables(report)
    else:
        lines += _generic_table(cells)
    if suppressed:
        groups = sorted({_label(r["group"]) for r in suppressed})
        lines += [
            "",
            f"## Cellules masquées ({len(groups)})",
            "",
            ", ".join(groups[:80]) + (" …" if len(groups) > 80 else ""),
        ]
    plots = rows(report.get("plots"))
    if plots:
        lines += ["", "## Graphiques", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _generic_table(cells: list[Cell]) -> list[str]:
    lines = ["## Résultats", "", "| cellule | mesure | valeur | IC 95 % |", "|---|---|---|---|"]
    for r in cells:
        if r["suppressed"]:
            continue
        lines.append(
            f"| {_label(r['group'])} | {r['measure']} | {_num(r['value'])} "
            f"| [{_num(r['ci_low'])} ; {_num(r['ci_high'])}] |"
        )
    return lines


def _usecase3_tables(report: dict[str, object]) -> list[str]:
    lines = [
        "## Par domaine de formation (toutes zones)",
        "",
        "| domaine | effectif | taux observé | taux attendu | valeur ajoutée (IC 95 %) |",
        "|---|---|---|---|---|",
    ]
    by_group: dict[tuple[str, str], dict[str, Cell]] = {}
    for r in _cells(report):
        key = (str(r.get("table")), json.dumps(r["group"], sort_keys=True))
        by_group.setdefault(key, {})[str(r["measure"])] = r
    ranked = []
    for (table, group), measures in by_group.items():
        va = measures.get("valeur_ajoutee")
        if va is None or va["suppressed"]:
            continue
        ranked.append((table, json.loads(group), measures))
    ranked.sort(key=lambda item: -float(item[2]["valeur_ajoutee"]["value"] or 0))
    for table, group, m in ranked:
        if table != "training_domain":
            continue
        va = m["valeur_ajoutee"]
        lines.append(
            f"| {_label(group)} | {_whole(m['effectif']['value'])} | {_pct(m['taux_emploi_6m']['value'])} | "
            f"{_pct(m['taux_attendu']['value'])} | {_interval(va)} |"
        )
    for table, title in (
        ("training_domain-zone_emploi", "Par domaine et zone d'emploi"),
        ("provider", "Par organisme de formation (cellules assez grandes)"),
    ):
        rows = [item for item in ranked if item[0] == table]
        durable = table == "provider"  # durable employment is released by provider
        lines += [
            "",
            f"## {title} — {len(rows)} cellules publiées",
            "",
            "| cellule | effectif | observé | attendu | valeur ajoutée (IC 95 %) |"
            + (" emploi durable |" if durable else ""),
            "|---|---|---|---|---|" + ("---|" if durable else ""),
        ]
        for _, group, m in rows:
            line = (
                f"| {_label(group)} | {_whole(m['effectif']['value'])} "
                f"| {_pct(m['taux_emploi_6m']['value'])} | {_pct(m['taux_attendu']['value'])} "
                f"| {_interval(m['valeur_ajoutee'])} |"
            )
            if durable and "taux_emploi_durable" in m:
                line += f" {_pct(m['taux_emploi_durable']['value'])} |"
            lines.append(line)
    lines += [
        "",
        "Lecture : une valeur ajoutée dont l'intervalle exclut zéro distingue la formation de ce que "
        "le profil de ses stagiaires laissait attendre ; un intervalle qui contient zéro ne permet pas "
        "de conclure. "
        "Le taux attendu vient d'un modèle logistique (âge, sexe, niveau d'études, durée sans emploi) ajusté "
        "sur un tableau de profils publié sous confidentialité différentielle par les deux partenaires.",
    ]
    return lines
