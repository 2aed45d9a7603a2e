"""The Region's side of Flower's deployment engine: SuperLink, SuperNode registration, study runs."""

from coordinator.deployment.control import (
    DeploymentError,
    RegisteredSuperNode,
    RunOutcome,
    SuperLinkControl,
    build_app_bundle,
)
from coordinator.deployment.processes import (
    ManagedProcess,
    ProcessSupervisor,
    free_port,
    wait_for_tls_port,
)
from coordinator.deployment.superlink import DEFAULT_SUPERLINK_PORT, SuperLinkSettings, SuperLinkTls

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
