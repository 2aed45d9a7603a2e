"""FR_NIR: French social security number, however it is spaced, accepted only when its key is right."""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

from anonymization.identifiers.base import IdentifierType
from anonymization.identifiers.nir import nir_is_valid

SEP = r"(?:[ \u00a0\u202f]{1,2}|[.\-])?"


class FrNirRecognizer(PatternRecognizer):
    """Recognize NIRs written compact (185057800608436) or grouped (1 85 05 78 006 084 36)."""

    COUNTRY_CODE = "fr"
    PATTERNS = [
        Pattern(
            "NIR (grouped or compact)",
            rf"(?<!\w)[1-478]{SEP}\d{{2}}{SEP}\d{{2}}{SEP}(?:\d{{2}}|2[AB]){SEP}\d{{3}}{SEP}\d{{3}}{SEP}\d{{2}}(?!\w)",
            0.5,
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

    def validate_result(self, pattern_text: str) -> bool:
        """Shape and key mod 97 (Corsica 2A/2B handled): a wrong key is not a NIR."""
        return nir_is_valid(IdentifierType.compact(pattern_text))
