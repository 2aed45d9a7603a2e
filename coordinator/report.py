"""The study folder: final model, `report.json` (for machines and auditors), `report.md` (for people)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from autodiag.release import release_markdown
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
        state = "trained" if record.rounds_trained else "declined" if record.declined else "failed"
        sites[site] = {
            "status": state,
            "epsilon": record.epsilon,
            "target_epsilon": record.target_epsilon,
            "delta": record.delta,
            "examples": record.examples,
            "noise_multiplier": record.noise_multiplier,
            "rounds_trained": record.rounds_trained,
            "declined": record.declined,
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
        "## Model quality (federated evaluation on each site's holdout)",
        "",
        "| accuracy | AUC | log-loss |",
        "|---|---|---|",
        f"| {_fmt(metrics['accuracy'])} | {_fmt(metrics['auc'])} | {_fmt(metrics['log_loss'])} |",
        "",
        "## Sites and privacy spent (this study, all rounds composed)",
        "",
        "| site | status | records read | opt-outs applied | examples | ε spent | ε target | δ | σ | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    sites = report["sites"]
    assert isinstance(sites, dict)
    for site, s in sites.items():
        notes = "; ".join([*s["declined"], *s["failures"]]) or ""
        counts = s["counts"] or {}
        lines.append(
            f"| {site} | {s['status']} | {counts.get('records_loaded', '—')}"
            f" | {counts.get('opt_outs_applied', '—')} | {s['examples']}"
            f" | {_fmt(s['epsilon'])} | {_fmt(s['target_epsilon'])}"
            f" | {s['delta'] or 0:.2e} | {_fmt(s['noise_multiplier'])} | {notes} |"
        )
    fairness = report["fairness"]
    assert isinstance(fairness, dict)
    if fairness:
        lines += ["", "## Fairness (pooled holdouts; groups under 11 records suppressed)", ""]
        for attribute, f in fairness.items():
            lines.append(
                f"- **{attribute}**: demographic-parity gap {_fmt(f['demographic_parity_gap'])}, "
                f"equal-opportunity gap {_fmt(f['equal_opportunity_gap'])}, "
                f"observed-outcome gap {_fmt(f['observed_outcome_gap'])}"
                + (f" (suppressed: {', '.join(f['suppressed_groups'])})" if f["suppressed_groups"] else "")
            )
            lines.append("")
            lines.append("  | group | n | selection rate | true-positive rate | observed rate |")
            lines.append("  |---|---|---|---|---|")
            for group, r in f["groups"].items():
                lines.append(
                    f"  | {group} | {int(r['n'])} | {_fmt(r['selection_rate'])} | "
                    f"{_fmt(r['true_positive_rate'])} | {_fmt(r['observed_rate'])} |"
                )
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
    lines += release_markdown(report)  # autodiag: whether the fairness gate passed, with the numbers
    return "\n".join(lines) + "\n"
