"""Client side: an ``httpx.Auth`` that signs every request with the participant's Ed25519 key."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Generator
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

from trust_broker.auth.messages import (
    COVERED_COMPONENTS,
    SIGNATURE_LABEL,
    SIGNATURE_TAG,
    MessageView,
    url_for_signature,
)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SignedRequestAuth(httpx.Auth):
    """Signs ``@method @path @query`` (+ ``content-digest`` for bodies) with created, nonce, keyid, tag."""

    requires_request_body = True

    def __init__(self, kid: str, private_key: Ed25519PrivateKey) -> None:
        self.kid = kid
        self._signer = HTTPMessageSigner(
            signature_algorithm=algorithms.ED25519,
            key_resolver=MappingKeyResolver(public_keys={}, private_keys={kid: private_key}),
        )

    def sign(self, request: httpx.Request, *, created: dt.datetime | None = None) -> None:
        """Sign ``request`` now (``created``: another signing time, for tests of stale signatures)."""
        for name in ("Signature", "Signature-Input", "Content-Digest"):
            if name in request.headers:
                del request.headers[name]
        path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
        self.sign_view(
            request.method,
            path,
            request.url.query.decode("ascii"),
            request.headers,
            request.content,
            created=created,
        )

    def sign_view(
        self,
        method: str,
        path: str,
        query: str,
        headers: Any,
        body: bytes | None,
        *,
        created: dt.datetime | None = None,
    ) -> None:
        """Add the signature headers to ``headers`` (any mutable mapping: httpx's, requests'…)."""
        view = MessageView(method=method.upper(), url=url_for_signature(path, query), headers=headers)
        self._signer.sign(
            view,
            key_id=self.kid,
            created=created,
            nonce=secrets.token_urlsafe(18),
            tag=SIGNATURE_TAG,
            label=SIGNATURE_LABEL,
            covered_component_ids=COVERED_COMPONENTS,
            body=(body or b"") if view.method in BODY_METHODS else None,
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request
