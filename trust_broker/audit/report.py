"""A readable audit report: each site's composed ε over time against its cap (Markdown + PNG).

Built from a ``VerificationReport`` so the figures show what the auditor recomputed, next to what the
broker recorded; the problems found are listed with their lines. Only account keys, counts and ε
appear: an export holds no identifiers and neither does its report.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: an auditor's machine needs no display
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from trust_broker.audit.recompute import FLOAT_TOLERANCE  # noqa: E402
from trust_broker.audit.verify import AccountCheck, VerificationReport  # noqa: E402
from trust_broker.ledger.account import AccountKey  # noqa: E402


def _when(at: str) -> dt.datetime:
    return dt.datetime.fromisoformat(at.replace("Z", "+00:00"))


def _instants(ats: list[str]) -> np.ndarray:
    """Timestamps as numpy datetimes in UTC, the form matplotlib plots and its stubs accept."""
    naive = [_when(at).astimezone(dt.UTC).replace(tzinfo=None) for at in ats]
    return np.array(naive, dtype="datetime64[us]")


def plot_site(site: str, accounts: dict[AccountKey, AccountCheck], path: Path) -> Path:
    """One PNG: a step curve of ε per (dataset, period) account, the auditor's points, the caps."""
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    for index, (key, account) in enumerate(sorted(accounts.items())):
        color = f"C{index % 10}"
        times = _instants([point.at for point in account.points])
        ax.step(
            times,
            [point.epsilon_recorded for point in account.points],
            where="post",
            color=color,
            label=f"{key.dataset} {key.period} : ε enregistré par le tiers",
        )
        ax.plot(
            times,
            [point.epsilon_recomputed for point in account.points],
            "o",
            color=color,
            markersize=3,
            label=f"{key.dataset} {key.period} : ε recalculé (dp-accounting)",
        )
        ax.step(
            times,
            [point.cap for point in account.points],
            where="post",
            color=color,
            linestyle="--",
            linewidth=1,
            label=f"{key.dataset} {key.period} : plafond",
        )
        over = [
            point
            for point in account.points
            if max(point.epsilon_recorded, point.epsilon_recomputed) > point.cap
        ]
        if over:
            ax.plot(
                _instants([point.at for point in over]),
                [max(point.epsilon_recorded, point.epsilon_recomputed) for point in over],
                "x",
                color="red",
                markersize=9,
                label=f"{key.dataset} {key.period} : dépassement",
            )
    ax.set_title(f"Budget de confidentialité — {site}")
    ax.set_ylabel("ε composé")
    top = max((point.cap for account in accounts.values() for point in account.points), default=1.0)
    peak = max(
        (point.epsilon_recomputed for account in accounts.values() for point in account.points), default=0.0
    )
    ax.set_ylim(0, 1.3 * max(top, peak))  # room above the cap for the legend
    # matplotlib.dates ships without annotations for its locators and formatters.
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(mdates.AutoDateLocator()))  # type: ignore[no-untyped-call]
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: VerificationReport, figures: dict[str, str]) -> str:
    status = "✅ intègre" if report.ok else f"❌ {len(report.problems)} problème(s)"
    lines = [
        "# Rapport d'audit du tiers de confiance",
        "",
        f"- Export : `{Path(report.path).name}`",
        f"- Événements : {report.events} ; têtes signées : {report.heads}",
        f"- Vérification : {status}",
        "- ε recalculé indépendamment avec dp-accounting (RDP) ; seule tolérance : l'arrondi "
        f"(relatif {FLOAT_TOLERANCE:g}), aucune marge au-dessus d'un plafond",
        "",
        "## Comptes de budget (site, jeu de données, période)",
        "",
        "| site | jeu | période | plafond ε | δ | ε enregistré | ε recalculé | état |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for key, account in sorted(report.accounts.items()):
        state = "dépassement" if account.overspent else "dans le plafond"
        lines.append(
            f"| {key.site} | {key.dataset} | {key.period} | {account.cap:g} | {account.delta:.2g} | "
            f"{account.epsilon_recorded:.4f} | {account.epsilon_recomputed:.4f} | {state} |"
        )
    if report.problems:
        lines += ["", "## Problèmes", "", "| ligne | seq | règle | détail |", "|---:|---:|---|---|"]
        for problem in report.problems:
            seq = "" if problem.seq is None else str(problem.seq)
            lines.append(f"| {problem.line} | {seq} | `{problem.rule}` | {_cell(problem.detail)} |")
    for site, figure in sorted(figures.items()):
        lines += ["", f"## {site}", "", f"![ε composé au fil du temps — {site}]({figure})"]
    return "\n".join(lines) + "\n"


def write_report(report: VerificationReport, out: Path | str) -> Path:
    """Write ``report.md`` and one ``budget_<site>.png`` per site into ``out``; return the Markdown path."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    by_site: dict[str, dict[AccountKey, AccountCheck]] = defaultdict(dict)
    for key, account in report.accounts.items():
        by_site[key.site][key] = account
    figures = {}
    for site, accounts in by_site.items():
        name = f"budget_{site}.png"
        plot_site(site, accounts, folder / name)
        figures[site] = name
    markdown = folder / "report.md"
    markdown.write_text(render_markdown(report, figures), encoding="utf-8")
    return markdown
