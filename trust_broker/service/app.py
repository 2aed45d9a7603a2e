"""The FastAPI application factory of the trust broker."""

from __future__ import annotations

import gc
import os
from pathlib import Path

from fastapi import FastAPI

from trust_broker.service.context import BrokerContext, BrokerSettings
from trust_broker.service.errors import install_error_handlers
from trust_broker.service.limits import BodySizeLimit
from trust_broker.service.routers import ROUTERS

DESCRIPTION = """\
The R2DDE trust broker ("tiers de confiance"): decides which studies may run on the partners'
data (purposes, site policies), signs grants (compact JWS, EdDSA), keeps the registries of
opt-outs and consents (linkage pseudonyms only), the privacy-budget ledger (RDP composition per
site, dataset and period) and a hash-chained, signed audit log.

Every endpoint but `/v1/health` needs an RFC 9421 HTTP Message Signature made with the caller's
registered Ed25519 key (see the `HTTPMessageSignature` security scheme); each endpoint admits only
some roles (region, node, auditor, admin) and a node acts only for its own site.
Errors are JSON `{rule, detail}` with a stable `rule` id.
"""


def create_app(context: BrokerContext) -> FastAPI:
    """An app bound to one broker context (store, policies, keys, settings)."""
    app = FastAPI(title="R2DDE trust broker", version="1.0.0", description=DESCRIPTION)
    app.state.context = context
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(BodySizeLimit, max_bytes=context.settings.max_body_bytes)
    return app


def freeze_startup_heap() -> None:
    """Exempt what start-up allocated from the garbage collector's full passes.

    Start-up leaves a few hundred thousand long-lived objects (FastAPI, SQLAlchemy, NumPy, SciPy; torch
    too before issue 17); every full collection walked all of them, a 130 ms pause for every request
    in flight (the broker benchmark's p99). Objects created while serving are collected as usual.
    """
    gc.collect()
    gc.freeze()


ENV_DB = "R2DDE_BROKER_DB"
ENV_KEYS = "R2DDE_BROKER_KEYS"
ENV_POLICIES = "R2DDE_BROKER_POLICIES"
ENV_SIGN_HEADS_EVERY = "R2DDE_BROKER_SIGN_HEADS_EVERY"


def app_from_environment() -> FastAPI:
    """Factory for uvicorn worker processes (``serve --workers N``): configuration comes from the
    environment the parent set, and the parent already migrated the database."""
    policies = os.environ.get(ENV_POLICIES)
    context = BrokerContext.from_config(
        os.environ[ENV_DB],
        Path(os.environ[ENV_KEYS]),
        Path(policies) if policies else None,
        settings=BrokerSettings(sign_heads_every=int(os.environ.get(ENV_SIGN_HEADS_EVERY, "1"))),
        prepare=False,
    )
    return create_app(context)
