"""A partner's side of Flower's deployment engine: the site's SuperNode."""

from node_agent.deployment.supernode import DEFAULT_RUNTIME_PORT, SuperNodeSettings

__all__ = ["DEFAULT_RUNTIME_PORT", "SuperNodeSettings"]
