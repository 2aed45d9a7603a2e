"""Error answers: a stable rule and a sentence, never a traceback and never a request body in logs."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from trust_broker.auth.verification import AuthError
from trust_broker.grants import GrantError
from trust_broker.store.group_commit import WriterClosed
from trust_broker.store.records import StoreError

log = logging.getLogger("trust_broker.service")

COMMON_RESPONSES: dict[int | str, dict[str, object]] = {}


def error_json(status: int, rule: str, detail: str, **extra: object) -> JSONResponse:
    return JSONResponse(status_code=status, content={"rule": rule, "detail": detail, **extra})


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = len(exc.errors()) - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AuthError)
    async def _auth(_request: Request, exc: AuthError) -> JSONResponse:
        headers = (
            {"WWW-Authenticate": 'HTTPMessageSignature realm="r2dde-broker"'} if exc.status == 401 else None
        )
        response = error_json(exc.status, exc.rule, exc.detail)
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(StoreError)
    async def _store(_request: Request, exc: StoreError) -> JSONResponse:
        return error_json(exc.status, exc.rule, exc.detail)

    @app.exception_handler(WriterClosed)
    async def _stopping(_request: Request, _exc: WriterClosed) -> JSONResponse:
        return error_json(503, "broker.stopping", "the broker is stopping; retry in a moment")

    @app.exception_handler(GrantError)
    async def _grant(_request: Request, exc: GrantError) -> JSONResponse:
        return error_json(403, exc.rule, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_json(422, "request.invalid", _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        rule = {404: "request.not_found", 405: "request.method", 413: "request.too_large"}.get(
            exc.status_code, "request.error"
        )
        return error_json(exc.status_code, rule, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
        return error_json(500, "internal", "internal error; the broker logged it")
