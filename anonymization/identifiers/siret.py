"""SIREN (9 digits) and SIRET (14 digits) company identifiers, both Luhn-checked."""

from __future__ import annotations

from anonymization.checksums import siren_valid, siret_valid
from anonymization.identifiers.base import IdentifierType


class SirenIdentifier(IdentifierType):
    """SIREN of a legal unit."""

    name = "siren"

    def normalize(self, raw: str) -> str:
        compact = self.compact(raw)
        if len(compact) != 9 or not compact.isdigit():
            raise self.reject("a SIREN has 9 digits")
        if not siren_valid(compact):
            raise self.reject("SIREN fails the Luhn check")
        return compact


class SiretIdentifier(IdentifierType):
    """SIRET of an establishment (SIREN + 5-digit NIC)."""

    name = "siret"

    def normalize(self, raw: str) -> str:
        compact = self.compact(raw)
        if len(compact) != 14 or not compact.isdigit():
            raise self.reject("a SIRET has 14 digits")
        if not siret_valid(compact):
            raise self.reject("SIRET fails the Luhn check")
        return compact
