"""Authentication and role checks as FastAPI dependencies.

Every endpoint but health declares the roles it admits with ``require(...)``; the caller's
site comes from its registered identity, so a node cannot speak for another site.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from trust_broker.auth.verification import AuthError, Caller
from trust_broker.roles import Role
from trust_broker.service.context import BrokerContext
from trust_broker.service.json_guard import check_json_body

SIGNATURE_SCHEME = APIKeyHeader(
    name="Signature",
    scheme_name="HTTPMessageSignature",
    description=(
        "RFC 9421 HTTP Message Signature with Ed25519 (alg `ed25519`), label `r2dde`, tag `r2dde-broker`, "
        "covering `@method`, `@path`, `@query` and, for bodies, `content-digest` (RFC 9530, sha-256); "
        "parameters `created` (±300 s), `nonce` (single use) and `keyid` (the participant's kid). "
        "Sent together with `Signature-Input` and `Content-Digest`."
    ),
    auto_error=False,
)


async def context_of(request: Request) -> BrokerContext:
    # ``async``: FastAPI would run a plain function dependency in a worker thread, for every request.
    return request.app.state.context  # type: ignore[no-any-return]


Context = Annotated[BrokerContext, Depends(context_of)]


async def authenticate(
    request: Request, ctx: Context, _signature: Annotated[str | None, Security(SIGNATURE_SCHEME)] = None
) -> Caller:
    body = await request.body()
    raw = request.scope.get("raw_path")
    raw_path = raw.decode("latin-1") if raw else quote(request.url.path)
    raw_path = raw_path.split("?", 1)[0]
    query = request.scope.get("query_string", b"").decode("latin-1")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]]
    caller = await ctx.verifier.verify(
        method=request.method, raw_path=raw_path, query=query, headers=headers, body=body
    )
    check_json_body(body)
    return caller


def require(*roles: Role) -> Callable[..., Awaitable[Caller]]:
    """A dependency admitting only ``roles``; any other role gets 403 ``auth.role``."""
    allowed = frozenset(roles)

    async def dependency(caller: Annotated[Caller, Depends(authenticate)]) -> Caller:
        if caller.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise AuthError(
                "auth.role", f"role {caller.role.value} may not call this endpoint ({names} only)", 403
            )
        return caller

    return dependency


def node_site(caller: Caller) -> str:
    """The site a node acts for: the one it was registered with."""
    if caller.role is not Role.NODE or not caller.site:
        raise AuthError("auth.site", "only a node registered for a site may act for a site", 403)
    return caller.site
