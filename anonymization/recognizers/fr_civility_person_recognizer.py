"""PERSON (civility rule): the name that follows M., Mme, Madame, Monsieur, Docteur, Maître…"""

from __future__ import annotations

import regex as re
from presidio_analyzer import Pattern, PatternRecognizer

from anonymization.recognizers.fr_person_recognizer import CIVILITY, NAME_WORD, NOT_NAMES, PARTICLE, fold


class FrCivilityPersonRecognizer(PatternRecognizer):
    """Up to three name words after a civility; the civility itself is kept in the text."""

    COUNTRY_CODE = "fr"
    PATTERNS = [
        Pattern(
            "name after civility",
            rf"(?<=(?<!\w){CIVILITY}\s+){PARTICLE}?{NAME_WORD}(?:[\s\-]+{PARTICLE}?{NAME_WORD}){{0,2}}(?!\w)",
            0.85,
        )
    ]

    def __init__(self, supported_language: str = "fr", supported_entity: str = "PERSON") -> None:
        super().__init__(
            supported_entity=supported_entity,
            patterns=list(self.PATTERNS),
            context=None,
            supported_language=supported_language,
            name="FrCivilityPersonRecognizer",
            global_regex_flags=re.DOTALL | re.MULTILINE,
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        """Refuse institution or calendar words ("Madame la Directrice" is not a name)."""
        words = pattern_text.split()
        return (
            False
            if any(fold(w) in NOT_NAMES - {"le", "la", "les", "de", "du", "des"} for w in words)
            else None
        )
