"""The participant registry (admin): who may call, with which key, role and site."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam

from contracts.broker_api import IDENT_PATTERN, EventRemoved, ParticipantIn, ParticipantOut
from trust_broker.auth.verification import Caller
from trust_broker.roles import Role
from trust_broker.service.deps import Context, require
from trust_broker.service.routers._responses import errors
from trust_broker.store.records import NotFound, Participant, StoreError

router = APIRouter(tags=["participants"])


def _out(p: Participant) -> ParticipantOut:
    return ParticipantOut(kid=p.kid, role=p.role.value, site=p.site, public_key=p.public_key)


@router.get(
    "/v1/participants",
    response_model=list[ParticipantOut],
    summary="Registered participants and their public keys",
    responses=errors(403),
)
def list_participants(
    ctx: Context, _caller: Annotated[Caller, Depends(require(Role.ADMIN, Role.AUDITOR))]
) -> list[ParticipantOut]:
    return [_out(p) for p in ctx.store.participants()]


@router.post(
    "/v1/participants",
    status_code=201,
    response_model=ParticipantOut,
    summary="Register or update a participant (admin)",
    responses=errors(403),
)
def register_participant(
    body: ParticipantIn, ctx: Context, caller: Annotated[Caller, Depends(require(Role.ADMIN))]
) -> ParticipantOut:
    role = Role(body.role)
    if (role is Role.NODE) != bool(body.site):
        raise StoreError("request.invalid", "site: required for a node and only for a node", status=422)
    if body.kid == ctx.broker_kid:
        raise StoreError("participant.reserved", f"kid {body.kid} is the broker's own", status=403)
    existing = ctx.store.participant(body.kid)
    if role is Role.NODE or (existing is not None and existing.role is Role.NODE):
        # A node acts for its site's people: its key comes from the site's provisioning (the
        # participants file the broker reads at start, owned by the broker's operator), never from an
        # admin's request — an admin could otherwise register a key and act for any site.
        raise StoreError(
            "participant.node_by_provisioning",
            "node keys are registered from the provisioned participants file only, not by an admin",
            status=403,
        )
    try:
        from trust_broker.provision.keys import decode_public_key

        decode_public_key(body.public_key)
    except ValueError as exc:
        raise StoreError("request.invalid", f"public_key: {exc}", status=422) from exc
    participant = Participant(kid=body.kid, role=role, site=body.site, public_key=body.public_key)
    ctx.store.register_participant(participant, actor=caller.kid)
    return _out(participant)


@router.delete(
    "/v1/participants/{kid}",
    response_model=EventRemoved,
    summary="Remove a participant's key (admin); it is refused from the next request on",
    responses=errors(403, 404),
)
def remove_participant(
    kid: Annotated[str, PathParam(pattern=IDENT_PATTERN)],
    ctx: Context,
    caller: Annotated[Caller, Depends(require(Role.ADMIN))],
) -> EventRemoved:
    if kid == caller.kid:
        raise StoreError("participant.self", "an admin cannot remove its own key", status=403)
    if not ctx.store.remove_participant(kid, actor=caller.kid):
        raise NotFound("participant.unknown", f"no participant {kid}")
    return EventRemoved(kid=kid, removed=True)
