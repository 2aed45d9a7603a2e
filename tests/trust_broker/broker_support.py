"""Helpers shared by the broker service tests (imported by conftest and the test modules)."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from policies import StudyRequest
from trust_broker.auth.signing import SignedRequestAuth
from trust_broker.client import BrokerClient
from trust_broker.provision import ProvisionedFolder
from trust_broker.provision.keys import load_private_key
from trust_broker.roles import Role
from trust_broker.service import BrokerContext, BrokerSettings, create_app
from trust_broker.store.db import throwaway_schema

SITES = ("france_travail", "apec", "missions_locales")
POSTGRES_ENV = "R2DDE_TEST_POSTGRES_URL"
DELTA = 1e-8


def postgres_url_or_skip() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests skipped: {POSTGRES_ENV} is not set")
    return url


def postgres_schema(base_url: str) -> AbstractContextManager[str]:
    """A fresh schema on the configured server for one test (or module), dropped afterwards."""
    return throwaway_schema(base_url, "r2dde_test")


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'broker.db'}"


def make_context(
    url: str, folder: ProvisionedFolder, settings: BrokerSettings | None = None
) -> BrokerContext:
    return BrokerContext.from_config(url, folder.root, settings=settings)


class Broker:
    """A broker app under TestClient with helpers to act as any participant."""

    def __init__(self, context: BrokerContext, folder: ProvisionedFolder) -> None:
        self.context = context
        self.folder = folder
        self.app = create_app(context)
        self.http = TestClient(self.app, raise_server_exceptions=False)

    def client(self, role: Role | str, site: str | None = None) -> BrokerClient:
        return BrokerClient(
            "http://testserver",
            kid=self.folder.kid_for(role, site),
            private_key=load_private_key(self.folder.private_key_path(role, site)),
            http_client=self.http,
        )

    def grant(self, study_id: str | None = None, **overrides: object) -> str:
        """Request a study as the Region; returns its id (the grant must be issued)."""
        request = study_request(study_id or f"s-{uuid.uuid4().hex[:8]}", **overrides)
        self.client(Role.REGION).request_study(request)
        return request.study_id

    def close(self) -> None:
        self.http.close()
        self.context.close()


def study_request(study_id: str, **overrides: object) -> StudyRequest:
    data: dict[str, object] = {
        "study_id": study_id,
        "purpose_id": "autodiagnostic_mobilite",
        "task": "employment_outcome",
        "dataset": "parcours",
        "fields": ("age_band", "sex", "employed_6m"),
        "sites": ("france_travail", "apec"),
        "rounds": 3,
        "target_epsilon": 2.0,
        "delta": DELTA,
        "coordinator": "coordinator",
        "requested_by": "coordinator",
    }
    data.update(overrides)
    return StudyRequest.model_validate(data)


def dpsgd(steps: int = 10, sigma: float = 1.0, rate: float = 0.01) -> dict[str, object]:
    return {
        "kind": "subsampled_gaussian",
        "noise_multiplier": sigma,
        "sample_rate": rate,
        "steps": steps,
        "delta": DELTA,
    }


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def signer(folder: ProvisionedFolder, role: Role | str, site: str | None = None) -> SignedRequestAuth:
    """The httpx auth a participant signs with (for hand-made, tampered or replayed requests)."""
    return SignedRequestAuth(
        folder.kid_for(role, site), load_private_key(folder.private_key_path(role, site))
    )
