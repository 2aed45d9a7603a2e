"""Model-only explanations: how the predicted chance moves when one factor of a reference profile
changes, everything else held. They need the final model and public vocabularies only — no
record — so they cost no privacy budget and can be shown to a person doing a self-diagnosis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from tasks.encoding import TabularEncoder
from tasks.registry import WhatIf


@torch.no_grad()
def what_if(model: torch.nn.Module, encoder: TabularEncoder, scenario: WhatIf) -> dict[str, object]:
    """Probability at the reference profile, and per factor the probability at each value."""
    usable = set(encoder.source_columns)
    model.eval()

    def chance(rows: list[dict[str, object]]) -> np.ndarray:
        frame = pd.DataFrame(rows)
        scores = model(torch.from_numpy(encoder.encode(frame))).reshape(-1)
        return torch.sigmoid(scores).numpy()

    reference = float(chance([scenario.profile])[0])
    factors: dict[str, dict[str, float]] = {}
    for column, values in scenario.variations.items():
        if column not in usable:
            continue  # not granted for this study: the model never saw it
        probabilities = chance([{**scenario.profile, column: value} for value in values])
        factors[column] = {str(v): round(float(p), 4) for v, p in zip(values, probabilities, strict=True)}
    spread = {c: max(v.values()) - min(v.values()) for c, v in factors.items()}
    return {
        "reference_profile": {k: v for k, v in scenario.profile.items() if k in usable},
        "reference_probability": round(reference, 4),
        "factors": factors,
        "factors_by_influence": sorted(spread, key=lambda c: -spread[c]),
    }
