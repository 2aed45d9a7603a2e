"""IBAN_CODE: IBAN-shaped strings (country letters, 2 digits, 11 to 30 letters or digits, in groups or
not, either case); the ISO 13616 mod-97 check only raises the score."""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

from anonymization.checksums import iban_valid
from anonymization.identifiers.base import IdentifierType

SEP = r"[ \u00a0\u202f\-]?"


class FrIbanRecognizer(PatternRecognizer):
    """FR76 3000 6000 0112 3456 7890 189, fr7630006000011234567890189, DE89 3704 0044 0532 0130 00."""

    PATTERNS = [
        Pattern(
            "IBAN",
            rf"(?<![\w\-])(?i:[a-z]{{2}})\d{{2}}(?:{SEP}(?i:[a-z0-9]){{4}}){{2,7}}(?:{SEP}(?i:[a-z0-9]){{1,4}})?(?!\w)",
            0.7,
        )
    ]
    CONTEXT = ["iban", "rib", "bancaire", "banque", "compte", "virement", "coordonnées"]

    def __init__(self, supported_language: str = "fr", supported_entity: str = "IBAN_CODE") -> None:
        super().__init__(
            supported_entity=supported_entity,
            patterns=list(self.PATTERNS),
            context=self.CONTEXT,
            supported_language=supported_language,
            name="FrIbanRecognizer",
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        """At least 11 characters after the check digits, some of them digits; mod 97 makes it certain."""
        compact = IdentifierType.compact(pattern_text)
        if len(compact) < 15 or sum(c.isdigit() for c in compact[4:]) < 6:
            return False
        return True if iban_valid(compact) else None
