"""Malformed, oversized or unrepresentable input gets a clear 4xx with a rule, never a 500."""

from __future__ import annotations

import httpx
import pytest
from broker_support import Broker, signer

from trust_broker.roles import Role


def _post(
    broker: Broker, path: str, content: bytes, role: Role = Role.NODE, site: str | None = "apec"
) -> httpx.Response:
    return broker.http.post(
        path,
        content=content,
        headers={"content-type": "application/json"},
        auth=signer(broker.folder, role, site),
    )


@pytest.mark.parametrize(
    "content",
    [b"{", b"[]", b'{"linkage_pseudonym": 5}', b"null", b'{"linkage_pseudonym": "short"}', b"\xff\xfe", b""],
)
def test_malformed_json_is_a_422_with_a_rule(shared_broker: Broker, content: bytes) -> None:
    response = _post(shared_broker, "/v1/optouts", content)
    assert response.status_code == 422
    assert response.json()["rule"] == "request.invalid"
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "content",
    [
        b'{"linkage_pseudonym": "' + b"a" * 20 + b'\\u0000aaaaaa"}',
        b'{"reservation_id": "x", "mechanism": {"kind": "gaussian", "noise_multiplier": NaN, "delta": 1e-9}}',
        b'{"request_id": "r", "study_id": "s", "dataset": "d", "mechanism": {}, '
        b'"examples": 99999999999999999999999}',
    ],
)
def test_values_the_chain_cannot_hold_are_refused(shared_broker: Broker, content: bytes) -> None:
    path = "/v1/optouts" if b"linkage" in content else "/v1/budget/commit"
    if b"request_id" in content:
        path = "/v1/budget/reserve"
    response = _post(shared_broker, path, content)
    assert response.status_code == 422
    assert response.json()["rule"] == "request.invalid"


def test_oversized_body_is_a_413_before_anything_else(shared_broker: Broker) -> None:
    big = b'{"linkage_pseudonym": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    response = _post(shared_broker, "/v1/optouts", big)
    assert response.status_code == 413
    assert response.json()["rule"] == "request.too_large"
    unsigned = shared_broker.http.post("/v1/studies", content=big)
    assert unsigned.status_code == 413


def test_study_request_with_unstorable_ids_is_a_422(shared_broker: Broker) -> None:
    from broker_support import study_request

    body = study_request("s-ok").model_dump(mode="json")
    body["study_id"] = "x" * 500
    response = shared_broker.http.post(
        "/v1/studies", json=body, auth=signer(shared_broker.folder, Role.REGION)
    )
    assert response.status_code == 422
    assert "study_id" in response.json()["detail"]


def test_unknown_paths_and_methods_answer_json_errors(shared_broker: Broker) -> None:
    assert shared_broker.http.get("/v1/nothing").json()["rule"] == "request.not_found"
    assert shared_broker.http.delete("/v1/health").status_code == 405
    unknown = shared_broker.http.get("/v1/grants/nope/status", auth=signer(shared_broker.folder, Role.ADMIN))
    assert unknown.status_code == 404
    assert unknown.json()["rule"] == "study.unknown"
