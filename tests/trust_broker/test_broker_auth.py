"""Authentication and authorization attacks: each must be refused with a clear 401/403."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from broker_support import Broker, dpsgd, signer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trust_broker.auth.signing import SignedRequestAuth
from trust_broker.client import AuthRefused, GrantNotUsable
from trust_broker.roles import Role


def _rule(response: httpx.Response) -> str:
    return response.json()["rule"]


def test_unsigned_request_is_refused(shared_broker: Broker) -> None:
    response = shared_broker.http.get("/v1/optouts")
    assert response.status_code == 401
    assert _rule(response) == "auth.unsigned"


def test_replayed_request_is_refused(shared_broker: Broker) -> None:
    http = shared_broker.http
    request = http.build_request("POST", "/v1/optouts", json={"linkage_pseudonym": "r" * 32})
    signer(shared_broker.folder, Role.NODE, "apec").sign(request)
    first = http.send(request)
    second = http.send(request)
    assert first.status_code == 201
    assert second.status_code == 401
    assert _rule(second) == "auth.replay"


def test_body_changed_after_signing_is_refused(shared_broker: Broker) -> None:
    http = shared_broker.http
    signed = http.build_request("POST", "/v1/optouts", json={"linkage_pseudonym": "a" * 32})
    signer(shared_broker.folder, Role.NODE, "apec").sign(signed)
    tampered = http.build_request(
        "POST",
        "/v1/optouts",
        content=b'{"linkage_pseudonym": "' + b"b" * 32 + b'"}',
        headers=dict(signed.headers),
    )
    tampered.headers["content-length"] = str(len(tampered.content))
    response = http.send(tampered)
    assert response.status_code == 401
    assert _rule(response) == "auth.signature"


def test_path_changed_after_signing_is_refused(shared_broker: Broker) -> None:
    http = shared_broker.http
    signed = http.build_request("GET", "/v1/optouts")
    signer(shared_broker.folder, Role.NODE, "apec").sign(signed)
    moved = http.build_request("GET", "/v1/consents", headers=dict(signed.headers))
    assert http.send(moved).status_code == 401


def test_signature_not_covering_the_query_is_refused(
    shared_broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Otherwise a cursor or filter could be changed in flight without breaking the signature."""
    auth = signer(shared_broker.folder, Role.NODE, "apec")
    original = auth._signer.sign
    monkeypatch.setattr(
        auth._signer,
        "sign",
        lambda message, **kw: original(message, **{**kw, "covered_component_ids": ("@method", "@path")}),
    )
    response = shared_broker.http.get("/v1/optouts", params={"since": 0}, auth=auth)
    assert response.status_code == 401
    assert _rule(response) == "auth.signature"
    assert '"@query"' in response.json()["detail"]


def test_stale_signature_is_refused(shared_broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = signer(shared_broker.folder, Role.NODE, "apec")
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    original = auth._signer.sign
    monkeypatch.setattr(
        auth._signer, "sign", lambda message, **kw: original(message, **{**kw, "created": old})
    )
    response = shared_broker.http.get("/v1/optouts", auth=auth)
    assert response.status_code == 401
    assert "age" in response.json()["detail"]


def test_unknown_key_is_refused(shared_broker: Broker) -> None:
    rogue = SignedRequestAuth("node.apec", Ed25519PrivateKey.generate())
    response = shared_broker.http.get("/v1/optouts", auth=rogue)
    assert response.status_code == 401
    unknown = SignedRequestAuth("node.nowhere", Ed25519PrivateKey.generate())
    assert shared_broker.http.get("/v1/optouts", auth=unknown).status_code == 401


@pytest.mark.parametrize(
    ("role", "site", "method", "path", "body"),
    [
        (Role.NODE, "apec", "POST", "/v1/studies", {}),
        (Role.AUDITOR, None, "POST", "/v1/budget/reserve", {}),
        (Role.REGION, None, "GET", "/v1/audit/export", None),
        (Role.REGION, None, "POST", "/v1/optouts", {"linkage_pseudonym": "c" * 32}),
        (Role.NODE, "apec", "GET", "/v1/audit/export", None),
        (Role.NODE, "apec", "POST", "/v1/participants", {}),
        (Role.AUDITOR, None, "POST", "/v1/studies/s-x/revoke", {"reason": "x"}),
    ],
)
def test_role_asking_for_another_roles_endpoint_is_forbidden(
    shared_broker: Broker, role: Role, site: str | None, method: str, path: str, body: object
) -> None:
    auth = signer(shared_broker.folder, role, site)
    response = shared_broker.http.request(method, path, json=body, auth=auth)
    assert response.status_code == 403
    assert _rule(response) == "auth.role"


def test_node_cannot_commit_or_release_another_sites_reservation(broker: Broker) -> None:
    study = broker.grant()
    apec = broker.client(Role.NODE, "apec")
    reservation = apec.reserve(
        request_id="r-1", study_id=study, dataset="parcours", mechanism=dpsgd(), examples=100
    )
    intruder = broker.client(Role.NODE, "france_travail")
    with pytest.raises(AuthRefused) as commit:
        intruder.commit(reservation.reservation_id, dpsgd())
    assert commit.value.rule == "auth.site"
    with pytest.raises(AuthRefused):
        intruder.release(reservation.reservation_id)
    assert apec.commit(reservation.reservation_id, dpsgd()).status == "committed"


def test_node_of_a_site_not_in_the_grant_cannot_reserve_or_report(broker: Broker) -> None:
    study = broker.grant(sites=("france_travail", "apec"))
    outsider = broker.client(Role.NODE, "missions_locales")
    with pytest.raises(GrantNotUsable) as refused:
        outsider.reserve(request_id="r-1", study_id=study, dataset="parcours", mechanism=dpsgd(), examples=10)
    assert refused.value.rule == "grant.site"
    with pytest.raises(GrantNotUsable):
        outsider.post_node_report(study, records_used=1, opt_outs_applied=0, opt_out_cursor=0)


def test_site_in_the_body_is_ignored_the_registered_site_wins(broker: Broker) -> None:
    study = broker.grant()
    body = {
        "request_id": "r-site",
        "study_id": study,
        "dataset": "parcours",
        "mechanism": dpsgd(),
        "examples": 10,
        "site": "france_travail",
    }
    response = broker.http.post(
        "/v1/budget/reserve", json=body, auth=signer(broker.folder, Role.NODE, "apec")
    )
    assert response.status_code == 422  # unknown field: a node cannot even name a site
    del body["site"]
    ok = broker.http.post("/v1/budget/reserve", json=body, auth=signer(broker.folder, Role.NODE, "apec"))
    assert ok.status_code == 200
    assert ok.json()["site"] == "apec"


def test_signed_requests_and_replays_behave_the_same_on_both_databases(make_broker, db_url: str) -> None:  # noqa: ANN001
    broker = make_broker(db_url)
    request = broker.http.build_request("GET", "/v1/optouts")
    signer(broker.folder, Role.NODE, "apec").sign(request)
    assert broker.http.send(request).status_code == 200
    assert broker.http.send(request).json()["rule"] == "auth.replay"
    study = broker.grant()
    reservation = broker.client(Role.NODE, "apec").reserve(
        request_id="r", study_id=study, dataset="parcours", mechanism=dpsgd(), examples=10
    )
    assert reservation.status == "reserved"
