"""Where the public reference data lives (same rule as tasks.reference, re-stated: this is a leaf)."""

from __future__ import annotations

import os
from pathlib import Path

REFERENCE_ENV_VAR = "R2DDE_REFERENCE_DATA"


def reference_data_dir() -> Path:
    """`$R2DDE_REFERENCE_DATA`, else `<repository>/../shared/data`."""
    configured = os.environ.get(REFERENCE_ENV_VAR)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"
