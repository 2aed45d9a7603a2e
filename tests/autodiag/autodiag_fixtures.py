"""A small released study folder built in the test: a seeded model of the task's real width, and a
report whose numbers the tests choose (fairness gaps, calibration counts), so that every test of
the service runs in well under a second without running a federated study."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from tasks.models import mlp
from tasks.registry import get_task

SITES = {"france_travail": 3006, "apec": 720, "missions_locales": 1200}


def passing_fairness() -> dict[str, object]:
    def attribute(dp: float, eo: float) -> dict[str, object]:
        return {
            "groups": {},
            "suppressed_groups": [],
            "demographic_parity_gap": dp,
            "equal_opportunity_gap": eo,
            "observed_outcome_gap": 0.05,
        }

    return {"sex": attribute(0.03, 0.02), "age_band": attribute(0.08, 0.09)}


def calibration_counts(bins: int = 50, people: int = 1500, seed: int = 3) -> dict[str, list[int]]:
    """Holdout people spread over score bins, each bin's outcome rate close to its score."""
    rng = np.random.default_rng(seed)
    scores = rng.beta(4, 4, size=people)
    outcome = rng.random(people) < scores
    edges = np.linspace(0, 1, bins + 1)
    return {
        "positive": np.histogram(scores[outcome], edges)[0].tolist(),
        "negative": np.histogram(scores[~outcome], edges)[0].tolist(),
    }


def write_study(
    folder: Path,
    *,
    fairness: dict[str, object] | None = None,
    features: list[str] | None = None,
    status: str = "completed",
    model: bool = True,
) -> Path:
    spec = get_task("employment_outcome")
    encoder = spec.encoder()
    fields = [*spec.default_fields()]
    folder.mkdir(parents=True, exist_ok=True)
    report = {
        "study_id": "usecase1-20261130T120000Z",
        "task": "employment_outcome",
        "status": status,
        "metrics": {"accuracy": 0.63, "auc": 0.68, "log_loss": 0.65},
        "sites": {
            s: {"status": "trained", "epsilon": 2.997, "delta": 2.2e-7, "examples": n}
            for s, n in SITES.items()
        },
        "fairness": passing_fairness() if fairness is None else fairness,
        "features": features or encoder.feature_names,
        "grant": {"purpose": "autodiagnostic_mobilite", "fields": fields, "policy_digest": "sha256:x"},
        "audit": {"export": "audit.jsonl", "verified": True, "problems": []},
        "release": {"calibration": calibration_counts()},
    }
    (folder / "report.json").write_text(json.dumps(report), encoding="utf-8")
    if model:
        network = mlp(encoder.width, spec.hidden, seed=7)
        torch.save(
            {"state_dict": network.state_dict(), "features": encoder.feature_names}, folder / "model.pt"
        )
    return folder


#: A complete, unambiguous answer (the exact title resolves without a choice).
ANSWERS = {
    "metier": "Aide-soignant / Aide-soignante en gériatrie",
    "lieu": "Marseille",
    "zone": "",
    "diplome": "bac",
    "mois": "8",
    "rayon": "20",
    "permis": "non",
    "formation": "non",
    "precedent": "",
}
