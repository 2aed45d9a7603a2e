"""Participant roles: what each kind of caller may ask the broker."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A participant's role; each endpoint admits a fixed set of them."""

    REGION = "region"  # the Region's coordinator: asks for studies, revokes them
    NODE = "node"  # a partner's node agent: opt-outs, consents, budget, reports, for its own site only
    AUDITOR = "auditor"  # reads the audit export
    ADMIN = "admin"  # operates the broker: everything but acting as a node
