"""The interface of an identifier type."""

from __future__ import annotations

from abc import ABC, abstractmethod

from anonymization.errors import InvalidIdentifierError

# Characters people put inside identifiers when they write them by hand.
SEPARATORS = str.maketrans("", "", " \u00a0\u202f\t.-_/")


class IdentifierType(ABC):
    """A kind of direct identifier (NIR, SIRET, e-mail, …).

    `name` is also the HMAC domain tag: two identifier types never share pseudonyms even when their
    normalized values happen to be equal strings.
    """

    name: str

    @abstractmethod
    def normalize(self, raw: str) -> str:
        """Return the canonical form of `raw`, or raise InvalidIdentifierError naming the failed rule."""

    def reject(self, rule: str) -> InvalidIdentifierError:
        """Build the error for a failed rule (the value is deliberately not part of it)."""
        return InvalidIdentifierError(self.name, rule)

    @staticmethod
    def compact(raw: str) -> str:
        """Drop the separators people write inside identifiers, and upper-case."""
        return raw.translate(SEPARATORS).upper()
