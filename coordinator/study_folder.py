"""The files every study folder shares: ``report.json`` (for machines and auditors) and ``report.md``.

One place for the JSON rules of every study type (model, company clustering, analytics): JSON has no
NaN or infinity and knows no numpy scalar, so a report that carries them would be refused by a strict
reader (the auditor's, the autodiagnostic's); ``json_safe`` writes them as null and plain numbers.
Reports are read back as JSON, so their sections are untyped; the renderers read them through
``section``, ``rows`` and ``number`` (``contracts.study_report``, shared with the autodiagnostic
service, which reads the same reports), re-exported here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from contracts.study_report import number, rows, section

__all__ = [
    "REPORT_JSON", "REPORT_MD", "json_safe", "number", "read_report", "rows", "section", "write_report",
]

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


def json_safe(value: object) -> object:
    """``value`` with NaN/inf as None, numpy scalars as Python numbers, tuples as lists, keys as text."""
    if isinstance(value, np.floating | np.integer):
        return json_safe(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_report(folder: Path, report: dict[str, object], markdown: str) -> None:
    """Write ``report.json`` and its French rendering ``report.md`` into ``folder`` (created if need be)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(json_safe(report), indent=2, ensure_ascii=False)
    (folder / REPORT_JSON).write_text(text, encoding="utf-8")
    (folder / REPORT_MD).write_text(markdown, encoding="utf-8")


def read_report(folder: Path) -> dict[str, object]:
    """The ``report.json`` of a study folder, to amend with what is known only after the study."""
    report = json.loads((folder / REPORT_JSON).read_text(encoding="utf-8"))
    if not isinstance(report, dict):
        raise ValueError(f"{folder / REPORT_JSON}: a study report is a JSON object")
    return report
