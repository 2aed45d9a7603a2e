"""Liveness and what the broker runs with (policy digests, broker key); no authentication."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from contracts.broker_api import Health
from trust_broker.provision.keys import encode_public_key
from trust_broker.service.deps import Context

router = APIRouter(tags=["health"])


@router.get("/v1/health", response_model=Health, summary="Broker health and loaded policies")
async def health(ctx: Context) -> Health:
    participants = await run_in_threadpool(ctx.store.participants)
    return Health(
        status="ok",
        database=ctx.database_name,
        participants=len(participants),
        policies=ctx.policy_digests(),
        broker_kid=ctx.broker_kid,
        broker_public_key=encode_public_key(ctx.broker_public_key),
    )
