"""From the validated raw table to the analysis view, in the order the design fixes:
pseudonymize and generalize → scrub free text → keep only records the purpose may use.

No feature is computed before this has run; the raw identifiers never leave this function.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tasks.registry import TaskSpec

from .declined import NodeDeclined
from .gate import StudyGate, StudyTerms
from .settings import NodeSettings

if TYPE_CHECKING:
    from anonymization.keys import LinkageKey

LINKAGE = "linkage_pseudonym"
STUDY_PSEUDONYM = "study_pseudonym"
#: Share of a site's people held out for evaluation.
HOLDOUT_SHARE = 0.2
HOLDOUT_KDF_SALT = b"r2dde-holdout-v1"


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
    frame, counts = anonymized_view(spec, raw, settings=settings, study_id=study_id, terms=terms)
    return with_legal_basis(spec, frame, counts, gate, terms)


def anonymized_view(
    spec: TaskSpec, raw: pd.DataFrame, *, settings: NodeSettings, study_id: str, terms: StudyTerms
) -> tuple[pd.DataFrame, dict[str, object]]:
    """Pseudonymized, generalized, scrubbed: the same for every message of a study while the data
    and the grant are (what ``table_cache`` keeps); the legal basis is applied after, each time."""
    counts: dict[str, object] = {"records_loaded": len(raw)}
    if not spec.personal_identifiers:
        return raw, counts
    from anonymization import anonymize_parcours  # spaCy/Presidio load only where personal data is

    # Only granted fields are produced; free text the study does not use is dropped unread, and
    # the French scrubber (spaCy) is loaded by the anonymization layer only when text is granted.
    frame, report = anonymize_parcours(
        raw,
        source=f"{settings.site}/{spec.file_name}",
        linkage_key=site_linkage_key(settings),
        study_id=study_id,
        fields=[*terms.fields, LINKAGE] if terms.fields else None,
    )
    detail = report.to_dict()
    _write_local_report(settings, study_id, detail)
    counts["anonymization"] = counts_only(detail)
    return frame, counts


def with_legal_basis(
    spec: TaskSpec, frame: pd.DataFrame, counts: dict[str, object], gate: StudyGate, terms: StudyTerms
) -> tuple[pd.DataFrame, dict[str, object]]:
    """The anonymized view filtered by the purpose's legal basis (public data: nobody to filter)."""
    if not spec.personal_identifiers:
        return frame, counts
    frame, filtered = apply_legal_basis(frame, gate, terms)
    return frame, {**counts, **filtered}


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


def site_linkage_key(settings: NodeSettings) -> LinkageKey:
    from anonymization.keys import load_linkage_key

    if settings.keys_dir is None:
        raise NodeDeclined(
            "node.keys", "no keys folder configured: the linkage key is needed to pseudonymize"
        )
    return load_linkage_key(settings.keys_dir / "linkage.key")


def holdout_membership(
    frame: pd.DataFrame, *, settings: NodeSettings, study_id: str, share: float = HOLDOUT_SHARE
) -> np.ndarray:
    """Which records are held out: a property of the *person*, not of the table (issue 10, item 5).

    A person is in the holdout when HMAC-SHA256(k, study pseudonym), read as a number in [0, 1), is
    under ``share``, with k = HKDF-SHA256(linkage key, salt "r2dde-holdout-v1", info = study id):
    the same in every process and at every round, unchanged when other people opt out or the file
    is re-ordered, unknown to anyone without the node-shared linkage key, and different per study.
    (A split that follows the filtered table moved 43 of 180 holdout records into training after
    one opt-out in deployment, where each message re-reads the table.)

    Public benchmark data has no person to pseudonymize: a permutation seeded by (study, site).
    """
    if STUDY_PSEUDONYM not in frame:
        seed = int.from_bytes(hashlib.sha256(f"{study_id}|{settings.site}".encode()).digest()[:4], "big")
        order = np.random.default_rng(seed).permutation(len(frame))
        held = np.zeros(len(frame), dtype=bool)
        held[order[: int(round(len(frame) * share))]] = True
        return held
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.hmac import HMAC
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    secret = site_linkage_key(settings).secret
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=HOLDOUT_KDF_SALT, info=study_id.encode()).derive(
        secret
    )
    keyed = HMAC(key, hashes.SHA256())

    def draw(pseudonym: str) -> float:
        mac = keyed.copy()
        mac.update(pseudonym.encode("ascii"))
        return int.from_bytes(mac.finalize()[:8], "big") / 2.0**64

    return np.fromiter((draw(str(p)) < share for p in frame[STUDY_PSEUDONYM]), dtype=bool, count=len(frame))
