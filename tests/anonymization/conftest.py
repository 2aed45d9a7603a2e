"""Shared fixtures: a fixed test key, one scrubber per session (the spaCy model loads once), raw records."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
from parcours_factory import make_parcours

from anonymization.keys import LinkageKey


@pytest.fixture(scope="session")
def linkage_key() -> LinkageKey:
    return LinkageKey(bytes(range(32)), source="test")


@pytest.fixture(scope="session")
def scrubber():
    from anonymization.scrubber import FrenchScrubber

    return FrenchScrubber()


@pytest.fixture
def parcours_factory() -> Callable[..., pd.DataFrame]:
    return make_parcours
