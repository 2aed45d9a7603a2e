"""What the coordinator adds to a study report for the autodiagnostic service (one call each):

- ``study_section``: the pooled calibration counts (how many holdout people of each score bin found
  a job — the service's uncertainty on a person's chance) and the fairness gate's verdict;
- ``release_markdown``: the lines of ``report.md`` that say whether the gate passed, with the numbers.

The calibration counts are the histograms the nodes already release for the pooled AUC, summed over
sites for the final round: no new release, no new privacy cost.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from contracts.study_report import rows
from policies.loader import PolicyLoadError

from .gate import UnknownPurposeError, check_release, purpose_for
from .study import RELEASE_KEY, parse_report


def study_section(
    report: Mapping[str, object], roc_by_round: Mapping[int, Mapping[str, object]]
) -> dict[str, object]:
    """The ``release`` section of ``report.json``; empty when no purpose publishes this task's model."""
    section: dict[str, object] = {}
    if roc_by_round:
        pooled = _pool(roc_by_round[max(roc_by_round)])
        if pooled is not None:
            section["calibration"] = {"positive": pooled[0], "negative": pooled[1]}
    typed = parse_report(report)
    try:
        purpose = purpose_for(typed)
    except UnknownPurposeError:
        return section
    except PolicyLoadError as exc:  # the study's report must still be written: say why there is no verdict
        section["fairness_gate"] = {"passed": False, "error": str(exc)}
        return section
    section["fairness_gate"] = check_release(typed, purpose).to_dict()
    return section


def _pool(per_site: Mapping[str, object]) -> tuple[list[float], list[float]] | None:
    """Sum each site's (positive, negative) histogram; None when the shapes do not agree."""
    positives: list[np.ndarray] = []
    negatives: list[np.ndarray] = []
    for histograms in per_site.values():
        # (positive, negative) arrays today; anything else (a future noisy shape) → no table
        pair = rows(histograms)
        if len(pair) != 2:
            return None
        try:
            positives.append(np.asarray(pair[0], dtype=np.float64))
            negatives.append(np.asarray(pair[1], dtype=np.float64))
        except (TypeError, ValueError):
            return None
    if not positives or len({p.shape for p in positives + negatives}) != 1:
        return None
    return np.sum(positives, axis=0).tolist(), np.sum(negatives, axis=0).tolist()


def release_markdown(report: Mapping[str, object]) -> list[str]:
    """The report's "Porte d'équité" section (French), or nothing when the task is not published."""
    release = report.get(RELEASE_KEY)
    gate = release.get("fairness_gate") if isinstance(release, dict) else None
    if not isinstance(gate, dict):
        return []
    if gate.get("error"):
        return ["", "## Porte d'équité avant publication", "", f"Pas de verdict : {gate['error']}."]
    verdict = "**passée**" if gate.get("passed") else "**refusée**"
    lines = [
        "",
        "## Porte d'équité avant publication (service d'autodiagnostic)",
        "",
        f"Finalité `{gate.get('purpose')}` : porte {verdict}"
        + ("" if gate.get("passed") else " — le service refusera de démarrer sur ce modèle")
        + ".",
        "",
        "| règle | attribut | résultat | détail |",
        "|---|---|---|---|",
    ]
    for check in gate.get("checks") or ():
        ok = "passé" if check.get("passed") else "refusé"
        lines.append(f"| {check.get('rule')} | {check.get('attribute')} | {ok} | {check.get('message')} |")
    return lines
