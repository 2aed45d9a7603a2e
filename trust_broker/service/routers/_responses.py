"""OpenAPI documentation of the error answers each endpoint may give."""

from __future__ import annotations

from typing import Any

from contracts.broker_api import ErrorBody


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        401: "unsigned, badly signed, stale or replayed request",
        403: "the caller's role or site may not do this, or a policy / grant refused it",
        404: "no such study or reservation",
        409: "conflicts with the ledger or the current state (e.g. budget.cap)",
        413: "request body above the size limit",
        422: "malformed JSON or a field out of range",
        503: "feature not available on this broker",
    }
    return {code: {"model": ErrorBody, "description": descriptions[code]} for code in (401, 413, 422, *codes)}
