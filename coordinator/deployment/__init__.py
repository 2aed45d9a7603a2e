"""The Region's side of Flower's deployment engine: SuperLink, SuperNode registration, study runs."""

import importlib
from typing import Any

#: Loaded on first use (PEP 562): `r2dde coordinator --help` must not import Flower.
_WHERE = {
    "DeploymentError": "control",
    "RegisteredSuperNode": "control",
    "RunOutcome": "control",
    "SuperLinkControl": "control",
    "build_app_bundle": "control",
    "ManagedProcess": "processes",
    "ProcessSupervisor": "processes",
    "free_port": "processes",
    "wait_for_tls_port": "processes",
    "DEFAULT_SUPERLINK_PORT": "superlink",
    "SuperLinkSettings": "superlink",
    "SuperLinkTls": "superlink",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


__all__ = [
    "DEFAULT_SUPERLINK_PORT",
    "DeploymentError",
    "ManagedProcess",
    "ProcessSupervisor",
    "RegisteredSuperNode",
    "RunOutcome",
    "SuperLinkControl",
    "SuperLinkSettings",
    "SuperLinkTls",
    "build_app_bundle",
    "free_port",
    "wait_for_tls_port",
]
