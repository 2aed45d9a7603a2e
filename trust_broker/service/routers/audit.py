"""The audit chain as JSON Lines (the policy engineer's export format), for auditors and admins."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from trust_broker.audit.export import write_export
from trust_broker.auth.verification import Caller
from trust_broker.roles import Role
from trust_broker.service.deps import Context, require
from trust_broker.service.routers._responses import errors

router = APIRouter(tags=["audit"])
JSON_LINES = "application/x-ndjson"


def render_export(ctx: Context) -> str:
    """Sign the current head, then write header, events and heads as the export format says."""
    ctx.store.sign_current_head()
    buffer = io.StringIO()
    write_export(
        buffer,
        broker_public_key=ctx.broker_public_key,
        kid=ctx.broker_kid,
        events=ctx.store.audit_events(),
        heads=ctx.store.audit_heads(),
    )
    return buffer.getvalue()


@router.get(
    "/v1/audit/export",
    summary="The whole audit chain with the broker's signed heads, as JSON Lines",
    response_class=Response,
    responses={200: {"content": {JSON_LINES: {}}, "description": "r2dde-audit/1 JSON Lines"}, **errors(403)},
)
def export_audit(
    ctx: Context, _caller: Annotated[Caller, Depends(require(Role.AUDITOR, Role.ADMIN))]
) -> Response:
    return Response(content=render_export(ctx), media_type=JSON_LINES)
