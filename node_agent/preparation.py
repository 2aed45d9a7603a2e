"""From the validated raw table to the analysis view, in the order the design fixes:
pseudonymize and generalize → scrub free text → keep only records the purpose may use.

No feature is computed before this has run; the raw identifiers never leave this function.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from tasks.registry import TaskSpec

from .declined import NodeDeclined
from .gate import StudyGate, StudyTerms
from .settings import NodeSettings

LINKAGE = "linkage_pseudonym"


def analysis_view(
    spec: TaskSpec,
    raw: pd.DataFrame,
    *,
    settings: NodeSettings,
    study_id: str,
    gate: StudyGate,
    terms: StudyTerms,
) -> tuple[pd.DataFrame, dict[str, object]]:
    """The records this study may learn from, and the counts the node reports."""
    counts: dict[str, object] = {"records_loaded": len(raw)}
    if not spec.personal_identifiers:
        return raw, counts
    from anonymization import anonymize_parcours  # spaCy/Presidio load only where personal data is

    # Only granted fields are produced; free text the study does not use is dropped unread, and
    # the French scrubber (spaCy) is loaded by the anonymization layer only when text is granted.
    frame, report = anonymize_parcours(
        raw,
        source=f"{settings.site}/{spec.file_name}",
        linkage_key=_linkage_key(settings),
        study_id=study_id,
        fields=[*terms.fields, LINKAGE] if terms.fields else None,
    )
    detail = report.to_dict()
    _write_local_report(settings, study_id, detail)
    counts["anonymization"] = counts_only(detail)
    frame, filtered = apply_legal_basis(frame, gate, terms)
    counts.update(filtered)
    return frame, counts


def counts_only(detail: object) -> object:
    """What may leave the node: numbers. Row numbers and file names stay in the local report."""
    if isinstance(detail, dict):
        kept = {k: counts_only(v) for k, v in detail.items() if not isinstance(v, list | str)}
        return {k: v for k, v in kept.items() if v != {}}
    return detail


def _write_local_report(settings: NodeSettings, study_id: str, detail: dict[str, object]) -> None:
    """The partner's own record of what was pseudonymized, rejected (with row numbers) and scrubbed."""
    folder = settings.data_dir / "node-reports"
    folder.mkdir(exist_ok=True)
    (folder / f"{study_id}.anonymization.json").write_text(json.dumps(detail, indent=2, default=str), "utf-8")


def apply_legal_basis(
    frame: pd.DataFrame, gate: StudyGate, terms: StudyTerms
) -> tuple[pd.DataFrame, dict[str, object]]:
    """Keep the records the purpose's legal basis allows (see `usable`)."""
    keep, counts = usable(frame[LINKAGE].astype(str).to_numpy(), gate, terms)
    return frame[keep], counts


def usable(keys: np.ndarray, gate: StudyGate, terms: StudyTerms) -> tuple[np.ndarray, dict[str, object]]:
    """Opt-out (art. 21) for public-interest purposes, opt-in (art. 6-1-a) for consent-based ones,
    from the broker's registries as they stand now: re-read every round, so a withdrawal or an
    objection applies from the next round on."""
    allowed = gate.consented(terms)
    if allowed is not None:
        keep = np.isin(keys, list(allowed))
        return keep, {"without_consent_excluded": int((~keep).sum())}
    keep = ~np.isin(keys, list(gate.excluded(terms) or ()))
    return keep, {"opt_outs_applied": int((~keep).sum())}


def _linkage_key(settings: NodeSettings):  # type: ignore[no-untyped-def]
    from anonymization.keys import load_linkage_key

    if settings.keys_dir is None:
        raise NodeDeclined(
            "node.keys", "no keys folder configured: the linkage key is needed to pseudonymize"
        )
    return load_linkage_key(settings.keys_dir / "linkage.key")
