"""The ledger's endpoints: reserve, commit, release (nodes, for their own site), balances.

Reserve, commit and release are `async`: they await the store's writer on the event loop, so a burst of
nodes costs queued operations, not parked threads (see `store.group_commit`).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from contracts.broker_api import (
    IDENT_PATTERN,
    BalanceOut,
    CommitIn,
    ReceiptOut,
    ReleaseIn,
    ReservationOut,
    ReserveIn,
)
from trust_broker.auth.verification import Caller
from trust_broker.grants import Grant
from trust_broker.ledger import period_of
from trust_broker.roles import Role
from trust_broker.service.context import BrokerContext
from trust_broker.service.deps import Context, node_site, require
from trust_broker.service.routers._responses import errors
from trust_broker.store.records import ReservationRecord, ReserveRequest, StoreError, granted_claims

router = APIRouter(tags=["budget"])


def _out(record: ReservationRecord) -> ReservationOut:
    return ReservationOut(
        reservation_id=record.reservation_id,
        request_id=record.request_id,
        study_id=record.study_id,
        site=record.site,
        dataset=record.dataset,
        period=record.period,
        status=record.status,  # type: ignore[arg-type]
        mechanism=record.mechanism,
        committed_mechanism=record.committed_mechanism,
        examples=record.examples,
        epsilon_after=record.epsilon_after,
        cap=record.cap,
        expires_at=record.expires_at,
        receipt=None if record.receipt is None else ReceiptOut.model_validate(record.receipt),
    )


async def _standing_grant(ctx: BrokerContext, study_id: str, site: str, now: dt.datetime) -> Grant:
    """The study's grant, if it stands for ``site`` now; the refusal names the rule otherwise.

    A grant's claims never change once issued, only its status: the claims are kept once read, and the
    status is checked again by the store in the reservation's own transaction.
    """
    grant = ctx.issued_grants.get(study_id)
    if grant is None:
        claims = granted_claims(study_id, await ctx.store.grant_state(study_id))
        grant = ctx.issued_grants[study_id] = Grant.from_claims(json.loads(claims), kid=ctx.broker_kid)
    if now > grant.expires_at:
        raise StoreError("grant.expired", f"the grant of study {study_id} expired", status=403)
    if site not in grant.sites:
        raise StoreError("grant.site", f"site {site} is not listed in study {study_id}", status=403)
    return grant


def _check_bounds(grant: Grant, mechanism: dict[str, object]) -> None:
    refusal = grant.mechanism_refusal(mechanism)
    if refusal is not None:
        raise StoreError(*refusal, status=403)


def _account_terms(ctx: BrokerContext, grant: Grant, site: str, now: dt.datetime) -> tuple[str, float]:
    """The account's period label and cap: the lower of the purpose's and the site's ε cap."""
    policy = ctx.site_policies.get(site)
    purpose = ctx.purposes.get(grant.purpose)
    if policy is None or purpose is None:
        raise StoreError(
            "policy.missing", f"no policy loaded for site {site} or purpose {grant.purpose}", status=403
        )
    return period_of(now, policy.budget_period), min(purpose.epsilon_cap_per_period, policy.epsilon_cap)


