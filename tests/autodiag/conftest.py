"""Fixtures of the service tests: one released study folder per session, its app and a client."""

from __future__ import annotations

from pathlib import Path

import pytest
from autodiag_fixtures import hand_table, write_similar, write_study


@pytest.fixture(scope="session")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_study(tmp_path_factory.mktemp("study") / "released")
    return write_similar(folder, hand_table())  # the numbers of the "profils similaires" section


@pytest.fixture(scope="session")
def opened(study_dir: Path):
    from autodiag.service import open_study

    return open_study(study_dir)


@pytest.fixture(scope="session")
def app(opened):
    from autodiag.web import create_app

    return create_app(opened.model, opened.gate, similar=opened.similar)


@pytest.fixture()
def client(app):
    from fastapi.testclient import TestClient

    return TestClient(app)
