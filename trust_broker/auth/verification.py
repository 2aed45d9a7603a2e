"""Server side: verify a request's signature, refuse replays, and name the caller.

The caller's identity (kid → role, site) comes from the participant registry, never from the
request body: a node acts for the site it was registered with.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import HTTPMessageVerifier, HTTPSignatureKeyResolver, algorithms
from http_message_signatures.exceptions import HTTPMessageSignaturesException

from trust_broker.auth.messages import (
    COVERED_COMPONENTS,
    MAX_AGE_SECONDS,
    MAX_CLOCK_SKEW_SECONDS,
    SIGNATURE_TAG,
    MessageView,
    ReadOnlyHeaders,
    url_for_signature,
)
from trust_broker.provision.keys import decode_public_key
from trust_broker.roles import Role
from trust_broker.store.records import Participant


class AuthError(Exception):
    """Authentication or authorization refused; ``rule`` is stable, ``status`` is 401 or 403."""

    def __init__(self, rule: str, detail: str, status: int = 401) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail
        self.status = status


@dataclass(frozen=True)
class Caller:
    """An authenticated participant."""

    kid: str
    role: Role
    site: str | None


class _RegistryKeys(HTTPSignatureKeyResolver):
    def __init__(self, lookup: Callable[[str], Participant | None]) -> None:
        self._lookup = lookup
        self._cache: dict[str, tuple[str, Ed25519PublicKey]] = {}

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        participant = self._lookup(key_id)
        if participant is None:
            return None
        cached = self._cache.get(key_id)
        if cached is None or cached[0] != participant.public_key:
            cached = (participant.public_key, decode_public_key(participant.public_key))
            self._cache[key_id] = cached
        return cached[1]

    def resolve_private_key(self, key_id: str) -> NoReturn:  # the broker never signs requests
        raise KeyError(key_id)


class _Verifier(HTTPMessageVerifier):
    max_clock_skew = dt.timedelta(seconds=MAX_CLOCK_SKEW_SECONDS)


# As the signature base names them. Checked on the verified result rather than with the library's
# ``require_components``, which parses both lists again as structured fields on every request.
REQUIRED_COVERAGE = frozenset(f'"{component}"' for component in COVERED_COMPONENTS)


class RequestVerifier:
    """Checks one request: signature over the covered components and body, freshness, nonce.

    The checks are CPU work done on the caller's event loop; only the nonce is awaited (the store's).
    """

    def __init__(
        self,
        lookup: Callable[[str], Participant | None],
        remember_nonce: Callable[[str, str, dt.datetime], Awaitable[bool]],
    ) -> None:
        self._lookup = lookup
        self._remember_nonce = remember_nonce
        self._verifier = _Verifier(signature_algorithm=algorithms.ED25519, key_resolver=_RegistryKeys(lookup))

    async def verify(
        self, *, method: str, raw_path: str, query: str, headers: list[tuple[str, str]], body: bytes
    ) -> Caller:
        names = {name.lower() for name, _ in headers}
        if "signature" not in names or "signature-input" not in names:
            raise AuthError("auth.unsigned", "request is not signed (RFC 9421 Signature headers missing)")
        view = MessageView(
            method=method.upper(), url=url_for_signature(raw_path, query), headers=ReadOnlyHeaders(headers)
        )
        try:
            results = self._verifier.verify(
                view,
                max_age=dt.timedelta(seconds=MAX_AGE_SECONDS),
                expect_tag=SIGNATURE_TAG,
                body=body,
            )
        except HTTPMessageSignaturesException as exc:
            raise AuthError("auth.signature", f"signature rejected: {exc}") from exc
        if len(results) != 1:
            raise AuthError("auth.signature", "exactly one broker signature is expected")
        result = results[0]
        uncovered = REQUIRED_COVERAGE.difference(result.covered_components)
        if uncovered:
            raise AuthError("auth.signature", f"the signature must cover {', '.join(sorted(uncovered))}")
        kid = str(result.parameters.get("keyid"))
        participant = self._lookup(kid)
        if participant is None:  # pragma: no cover - the key resolver already refused
            raise AuthError("auth.unknown_key", f"unknown key id {kid!r}")
        nonce = result.nonce
        if not nonce or len(nonce) < 16 or len(nonce) > 128:
            raise AuthError("auth.nonce", "signature must carry a nonce of 16 to 128 characters")
        created = dt.datetime.fromtimestamp(int(result.parameters["created"]), tz=dt.UTC)
        keep_until = created + dt.timedelta(seconds=MAX_AGE_SECONDS + 2 * MAX_CLOCK_SKEW_SECONDS)
        if not await self._remember_nonce(kid, nonce, keep_until):
            raise AuthError("auth.replay", "this signature nonce was already used (replayed request)")
        return Caller(kid=participant.kid, role=participant.role, site=participant.site)
