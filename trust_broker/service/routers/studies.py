"""Studies: request → decision → grant; revocation; grant status for nodes; node reports."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from contracts.broker_api import (
    IDENT_PATTERN,
    EventRecorded,
    GrantResponse,
    GrantStatus,
    NodeReportIn,
    RevokeIn,
)
from policies import Decision, Reason, StudyRequest, decide
from policies.decide import decision_digest
from trust_broker.auth.verification import Caller
from trust_broker.grants import Grant, issue_grant
from trust_broker.ledger import period_of
from trust_broker.roles import Role
from trust_broker.service.context import BrokerContext
from trust_broker.service.deps import Context, node_site, require
from trust_broker.service.routers._responses import errors
from trust_broker.store.records import NotFound, StoreError, StudyRecord

router = APIRouter(tags=["studies"])
StudyId = Annotated[str, Path(pattern=IDENT_PATTERN)]


def _spent(ctx: BrokerContext, request: StudyRequest, now: dt.datetime) -> dict[str, float]:
    """ε a new grant cannot have on each requested site's dataset account this period: what was spent
    by studies that ended, plus every live grant's whole share (a grant holds its budget from issue)."""
    spent: dict[str, float] = {}
    for site in request.sites:
        policy = ctx.site_policies.get(site)
        if policy is None:
            continue
        period = period_of(now, policy.budget_period)
        spent[site] = ctx.store.held_epsilon(site, request.dataset, period, request.delta, now)
    return spent


def _refusal(status: int, rule: str, detail: str, reasons: list[Reason]) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"rule": rule, "detail": detail, "reasons": [r.model_dump(mode="json") for r in reasons]},
    )


@router.post(
    "/v1/studies",
    status_code=201,
    response_model=GrantResponse,
    summary="Ask for a study; 201 with a signed grant, or 403 with every refusing rule",
    description=(
        "Region role. The broker evaluates `policies.decide()` against the purpose, each site's policy and "
        "what each site's dataset account already spent this period. `requested_by` becomes the caller's kid."
    ),
    responses=errors(403, 409),
)
def request_study(
    body: StudyRequest, ctx: Context, caller: Annotated[Caller, Depends(require(Role.REGION))]
) -> GrantResponse | JSONResponse:
    for name in ("study_id", "purpose_id", "dataset", "task", "coordinator"):
        if not re.fullmatch(IDENT_PATTERN, getattr(body, name)):
            raise StoreError("request.invalid", f"{name}: must match {IDENT_PATTERN}", status=422)
    for name in ("sites", "fields"):
        if any(not re.fullmatch(IDENT_PATTERN, v) for v in getattr(body, name)):
            raise StoreError("request.invalid", f"{name}: every entry must match {IDENT_PATTERN}", status=422)
    request = body.model_copy(update={"requested_by": caller.kid})
    with ctx.grant_lock:  # two requests in this process cannot both be granted the same budget
        return _decide_and_record(ctx, request, caller)


def _decide_and_record(
    ctx: BrokerContext, request: StudyRequest, caller: Caller
) -> GrantResponse | JSONResponse:
    if ctx.store.study(request.study_id) is not None:
        raise StoreError("study.exists", f"study {request.study_id} already exists")
    now = dt.datetime.now(dt.UTC)
    purpose = ctx.purposes.get(request.purpose_id)
    if purpose is None:
        reason = Reason(
            rule="purpose.known", subject=request.purpose_id, detail="no such purpose is declared"
        )
        decision = Decision(allowed=False, reasons=(reason,), delta=request.delta, policy_digest="")
    else:
        decision = decide(request, purpose, ctx.site_policies, spent=_spent(ctx, request, now))
    grant: Grant | None = None
    jws: str | None = None
    if decision.allowed:
        assert purpose is not None
        grant = Grant(
            study_id=request.study_id,
            purpose=request.purpose_id,
            policy_digest=decision.policy_digest or decision_digest(request, purpose, ctx.site_policies),
            task=request.task,
            dataset=request.dataset,
            fields=request.fields,
            sites=request.sites,
            epsilon={site: decision.per_site_epsilon[site] for site in request.sites},
            delta=decision.delta,
            dp_bounds=ctx.settings.dp_bounds,
            rounds=request.rounds,
            evaluation=purpose.evaluation,
            min_cell_size=purpose.min_cell_size,
            coordinator=request.coordinator,
            issued_at=now.replace(microsecond=0),
            expires_at=(now + ctx.settings.grant_ttl).replace(microsecond=0),
            kid=ctx.broker_kid,
        )
        jws = issue_grant(grant, ctx.broker_key, kid=ctx.broker_kid)
    ctx.store.record_study(
        StudyRecord(
            study_id=request.study_id,
            status="granted" if decision.allowed else "refused",
            purpose=request.purpose_id,
            dataset=request.dataset,
            requested_by=caller.kid,
            request=request.model_dump(mode="json"),
            decision=decision.model_dump(mode="json"),
            grant_jws=jws,
            grant=grant.to_claims() if grant else None,
            created_at=now,
            expires_at=grant.expires_at if grant else None,
        ),
        actor=caller.kid,
    )
    if grant is None or jws is None:
        rules = ", ".join(sorted({r.rule for r in decision.reasons}))
        return _refusal(403, decision.reasons[0].rule, f"study refused by {rules}", list(decision.reasons))
    return GrantResponse(study_id=request.study_id, grant=jws, claims=grant, decision=decision)


