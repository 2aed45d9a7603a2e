"""A small typed reader of a completed study folder (``report.json`` + ``model.pt``).

The report is written by the coordinator and its shape moves (issue 10 turns evaluation metrics and
fairness group rates into DP releases with 95 % intervals), so every number is read through
``read_estimate``, which accepts a plain number, a noisy release ``{"value", "noise_std"}`` or an
interval ``{"estimate", "low", "high"}``; the service and the fairness gate only ever see
``Estimate`` values and never index the raw JSON themselves.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contracts.study_report import number, rows, section
from tasks.encoding import TabularEncoder
from tasks.models import mlp
from tasks.registry import get_task

#: The release section the coordinator adds (``autodiag.release.study_section``).
RELEASE_KEY = "release"
Z95 = 1.959964


class StudyFolderError(ValueError):
    """A study folder the service cannot serve; the message is French and says what to fix."""


@dataclass(frozen=True)
class Estimate:
    """A released number, with its 95 % interval when the release was noisy."""

    value: float
    low: float | None = None
    high: float | None = None

    @property
    def known(self) -> bool:
        return math.isfinite(self.value)

    @property
    def noisy(self) -> bool:
        return self.low is not None and self.high is not None


def read_estimate(raw: object) -> Estimate:
    """Any of the shapes a released number takes in ``report.json``; unknown → NaN (never raises)."""
    if isinstance(raw, bool):
        return Estimate(math.nan)
    if isinstance(raw, int | float):
        return Estimate(float(raw))
    if isinstance(raw, Mapping):
        value = number(raw.get("value", raw.get("estimate", raw.get("point"))))
        low, high = number(raw.get("low")), number(raw.get("high"))
        interval = raw.get("interval", raw.get("ci95"))
        if isinstance(interval, list | tuple) and len(interval) == 2:
            low, high = number(interval[0]), number(interval[1])
        std = number(raw.get("noise_std", raw.get("std")))
        if math.isfinite(std) and not (math.isfinite(low) and math.isfinite(high)):
            low, high = value - Z95 * std, value + Z95 * std
        if math.isfinite(low) and math.isfinite(high):
            return Estimate(value, low, high)
        return Estimate(value)
    return Estimate(math.nan)


@dataclass(frozen=True)
class GroupFairness:
    """One protected attribute's gaps as the study released them."""

    attribute: str
    demographic_parity_gap: Estimate
    equal_opportunity_gap: Estimate
    observed_outcome_gap: Estimate
    groups: dict[str, dict[str, Estimate]]
    suppressed: tuple[str, ...]


@dataclass(frozen=True)
class SiteSummary:
    site: str
    status: str
    examples: int | None
    epsilon: float | None
    delta: float | None


@dataclass(frozen=True)
class Calibration:
    """Pooled holdout counts per score bin: how often people given a score found a job."""

    positive: tuple[float, ...]
    negative: tuple[float, ...]

    @property
    def bins(self) -> int:
        return len(self.positive)


@dataclass(frozen=True)
class StudyReport:
    """What the service needs from ``report.json``."""

    study_id: str
    task: str
    status: str
    purpose: str | None
    fields: tuple[str, ...]
    features: tuple[str, ...]
    auc: Estimate
    accuracy: Estimate
    sites: tuple[SiteSummary, ...]
    fairness: dict[str, GroupFairness]
    calibration: Calibration | None
    released_at: datetime | None
    audit_verified: bool | None
    raw: Mapping[str, object] = field(repr=False, compare=False)

    @property
    def holdout_records(self) -> int:
        if self.calibration is None:
            return 0
        return int(sum(self.calibration.positive) + sum(self.calibration.negative))


