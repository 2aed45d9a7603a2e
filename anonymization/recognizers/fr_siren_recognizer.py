"""FR_SIREN: 9-digit company identifiers by their shape (Luhn only raises the score); never the first
9 digits of a SIRET, never an amount (250 000 000 €)."""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

from anonymization.checksums import siren_valid
from anonymization.identifiers.base import IdentifierType
from anonymization.recognizers.fr_identifier_shape_recognizer import NOT_A_QUANTITY

SEP = r"[ \u00a0\u202f.]"


class FrSirenRecognizer(PatternRecognizer):
    """Recognize SIRENs written 732829320 or 732 829 320."""

    COUNTRY_CODE = "fr"
    PATTERNS = [
        Pattern(
            "SIREN",
            rf"(?<![\w.\-])(?<!\d{SEP})\d{{3}}{SEP}?\d{{3}}{SEP}?\d{{3}}(?!\w)(?![ .\-]?\d){NOT_A_QUANTITY}",
            0.6,
        ),
    ]
    CONTEXT = ["siren", "entreprise", "employeur", "société", "societe", "rcs"]

    def __init__(self, supported_language: str = "fr", supported_entity: str = "FR_SIREN") -> None:
        super().__init__(
            supported_entity=supported_entity,
            patterns=list(self.PATTERNS),
            context=self.CONTEXT,
            supported_language=supported_language,
            name="FrSirenRecognizer",
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        """Luhn over the 9 digits makes it certain; a failed Luhn keeps the shape's score."""
        return True if siren_valid(IdentifierType.compact(pattern_text)) else None