@router.post(
    "/v1/budget/reserve",
    response_model=ReservationOut,
    summary="Reserve a mechanism's privacy cost on the caller's dataset account (atomic, idempotent)",
    description=(
        "Node role, for its own site. Composes the account's history (committed, pending and expired "
        "reservations) with the new mechanism; 409 `budget.cap` when the composed ε would pass the cap "
        "(lower of purpose and site caps for the period); 409 `budget.study_cap` above the grant's ε. "
        "The same `request_id` always gets the same answer and is never counted twice."
    ),
    responses=errors(403, 404, 409),
)
async def reserve(
    body: ReserveIn, ctx: Context, caller: Annotated[Caller, Depends(require(Role.NODE))]
) -> ReservationOut | JSONResponse:
    site = node_site(caller)
    now = dt.datetime.now(dt.UTC)
    grant = await _standing_grant(ctx, body.study_id, site, now)
    if body.dataset != grant.dataset:
        raise StoreError("grant.dataset", f"study {body.study_id} covers dataset {grant.dataset}", status=403)
    mechanism = body.mechanism.model_dump(mode="json")
    _check_bounds(grant, mechanism)
    period, cap = _account_terms(ctx, grant, site, now)
    record = await ctx.store.reserve(
        ReserveRequest(
            requester=caller.kid,
            request_id=body.request_id,
            study_id=body.study_id,
            site=site,
            dataset=body.dataset,
            period=period,
            mechanism=mechanism,
            examples=body.examples,
            cap=cap,
            study_cap=grant.epsilon_for(site),
            delta=grant.delta,
            ttl=ctx.settings.reservation_ttl,
        )
    )
    if not record.accepted:
        refusal = record.refusal or {}
        return JSONResponse(
            status_code=409,
            content={
                "rule": refusal.get("rule", "budget.cap"),
                "detail": refusal.get("detail", "budget refused"),
                "limit": refusal.get("limit"),
                "value": refusal.get("value"),
                "reservation_id": record.reservation_id,
                "receipt": record.receipt,
            },
        )
    return _out(record)


@router.post(
    "/v1/budget/commit",
    response_model=ReservationOut,
    summary="Record the parameters a reservation actually used (never more than reserved)",
    responses=errors(403, 404, 409),
)
async def commit(
    body: CommitIn, ctx: Context, caller: Annotated[Caller, Depends(require(Role.NODE))]
) -> ReservationOut:
    site = node_site(caller)
    mechanism = body.mechanism.model_dump(mode="json")
    record = await ctx.store.commit(body.reservation_id, mechanism, site=site, actor=caller.kid)
    return _out(record)


@router.post(
    "/v1/budget/release",
    response_model=ReservationOut,
    summary="Give back a reservation that was not used (before it expires)",
    responses=errors(403, 404, 409),
)
async def release(
    body: ReleaseIn, ctx: Context, caller: Annotated[Caller, Depends(require(Role.NODE))]
) -> ReservationOut:
    site = node_site(caller)
    record = await ctx.store.release(body.reservation_id, site=site, actor=caller.kid)
    return _out(record)


@router.get(
    "/v1/budget/balance",
    response_model=BalanceOut,
    summary="ε composed so far by a dataset account this period (a node sees its own site only)",
    responses=errors(403, 404),
)
def balance(
    ctx: Context,
    caller: Annotated[Caller, Depends(require(Role.NODE, Role.REGION, Role.AUDITOR, Role.ADMIN))],
    dataset: Annotated[str, Query(pattern=IDENT_PATTERN)],
    site: Annotated[str | None, Query(pattern=IDENT_PATTERN)] = None,
    purpose: Annotated[str | None, Query(pattern=IDENT_PATTERN)] = None,
    delta: Annotated[float, Query(gt=0.0, lt=1.0)] = 1e-5,
) -> BalanceOut:
    if caller.role is Role.NODE:
        own = node_site(caller)
        if site not in (None, own):
            raise StoreError("auth.site", "a node may only read its own site's accounts", status=403)
        site = own
    if site is None:
        raise StoreError("request.invalid", "site: required for this role", status=422)
    policy = ctx.site_policies.get(site)
    if policy is None:
        raise StoreError("policy.missing", f"no policy loaded for site {site}", status=404)
    cap = policy.epsilon_cap
    if purpose is not None and purpose in ctx.purposes:
        cap = min(cap, ctx.purposes[purpose].epsilon_cap_per_period)
    period = period_of(dt.datetime.now(dt.UTC), policy.budget_period)
    account = ctx.store.balance(site, dataset, period, delta)
    return BalanceOut(
        site=site,
        dataset=dataset,
        period=period,
        epsilon=account.epsilon,
        cap=cap,
        reservations=account.charged,
    )
