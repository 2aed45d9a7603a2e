"""The broker benchmark's lean signer (benchmarks/broker/loadgen.py) signs exactly as the project's client.

The load generator builds the RFC 9421 signature base by hand to keep its own CPU out of the
measurement; these tests pin it to ``http_message_signatures`` and to the broker's verifier.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from broker_support import signer
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

from trust_broker.auth.messages import (
    COVERED_COMPONENTS,
    SIGNATURE_LABEL,
    SIGNATURE_TAG,
    MessageView,
    url_for_signature,
)
from trust_broker.auth.verification import AuthError, Caller, RequestVerifier
from trust_broker.provision import ProvisionedFolder
from trust_broker.provision.keys import encode_public_key
from trust_broker.roles import Role
from trust_broker.store.records import Participant

LOADGEN = Path(__file__).resolve().parents[2] / "benchmarks" / "broker" / "loadgen.py"
SITE = "apec"


@pytest.fixture(scope="module")
def loadgen() -> ModuleType:
    """benchmarks/ is not a package: load the script as a module by its path."""
    spec = importlib.util.spec_from_file_location("broker_loadgen", LOADGEN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _reserve_body(loadgen: ModuleType) -> bytes:
    return loadgen.json_body(
        {
            "request_id": "lg.c0.1",
            "study_id": "bench-1",
            "dataset": "parcours",
            "mechanism": loadgen.MECHANISM,
            "examples": 1000,
        }
    )


REQUESTS = {
    "reserve": lambda body: httpx.Request("POST", "http://127.0.0.1:8443/v1/budget/reserve", content=body),
    "balance": lambda _body: httpx.Request(
        "GET", "http://127.0.0.1:8443/v1/budget/balance", params={"dataset": "parcours", "site": SITE}
    ),
}


@pytest.mark.parametrize("kind", sorted(REQUESTS))
def test_lean_signature_is_the_project_clients(
    kind: str, loadgen: ModuleType, folder: ProvisionedFolder
) -> None:
    kid, key = loadgen.node_identity(folder.root, SITE)
    assert kid == folder.kid_for(Role.NODE, SITE)
    request = REQUESTS[kind](_reserve_body(loadgen))
    signer(folder, Role.NODE, SITE).sign(request)  # SignedRequestAuth, as BrokerClient signs
    signature_input = request.headers["Signature-Input"]
    created = int(re.search(r";created=(\d+)", signature_input).group(1))  # type: ignore[union-attr]
    nonce = re.search(r';nonce="([^"]+)"', signature_input).group(1)  # type: ignore[union-attr]
    path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
    query = request.url.query.decode("ascii")
    body = request.content if request.method == "POST" else None

    # (a) the hand-built base is the library's, for the same request, created and nonce...
    base, _params = loadgen.signature_base(
        method=request.method,
        path=path,
        query=query,
        digest=loadgen.content_digest(body) if body is not None else None,
        created=created,
        kid=kid,
        nonce=nonce,
    )
    library = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={kid: key}),
    )
    prepared = library.prepare(
        MessageView(method=request.method, url=url_for_signature(path, query), headers={}),
        key_id=kid,
        created=dt.datetime.fromtimestamp(created, tz=dt.UTC),
        nonce=nonce,
        tag=SIGNATURE_TAG,
        label=SIGNATURE_LABEL,
        covered_component_ids=COVERED_COMPONENTS,
        body=body,
    )
    assert base.encode("ascii") == prepared.signature_base
    # ... and, Ed25519 being deterministic, every header is byte for byte the client's.
    headers = loadgen.sign_request(
        key, kid, method=request.method, path=path, query=query, body=body, created=created, nonce=nonce
    )
    digest = {"Content-Digest"} if body is not None else set()
    assert set(headers) == {"Signature-Input", "Signature"} | digest
    for name, value in headers.items():
        assert request.headers[name] == value


def test_broker_verifier_accepts_lean_requests_and_refuses_tampering(
    loadgen: ModuleType, folder: ProvisionedFolder
) -> None:
    kid, key = loadgen.node_identity(folder.root, SITE)
    participant = Participant(
        kid=kid, role=Role.NODE, site=SITE, public_key=encode_public_key(key.public_key())
    )
    seen: list[tuple[str, str]] = []

    async def remember_nonce(kid: str, nonce: str, _until: dt.datetime) -> bool:
        if (kid, nonce) in seen:
            return False
        seen.append((kid, nonce))
        return True

    verifier = RequestVerifier(lambda k: participant if k == kid else None, remember_nonce)
    body = _reserve_body(loadgen)
    signed = loadgen.sign_request(key, kid, method="POST", path="/v1/budget/reserve", body=body)
    headers = [("host", "127.0.0.1:8443"), ("content-type", "application/json"), *signed.items()]

    def verify(sent: bytes, path: str = "/v1/budget/reserve") -> Caller:
        return asyncio.run(
            verifier.verify(method="POST", raw_path=path, query="", headers=headers, body=sent)
        )

    tampered = body.replace(b'"examples":1000', b'"examples":1')
    assert tampered != body
    with pytest.raises(AuthError) as refused:
        verify(tampered)
    assert refused.value.rule == "auth.signature"
    with pytest.raises(AuthError) as moved:
        verify(body, "/v1/budget/commit")
    assert moved.value.rule == "auth.signature"

    caller = verify(body)
    assert (caller.kid, caller.role, caller.site) == (kid, Role.NODE, SITE)
    assert len(seen) == 1  # refused requests never reached the nonce store
    with pytest.raises(AuthError) as replayed:
        verify(body)
    assert replayed.value.rule == "auth.replay"

    fresh = loadgen.sign_request(key, kid, method="POST", path="/v1/budget/reserve", body=body)
    assert fresh["Signature-Input"] != signed["Signature-Input"]  # a new nonce every request
