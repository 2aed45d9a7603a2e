"""FR_SIRET: 14-digit establishment identifier, Luhn-checked (La Poste's exception included)."""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

from anonymization.checksums import siret_valid
from anonymization.identifiers.base import IdentifierType

SEP = r"[ \u00a0\u202f.]?"


class FrSiretRecognizer(PatternRecognizer):
    """Recognize SIRETs written 73282932000074 or 732 829 320 00074."""

    COUNTRY_CODE = "fr"
    PATTERNS = [Pattern("SIRET", rf"(?<!\w)\d{{3}}{SEP}\d{{3}}{SEP}\d{{3}}{SEP}\d{{5}}(?!\w)", 0.5)]
    CONTEXT = ["siret", "établissement", "etablissement", "entreprise", "employeur", "société", "societe"]

    def __init__(self, supported_language: str = "fr", supported_entity: str = "FR_SIRET") -> None:
        super().__init__(
            supported_entity=supported_entity,
            patterns=list(self.PATTERNS),
            context=self.CONTEXT,
            supported_language=supported_language,
            name="FrSiretRecognizer",
        )

    def validate_result(self, pattern_text: str) -> bool:
        """Luhn over the 14 digits."""
        return siret_valid(IdentifierType.compact(pattern_text))
