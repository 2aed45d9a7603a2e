"""Opt-out (art. 21) and consent (art. 6-1-a) registries: linkage pseudonyms only, listed by cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from contracts.broker_api import (
    IDENT_PATTERN,
    ConsentIn,
    ConsentPage,
    EventRecorded,
    OptOutIn,
    OptOutPage,
)
from trust_broker.auth.verification import Caller
from trust_broker.roles import Role
from trust_broker.service.deps import Context, node_site, require
from trust_broker.service.routers._responses import errors

router = APIRouter(tags=["registries"])
Since = Annotated[
    int, Query(ge=0, le=2**31 - 1, description="cursor from the previous page; 0 for the start")
]
Limit = Annotated[int, Query(ge=1, le=5000)]
READERS = (Role.NODE, Role.ADMIN, Role.AUDITOR)


@router.post(
    "/v1/optouts",
    status_code=201,
    response_model=EventRecorded,
    summary="Record a person's objection, by linkage pseudonym (node, for its own site)",
    responses=errors(403),
)
def add_opt_out(
    body: OptOutIn, ctx: Context, caller: Annotated[Caller, Depends(require(Role.NODE))]
) -> EventRecorded:
    seq = ctx.store.add_opt_out(
        body.linkage_pseudonym, body.purpose, site=node_site(caller), actor=caller.kid
    )
    return EventRecorded(seq=seq)


@router.get(
    "/v1/optouts",
    response_model=OptOutPage,
    summary="Opt-outs recorded after a cursor; pass the returned cursor next time",
    responses=errors(403),
)
def list_opt_outs(
    ctx: Context,
    caller: Annotated[Caller, Depends(require(*READERS))],
    since: Since = 0,
    limit: Limit = 5000,
) -> OptOutPage:
    page = ctx.store.opt_outs(since, limit)
    return OptOutPage.model_validate({"items": _as_seen_by(caller, page.items), "cursor": page.cursor})


def _as_seen_by(caller: Caller, items: list[dict[str, object]]) -> list[dict[str, object]]:
    """A node learns which pseudonyms objected (or consented) and for which purpose: what it needs to
    leave their records out. Not the site that recorded it nor when: with the shared linkage key, a
    node matching a pseudonym to one of its own people would otherwise learn that this person is
    also registered at that other institution, and when they went there."""
    if caller.role is not Role.NODE:
        return items
    return [{key: value for key, value in item.items() if key not in ("site", "at")} for item in items]


@router.post(
    "/v1/consents",
    status_code=201,
    response_model=EventRecorded,
    summary="Record a consent given or withdrawn for a consent-based purpose (node, for its own site)",
    responses=errors(403, 503),
)
def record_consent(
    body: ConsentIn, ctx: Context, caller: Annotated[Caller, Depends(require(Role.NODE))]
) -> EventRecorded:
    seq = ctx.store.record_consent(
        body.linkage_pseudonym, body.purpose, body.action, site=node_site(caller), actor=caller.kid
    )
    return EventRecorded(seq=seq)


@router.get(
    "/v1/consents",
    response_model=ConsentPage,
    summary="Consent entries after a cursor (the latest entry per pseudonym and purpose wins)",
    responses=errors(403),
)
def list_consents(
    ctx: Context,
    caller: Annotated[Caller, Depends(require(*READERS))],
    since: Since = 0,
    limit: Limit = 5000,
    purpose: Annotated[str | None, Query(pattern=IDENT_PATTERN)] = None,
) -> ConsentPage:
    page = ctx.store.consents(since, limit, purpose)
    return ConsentPage.model_validate({"items": _as_seen_by(caller, page.items), "cursor": page.cursor})