def read_report(folder: Path) -> StudyReport:
    """Parse ``folder/report.json``; a missing or malformed file is a French ``StudyFolderError``."""
    path = folder / "report.json"
    if not folder.is_dir():
        raise StudyFolderError(f"le dossier d'étude « {folder} » n'existe pas")
    if not path.is_file():
        raise StudyFolderError(
            f"le dossier « {folder} » ne contient pas de rapport d'étude (report.json) : "
            "indiquez le dossier écrit par une étude terminée (par exemple runs/demo)"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StudyFolderError(f"le rapport « {path} » est illisible ({type(exc).__name__})") from exc
    if not isinstance(raw, dict):
        raise StudyFolderError(f"le rapport « {path} » n'est pas un objet JSON")
    return parse_report(raw, path)


def parse_report(raw: Mapping[str, object], path: Path | None = None) -> StudyReport:
    """The typed view of a report dict (also used by the coordinator before the file exists)."""
    grant = section(raw.get("grant"))
    fairness = {}
    for attribute, f in section(raw.get("fairness")).items():
        if not isinstance(f, dict):
            continue
        groups = {
            str(g): {k: read_estimate(v) for k, v in r.items()}
            for g, r in section(f.get("groups")).items()
            if isinstance(r, dict)
        }
        intervals = section(f.get("gap_intervals"))

        def gap(key: str, f: dict[str, Any] = f, intervals: dict[str, Any] = intervals) -> Estimate:
            """The study's noisy gap with its 95 % interval (``gap_intervals``), where it has one."""
            raw = f.get(key)
            if isinstance(raw, Mapping):
                return read_estimate(raw)
            return read_estimate({"value": raw, "interval": intervals.get(key)})

        fairness[str(attribute)] = GroupFairness(
            attribute=str(attribute),
            demographic_parity_gap=gap("demographic_parity_gap"),
            equal_opportunity_gap=gap("equal_opportunity_gap"),
            observed_outcome_gap=gap("observed_outcome_gap"),
            groups=groups,
            suppressed=tuple(str(s) for s in rows(f.get("suppressed_groups"))),
        )
    sites = tuple(
        SiteSummary(
            site=str(name),
            status=str(s.get("status", "?")),
            examples=s.get("examples") if isinstance(s.get("examples"), int) else None,
            epsilon=read_estimate(s.get("epsilon")).value if s.get("epsilon") is not None else None,
            delta=read_estimate(s.get("delta")).value if s.get("delta") is not None else None,
        )
        for name, s in sorted(section(raw.get("sites")).items())
        if isinstance(s, dict)
    )
    metrics = section(raw.get("metrics"))
    audit = raw.get("audit")
    return StudyReport(
        study_id=str(raw.get("study_id", "?")),
        task=str(raw.get("task", "?")),
        status=str(raw.get("status", "?")),
        purpose=str(grant["purpose"]) if grant.get("purpose") else None,
        fields=tuple(str(f) for f in rows(grant.get("fields"))),
        features=tuple(str(f) for f in rows(raw.get("features"))),
        auc=read_estimate(metrics.get("auc")),
        accuracy=read_estimate(metrics.get("accuracy")),
        sites=sites,
        fairness=fairness,
        calibration=_calibration(raw),
        released_at=_released_at(str(raw.get("study_id", "")), path),
        audit_verified=bool(audit.get("verified")) if isinstance(audit, dict) else None,
        raw=raw,
    )


def _calibration(raw: Mapping[str, object]) -> Calibration | None:
    release = raw.get(RELEASE_KEY)
    counts = section(release).get("calibration")
    if not isinstance(counts, dict):
        return None
    positive = [read_estimate(v).value for v in rows(counts.get("positive"))]
    negative = [read_estimate(v).value for v in rows(counts.get("negative"))]
    if not positive or len(positive) != len(negative) or not all(map(math.isfinite, positive + negative)):
        return None
    return Calibration(tuple(max(p, 0.0) for p in positive), tuple(max(n, 0.0) for n in negative))


def _released_at(study_id: str, path: Path | None) -> datetime | None:
    """The study's timestamp (its id ends with ``YYYYMMDDTHHMMSSZ``), else the report's file time."""
    stamp = study_id.rsplit("-", 1)[-1]
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        try:
            return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC) if path else None
        except OSError:
            return None


