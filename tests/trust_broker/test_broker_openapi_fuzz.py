"""Schemathesis against the broker's own OpenAPI, with properly signed requests: never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests
import schemathesis
from broker_support import Broker, make_context, postgres_schema, postgres_url_or_skip, signer
from hypothesis import HealthCheck, given, settings
from requests.auth import AuthBase

from trust_broker.provision import ProvisionedFolder
from trust_broker.roles import Role
from trust_broker.service import create_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class RequestsSigner(AuthBase):
    """``SignedRequestAuth``'s signature, for schemathesis' requests-based client."""

    def __init__(self, folder: ProvisionedFolder, role: Role, site: str | None = None) -> None:
        self.auth = signer(folder, role, site)

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        from urllib.parse import urlsplit

        parts = urlsplit(prepared.url)
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        self.auth.sign_view(str(prepared.method), parts.path, parts.query, prepared.headers, body)
        return prepared


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzzed(
    request: pytest.FixtureRequest, folder: ProvisionedFolder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Broker]:
    """A broker with one granted study, on each database (PostgreSQL rejects what SQLite lets pass)."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{Path(tmp_path_factory.mktemp('fuzz')) / 'broker.db'}"
        else:
            url = stack.enter_context(postgres_schema(postgres_url_or_skip()))
        broker = Broker(make_context(url, folder), folder)
        stack.callback(broker.close)
        broker.grant("s-fuzz")
        yield broker


def _role_for(method: str, path: str) -> tuple[Role, str | None]:
    """Sign each operation as the role it serves, so the fuzzer reaches the handlers, not just 403s."""
    if path.startswith("/v1/studies") and method == "POST" and "reports" not in path:
        return Role.REGION, None
    if path.startswith(("/v1/audit", "/v1/participants")):
        return Role.ADMIN, None
    return Role.NODE, "apec"


def test_no_signed_request_makes_the_broker_fail(fuzzed: Broker) -> None:
    """Every operation of the OpenAPI, fuzzed with examples drawn from its schema, signed as its role."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(fuzzed.context))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case) -> None:  # noqa: ANN001
            session = requests.Session()
            session.auth = RequestsSigner(fuzzed.folder, *_role_for(case.method, case.path))
            response = case.call(session=session)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path} → {response.status_code}: {response.text[:200]}")
            case.validate_response(response, checks=[schemathesis.checks.not_a_server_error])

        fuzz()
    assert not failures, failures
