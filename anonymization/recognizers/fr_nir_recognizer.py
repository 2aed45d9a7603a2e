"""FR_NIR: French social security numbers by their shape, however spaced, whatever their key.

The key (97 - first 13 digits mod 97) only raises the score: a NIR with a typo in its key, or written
without it (13 digits), still identifies a person and is removed.
"""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

from anonymization.identifiers.base import IdentifierType
from anonymization.identifiers.nir import nir_is_valid

SEP = r"(?:[ \u00a0\u202f]{1,2}|[.\-])?"


class FrNirRecognizer(PatternRecognizer):
    """1 85 05 78 006 084 36, 185057800608436, 1.85.05.78.006.084, 2 91 12 2A 004 123 45."""

    COUNTRY_CODE = "fr"
    PATTERNS = [
        Pattern(
            "NIR (grouped or compact, key optional)",
            rf"(?<![\w.\-])(?<!\d[ \u00a0\u202f])[1-8]{SEP}\d{{2}}{SEP}\d{{2}}{SEP}"
            rf"(?:\d{{2}}|2[ABab]){SEP}\d{{3}}"
            rf"{SEP}\d{{3}}(?:{SEP}\d{{2}})?(?![\w])(?![ .\-]?\d)",
            0.7,
        ),
    ]
    CONTEXT = ["sécurité", "securite", "sociale", "nir", "insee", "sécu", "secu", "vitale", "immatriculation"]

    def __init__(self, supported_language: str = "fr", supported_entity: str = "FR_NIR") -> None:
        super().__init__(
            supported_entity=supported_entity,
            patterns=list(self.PATTERNS),
            context=self.CONTEXT,
            supported_language=supported_language,
            name="FrNirRecognizer",
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        """A right key makes it certain; a wrong or missing key keeps the shape's score (still removed)."""
        return True if nir_is_valid(IdentifierType.compact(pattern_text)) else None
