"""Typed doors into a study's ``report.json``, for every process that reads one.

The coordinator writes the report and renders it; the autodiagnostic service serves it; both read it
back as untyped JSON, whose shape moves between study types and versions. ``section`` and ``rows``
read a JSON object or array, an absent or malformed part reading as empty; ``number`` reads a figure
(absent or not a number: NaN, which every renderer shows as "—"). One definition here, so a report
section reads the same on both sides of the study folder.
"""

from __future__ import annotations

import math
from typing import Any


def section(value: object) -> dict[str, Any]:
    """A report section (a JSON object) to read from; anything else reads as an empty section."""
    return value if isinstance(value, dict) else {}


def rows(value: object) -> list[Any]:
    """A report list (a JSON array) to read from; anything else reads as no rows."""
    return list(value) if isinstance(value, list | tuple) else []


def number(value: object) -> float:
    """A report figure as a float; anything but a number (None, absent) reads as NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)
