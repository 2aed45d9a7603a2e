"""Identifier types: each one normalizes a raw value to one canonical form, or refuses it."""

from anonymization.identifiers.base import IdentifierType
from anonymization.identifiers.registry import IDENTIFIER_TYPES, get_identifier_type

__all__ = ["IDENTIFIER_TYPES", "IdentifierType", "get_identifier_type"]
