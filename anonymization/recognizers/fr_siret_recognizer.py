"""FR_SIRET: 14-digit establishment identifiers by their shape; Luhn only raises the score.

A SIRET mistyped by one digit fails Luhn and still points at one employer (often a one-person business):
it is removed whatever its checksum.
"""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

from anonymization.checksums import siret_valid
from anonymization.identifiers.base import IdentifierType

SEP = r"[ \u00a0\u202f.\-]?"


class FrSiretRecognizer(PatternRecognizer):
    """Recognize SIRETs written 73282932000074, 732 829 320 00074 or 732.829.320.00074."""

    COUNTRY_CODE = "fr"
    PATTERNS = [
        Pattern(
            "SIRET",
            rf"(?<![\w.\-])(?<!\d[ \u00a0\u202f])\d{{3}}{SEP}\d{{3}}{SEP}\d{{3}}{SEP}\d{{5}}"
            rf"(?!\w)(?![ .\-]?\d)",
            0.7,
        )
    ]
    CONTEXT = ["siret", "établissement", "etablissement", "entreprise", "employeur", "société", "societe"]

    def __init__(self, supported_language: str = "fr", supported_entity: str = "FR_SIRET") -> None:
        super().__init__(
            supported_entity=supported_entity,
            patterns=list(self.PATTERNS),
            context=self.CONTEXT,
            supported_language=supported_language,
            name="FrSiretRecognizer",
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        """Luhn (La Poste's exception included) makes it certain; a failed Luhn keeps the shape's score."""
        return True if siret_valid(IdentifierType.compact(pattern_text)) else None
