"""Open a study folder for serving: read it, load its model, pass its fairness gate — or refuse."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .gate import GateResult, UnknownPurposeError, check_release, purpose_for
from .similar import SimilarTable, read_similar_table
from .study import ReleasedModel, StudyFolderError, load_model, read_report


class ServiceRefused(RuntimeError):
    """The service will not start; the message is French and says what to fix."""


@dataclass(frozen=True)
class OpenedStudy:
    model: ReleasedModel
    gate: GateResult
    #: The released table of similar profiles shipped with the study (``None``: the page says so).
    similar: SimilarTable | None = None


def open_study(folder: Path, purpose_id: str | None = None) -> OpenedStudy:
    try:
        report = read_report(folder)
        purpose = purpose_for(report, purpose_id)
        gate = check_release(report, purpose)
        if not gate.passed:
            raise ServiceRefused(gate.refusal())
        model = load_model(folder, report)
        similar = read_similar_table(folder)
    except (StudyFolderError, UnknownPurposeError) as exc:
        raise ServiceRefused(f"Le service ne peut pas démarrer : {exc}.") from None
    return OpenedStudy(model, gate, similar)