class RowEncoder:
    """The task's encoder applied one feature block at a time, memoised on that block's source values.

    A diagnosis encodes a few dozen rows that differ from the person's in one or two columns, and
    pandas' fixed cost per call, not the arithmetic, was most of a request (benchmarks/autodiag).
    Each block's vector depends only on its own source columns, so the encoder's own blocks run
    once per unseen value (a zone, an occupation, a pair) and every later row reads a stored vector:
    the same numbers as ``TabularEncoder.encode`` (tests/autodiag/test_web.py checks it).
    """

    #: Stored vectors per block before the block's memory is cleared (zone × occupation pairs).
    MAX_ENTRIES = 50_000

    def __init__(self, encoder: TabularEncoder) -> None:
        self.encoder = encoder
        self._memo: list[dict[tuple[object, ...], np.ndarray]] = [{} for _ in encoder.features]

    def encode(self, rows: list[dict[str, object]]) -> np.ndarray:
        import pandas as pd

        if not rows:
            return np.zeros((0, self.encoder.width), dtype=np.float32)
        blocks = []
        for feature, memo in zip(self.encoder.features, self._memo, strict=True):
            keys = [tuple(row.get(c) for c in feature.columns) for row in rows]
            unseen = list(dict.fromkeys(k for k in keys if k not in memo))
            if unseen:
                if len(memo) + len(unseen) > self.MAX_ENTRIES:
                    memo.clear()
                frame = pd.DataFrame([dict(zip(feature.columns, k, strict=True)) for k in unseen])
                memo.update(zip(unseen, feature.encode(frame), strict=True))
            blocks.append(np.stack([memo[k] for k in keys]))
        return np.hstack(blocks)


@dataclass(frozen=True)
class ReleasedModel:
    """The study's final model with the encoder that produced its inputs."""

    report: StudyReport
    encoder: TabularEncoder
    network: torch.nn.Module
    rows: RowEncoder = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", RowEncoder(self.encoder))

    def chances(self, rows: list[dict[str, object]]) -> list[float]:
        """Predicted chance of a job within six months for each row (a model input dict): one
        forward pass without autograd."""
        if not rows:
            return []
        features = torch.from_numpy(self.rows.encode(rows))
        with torch.inference_mode():
            chances: list[float] = torch.sigmoid(self.network(features).reshape(-1)).tolist()
        return chances


def load_model(folder: Path, report: StudyReport) -> ReleasedModel:
    """Rebuild the network from ``model.pt`` and check its inputs are those the task encodes."""
    path = folder / "model.pt"
    if report.status != "completed":
        raise StudyFolderError(
            f"l'étude {report.study_id} n'est pas terminée (statut « {report.status} ») : "
            "aucun modèle n'a été publié"
        )
    if not path.is_file():
        raise StudyFolderError(f"le dossier « {folder} » ne contient pas de modèle publié (model.pt)")
    try:
        spec = get_task(report.task)
    except KeyError as exc:
        raise StudyFolderError(f"la tâche « {report.task} » du rapport est inconnue") from exc
    encoder = spec.encoder_for(report.fields or None)
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        state, features = saved["state_dict"], list(saved["features"])
    except Exception as exc:  # a corrupt pickle raises anything; the user gets one French line
        raise StudyFolderError(f"le modèle « {path} » est illisible ({type(exc).__name__})") from exc
    if features != encoder.feature_names:
        raise StudyFolderError(
            f"les entrées du modèle « {path} » ({len(features)}) ne sont pas celles que cette version "
            f"du service calcule ({encoder.width}) : publiez un modèle entraîné avec cette version"
        )
    network = mlp(encoder.width, spec.hidden)
    try:
        network.load_state_dict(state)
    except RuntimeError as exc:
        raise StudyFolderError(f"le modèle « {path} » n'a pas la forme attendue") from exc
    network.eval()
    return ReleasedModel(report=report, encoder=encoder, network=network)
