"""A small released study folder built in the test: a seeded model of the task's real width, and a
report whose numbers the tests choose (fairness gaps, calibration counts), so that every test of
the service runs in well under a second without running a federated study."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from tasks.analytics import Measure, QuerySpec
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


# --------------------------------------------------------------------------- similar profiles

MARSEILLE, TOULON = "9312", "9318"


def spec(group_by: tuple[str, ...] = ("zone_emploi", "education_level")) -> QuerySpec:
    return QuerySpec(
        id="profils-test",
        title="Table de test",
        purpose="commande_publique_formation",
        sites=("carif_oref", "france_travail"),
        epsilon=0.5,
        group_by=group_by,
        measures=(
            Measure(name="effectif", kind="count"),
            Measure(name="taux", kind="share", field="employed_6m"),
            Measure(
                name="delai", kind="quantile", field="months_to_employment", clamp=(0, 24), quantiles=(0.5,)
            ),
        ),
    )


def row(group: dict[str, str], measure: str, triple: tuple[float, float, float] | None) -> dict[str, object]:
    value, low, high = triple if triple else (None, None, None)
    return {
        "group": group,
        "measure": measure,
        "value": value,
        "ci_low": low,
        "ci_high": high,
        "suppressed": triple is None,
    }


def hand_table(**changes: object) -> dict[str, object]:
    released = {"zone_emploi": MARSEILLE, "education_level": "bac"}
    wide = {"zone_emploi": MARSEILLE, "education_level": "bac+2"}
    hidden = {"zone_emploi": MARSEILLE, "education_level": "bac+5"}
    toulon = {"zone_emploi": TOULON, "education_level": "bac+2"}
    cells = [
        row(released, "effectif", (143.4, 118.6, 168.2)),
        row(released, "taux", (0.47, 0.41, 0.53)),
        row(released, "delai[q50]", (8.2, 5.1, 11.9)),
        row(wide, "effectif", (41.0, 21.0, 61.0)),
        row(wide, "taux", (0.38, 0.12, 0.64)),
        row(wide, "delai[q50]", (24.0, 9.0, 24.0)),
        *(row(hidden, m, None) for m in ("effectif", "taux", "delai[q50]")),
        row(toulon, "effectif", (212.0, 187.3, 236.7)),
        row(toulon, "taux", (0.55, 0.50, 0.60)),
        row(toulon, "delai[q50]", (5.4, 3.9, 7.0)),
    ]
    report: dict[str, object] = {
        "study_id": "profils-test-20261130T120000Z",
        "kind": "table",
        "status": "completed",
        "query": spec().to_json(),
        "sites": {s: {"status": "answered", "epsilon": 0.5} for s in ("carif_oref", "france_travail")},
        "min_cell_size": 11,
        "cells": cells,
        "audit": {"verified": True},
    }
    report.update(changes)
    return report


def write_similar(study: Path, table: dict[str, object]) -> Path:
    """Ship a released table with the study, where `r2dde query --out` would have written it."""
    from autodiag.similar import RELEASE_FOLDER

    (study / RELEASE_FOLDER).mkdir(exist_ok=True)
    (study / RELEASE_FOLDER / "report.json").write_text(json.dumps(table), encoding="utf-8")
    return study
