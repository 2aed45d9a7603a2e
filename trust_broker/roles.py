"""Participant roles live in ``contracts.roles`` (nodes and the coordinator name them too); the
broker's modules keep this import path."""

from contracts.roles import Role

__all__ = ["Role"]
