"""Flower's CLI helpers read and write under FLWR_HOME: keep them in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def flower_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLWR_HOME", str(tmp_path_factory.mktemp("flwr-home")))
        patch.setenv("FLWR_TELEMETRY_ENABLED", "0")
        yield
