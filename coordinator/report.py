"""The study folder: final model, `report.json` (for machines and auditors), `report.md` (for people)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

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
        state = "trained" if record.rounds_trained else "declined" if record.declined else "failed"
        sites[site] = {
            "status": state,
            "epsilon": record.epsilon,
            "target_epsilon": record.target_epsilon,
            "delta": record.delta,
            "noise_multiplier": record.noise_multiplier,
            "rounds_trained": record.rounds_trained,
            "declined": record.declined,
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


def _interval(pair: object) -> str:
    if not isinstance(pair, list | tuple) or None in pair:
        return ""
    return f" [{_fmt(pair[0])}, {_fmt(pair[1])}]"


def _noisy_count(cell: object) -> str:
    if not isinstance(cell, dict):
        return "suppressed"
    low, high = cell["interval"]
    return f"≈{cell['value']} [{low}, {high}]"


def render_quality(report: dict[str, object]) -> list[str]:
    """Pooled holdout metrics, noisy, each with its 95 % interval (DP noise only)."""
    metrics, intervals = report["metrics"], report.get("metrics_intervals") or {}
    assert isinstance(metrics, dict) and isinstance(intervals, dict)
    return [
        "## Model quality (pooled holdouts, from each site's DP release; 95 % intervals for the noise)",
        "",
        "| accuracy | AUC | log-loss | positive rate |",
        "|---|---|---|---|",
        "| " + " | ".join(f"{_fmt(metrics.get(k))}{_interval(intervals.get(k))}" for k in QUALITY) + " |",
    ]


def render_fairness(report: dict[str, object]) -> list[str]:
    """Group rates and gaps from the pooled noisy cells, with their 95 % intervals."""
    fairness = report["fairness"]
    assert isinstance(fairness, dict)
    if not fairness:
        return []
    lines = ["", "## Fairness (pooled holdouts; groups under the small-cell size suppressed at the node)", ""]
    for attribute, f in fairness.items():
        gaps = f.get("gap_intervals", {})
        suppressed = [*f["suppressed_groups"], *f.get("suppressed_at_sites", [])]
        shown = ", ".join(
            f"{label} gap {_fmt(f[key])}{_interval(gaps.get(key))}"
            for label, key in (
                ("demographic-parity", "demographic_parity_gap"),
                ("equal-opportunity", "equal_opportunity_gap"),
                ("observed-outcome", "observed_outcome_gap"),
            )
        )
        lines.append(
            f"- **{attribute}**: {shown}" + (f" (suppressed: {', '.join(suppressed)})" if suppressed else "")
        )
        lines += [
            "",
            "  | group | n | selection rate | true-positive rate | observed rate |",
            "  |---|---|---|---|---|",
        ]
        for group, r in f["groups"].items():
            within = r.get("intervals", {})
            lines.append(
                f"  | {group} | ≈{_fmt(r['n'], 0)} | "
                + " | ".join(
                    f"{_fmt(r[k])}{_interval(within.get(k))}"
                    for k in ("selection_rate", "true_positive_rate", "observed_rate")
                )
                + " |"
            )
    return lines


def render_privacy(report: dict[str, object]) -> list[str]:
    """The unit of privacy and the worst case of a person present at several sites."""
    privacy = report.get("privacy")
    if not isinstance(privacy, dict) or "several_sites" not in privacy:
        return []
    return [
        "",
        "## Unit of privacy",
        "",
        f"- Unit: {privacy['unit']}.",
        f"- Evaluations: {privacy['evaluation_metrics']}.",
        f"- Several sites: {privacy['several_sites']['statement']}.",
    ]


def render_markdown(report: dict[str, object]) -> str:
    metrics = report["metrics"]
    assert isinstance(metrics, dict)
    lines = [
        f"# Study {report['study_id']} — {report['task']}",
        "",
        f"Status: **{report['status']}**" + (f" ({report['reason']})" if report["reason"] else ""),
        f"Rounds: {report['rounds']} of {report['rounds_planned']} · strategy {report['strategy']}"
        f" · wall time {_fmt(report['wall_seconds'], 1)} s",
        "",
        *render_quality(report),
        "",
        "## Sites and privacy spent (this study, all rounds and evaluations composed)",
        "",
        "| site | status | trained on | held out | not used | ε spent | ε target | δ | σ | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    sites = report["sites"]
    assert isinstance(sites, dict)
    for site, s in sites.items():
        notes = "; ".join([*s["declined"], *s["failures"]]) or ""
        counts = [_noisy_count(s["records"].get(c)) for c in RECORD_CELLS]
        lines.append(
            f"| {site} | {s['status']} | {' | '.join(counts)}"
            f" | {_fmt(s['epsilon'])} | {_fmt(s['target_epsilon'])}"
            f" | {s['delta'] or 0:.2e} | {_fmt(s['noise_multiplier'])} | {notes} |"
        )
    lines += render_fairness(report)
    lines += render_privacy(report)
    explanations = report.get("explanations")
    if isinstance(explanations, dict) and explanations:
        profile = ", ".join(f"{k}={v}" for k, v in explanations["reference_profile"].items())
        lines += [
            "",
            "## What changes the predicted chance (model only, no record used)",
            "",
            f"Reference profile: {profile} → predicted chance"
            f" **{_fmt(explanations['reference_probability'])}**.",
            "",
            "| factor | predicted chance by value |",
            "|---|---|",
        ]
        for factor in explanations["factors_by_influence"]:
            values = ", ".join(f"{v}: {_fmt(p)}" for v, p in explanations["factors"][factor].items())
            lines.append(f"| {factor} | {values} |")
    grant = report.get("grant")
    if isinstance(grant, dict):
        lines += [
            "",
            "## Grant",
            "",
            f"Purpose `{grant['purpose']}`, policy digest `{grant['policy_digest']}`.",
            f"Fields granted: {', '.join(grant['fields'])}.",
        ]
    audit = report.get("audit")
    if isinstance(audit, dict):
        verdict = "**verified**" if audit["verified"] else "**FAILED**"
        lines += ["", "## Audit", "", f"`{audit['export']}` {verdict} by the offline auditor check."]
        lines += [f"- {p}" for p in audit["problems"]]
    return "\n".join(lines) + "\n"
