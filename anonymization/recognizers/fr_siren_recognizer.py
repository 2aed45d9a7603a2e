"""FR_SIREN: 9-digit company identifier, Luhn-checked; never the first 9 digits of a SIRET."""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

from anonymization.checksums import siren_valid
from anonymization.identifiers.base import IdentifierType

SEP = r"[ \u00a0\u202f.]"


class FrSirenRecognizer(PatternRecognizer):
    """Recognize SIRENs written 732829320 or 732 829 320."""

    COUNTRY_CODE = "fr"
    PATTERNS = [
        Pattern("SIREN", rf"(?<!\w)(?<!\d{SEP})\d{{3}}{SEP}?\d{{3}}{SEP}?\d{{3}}(?!\w)(?!{SEP}\d)", 0.5),
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

    def validate_result(self, pattern_text: str) -> bool:
        """Luhn over the 9 digits."""
        return siren_valid(IdentifierType.compact(pattern_text))