def _status(study: StudyRecord) -> GrantStatus:
    status = study.status
    if status == "granted" and study.expires_at is not None and study.expires_at <= dt.datetime.now(dt.UTC):
        status = "expired"  # a grant past its expiry no longer stands, whatever its row says
    return GrantStatus(
        study_id=study.study_id,
        status=status,  # type: ignore[arg-type]
        expires_at=study.expires_at,
        revoked_at=study.revoked_at,
        reason=study.revoke_reason,
    )


@router.post(
    "/v1/studies/{study_id}/revoke",
    response_model=GrantStatus,
    summary="Revoke a study's grant (nodes stop at their next status check)",
    responses=errors(403, 404, 409),
)
def revoke_study(
    study_id: StudyId,
    body: RevokeIn,
    ctx: Context,
    caller: Annotated[Caller, Depends(require(Role.REGION, Role.ADMIN))],
) -> GrantStatus:
    study = ctx.store.study(study_id)
    if study is None:
        raise NotFound("study.unknown", f"no study {study_id}")
    if caller.role is Role.REGION and study.requested_by != caller.kid:
        raise StoreError("auth.owner", f"study {study_id} was requested by another participant", status=403)
    return _status(ctx.store.revoke_study(study_id, actor=caller.kid, reason=body.reason))


@router.get(
    "/v1/grants/{study_id}/status",
    response_model=GrantStatus,
    summary="Whether a grant still stands (nodes check revocation here)",
    responses=errors(403, 404),
)
def grant_status(
    study_id: StudyId,
    ctx: Context,
    caller: Annotated[Caller, Depends(require(Role.NODE, Role.REGION, Role.AUDITOR, Role.ADMIN))],
) -> GrantStatus:
    study = ctx.store.study(study_id)
    if study is None:
        raise NotFound("study.unknown", f"no study {study_id}")
    if (
        caller.role is Role.NODE
        and study.grant is not None
        and caller.site not in study.grant.get("sites", [])
    ):
        raise StoreError("grant.site", f"site {caller.site} is not listed in study {study_id}", status=403)
    return _status(study)


@router.post(
    "/v1/studies/{study_id}/reports",
    status_code=201,
    response_model=EventRecorded,
    summary="A node's per-site counters for a round, recorded in the audit chain",
    responses=errors(403, 404),
)
def post_node_report(
    study_id: StudyId,
    body: NodeReportIn,
    ctx: Context,
    caller: Annotated[Caller, Depends(require(Role.NODE))],
) -> EventRecorded:
    site = node_site(caller)
    study = ctx.store.study(study_id)
    if study is None:
        raise NotFound("study.unknown", f"no study {study_id}")
    if study.grant is None or site not in study.grant.get("sites", []):
        raise StoreError("grant.site", f"site {site} is not listed in study {study_id}", status=403)
    if study.status == "revoked":
        raise StoreError("grant.revoked", f"the grant of study {study_id} was revoked", status=403)
    seq = ctx.store.record_node_report(study_id, site, body.model_dump(mode="json"), actor=caller.kid)
    return EventRecorded(seq=seq)
