"""The study folder: final model, `report.json` (for machines and auditors), `report.md` (for people).

The report's sections are built here from the journal of DP releases (quality, sites, privacy);
``coordinator.report_markdown`` renders them in French for people, ``coordinator.study_folder``
writes both files under the JSON rules every study shares.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tasks.metrics import RECORD_CELLS
from tasks.noisy import NoisyValue

from .journal import SiteRecord, StudyJournal
from .report_markdown import render_markdown
from .study_config import StudyConfig
from .study_folder import read_report, write_report


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
    curves = {s: site_rdp(r) for s, r in trained.items()}
    worst = several_sites_epsilon(list(trained.values()), list(curves.values()))
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
                f"{a}+{b}": several_sites_epsilon([trained[a], trained[b]], [curves[a], curves[b]])
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


def site_rdp(record: SiteRecord) -> np.ndarray | None:
    """The RDP curve (Opacus' default orders) of every mechanism of one site in this study — its
    DP-SGD rounds and its evaluation —, None if it ran none. Computed once per site: curves of
    several sites add up (RDP composes additively per order), so the report's n(n-1)/2 pairs cost
    additions, not n² accountants (at 100 sites they took tens of minutes that way; issue 17)."""
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis.rdp import compute_rdp

    orders = RDPAccountant.DEFAULT_ALPHAS
    curves = []
    if record.noise_multiplier > 0 and record.steps_per_round > 0:
        steps = record.steps_per_round * len(record.rounds_trained)
        curves.append(
            compute_rdp(
                q=record.sample_rate, noise_multiplier=record.noise_multiplier, steps=steps, orders=orders
            )
        )
    release = record.evaluation
    if release is not None and release.noise_std > 0:
        sigma = release.noise_std / release.layout.l2_sensitivity
        curves.append(compute_rdp(q=1.0, noise_multiplier=sigma, steps=release.evaluation, orders=orders))
    return np.sum(curves, axis=0) if curves else None


def several_sites_epsilon(records: list[SiteRecord], curves: list[np.ndarray | None] | None = None) -> float:
    """ε of one person present at every one of these sites: the composition of all their mechanisms
    (RDP, Opacus' analysis as the ledger uses it), converted at the sum of the sites' δ; NaN when
    they ran none. ``curves``: the records' :func:`site_rdp`, when already computed."""
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis.rdp import get_privacy_spent

    ran = [c for c in (curves if curves is not None else [site_rdp(r) for r in records]) if c is not None]
    if not ran:
        return float("nan")
    epsilon, _ = get_privacy_spent(
        orders=RDPAccountant.DEFAULT_ALPHAS, rdp=np.sum(ran, axis=0), delta=sum(r.delta for r in records)
    )
    return float(epsilon)


def write_study_folder(folder: Path, report: dict[str, object], model: torch.nn.Module | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if model is not None:
        torch.save({"state_dict": model.state_dict(), "features": report["features"]}, folder / "model.pt")
        report["model"] = "model.pt"
    write_report(folder, report, render_markdown(report))


def amend_report(folder: Path, extra: dict[str, object]) -> dict[str, object]:
    """Add sections known only after the study (the grant, the audit check) and re-render."""
    report = read_report(folder)
    report.update(extra)
    write_report(folder, report, render_markdown(report))
    return report
