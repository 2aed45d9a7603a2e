"""Errors that name the file, row, field and rule, and never carry an identifier's value."""

from __future__ import annotations


class AnonymizationError(Exception):
    """Base of every error raised by the anonymization package."""


class LinkageKeyError(AnonymizationError):
    """The linkage key is missing, malformed, or stored with loose permissions."""


class ConfigError(AnonymizationError):
    """A table configuration is invalid or does not match the table it is applied to."""


class InvalidIdentifierError(AnonymizationError, ValueError):
    """An identifier failed normalization or its checksum.

    Only the identifier *type* and the failed *rule* are kept: the value itself must never reach an
    error message, a log or a report.
    """

    def __init__(self, kind: str, rule: str) -> None:
        super().__init__(f"invalid {kind}: {rule}")
        self.kind = kind
        self.rule = rule
