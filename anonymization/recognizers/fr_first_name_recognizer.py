"""PERSON (first name alone): "Julie a rappelé", "rencontre avec Karim" — a known French first name on
its own, which the small NER model mostly misses.

Only first names given at least 500 times in France since 1900 (INSEE) count, minus the few that are
also everyday capitalized words in job texts and notes (Marine, France, Avril, Rose, …).
"""

from __future__ import annotations

import regex as re
from presidio_analyzer import Pattern, PatternRecognizer

from anonymization.recognizers.fr_person_recognizer import AMBIGUOUS, NOT_NAMES, fold

TITLE_WORD = r"[A-ZÀ-Ý][a-zà-ÿ]+(?:-[A-ZÀ-Ý][a-zà-ÿ]+)*"


class FrFirstNameRecognizer(PatternRecognizer):
    """A capitalized word that is a common French first name and not an everyday word."""

    COUNTRY_CODE = "fr"

    def __init__(
        self,
        first_names: frozenset[str] = frozenset(),
        supported_language: str = "fr",
        supported_entity: str = "PERSON",
    ) -> None:
        self.first_names = first_names - AMBIGUOUS - NOT_NAMES
        super().__init__(
            supported_entity=supported_entity,
            patterns=[Pattern("first name alone", rf"(?<![\w\-]){TITLE_WORD}(?![\w\-])", 0.6)],
            context=None,
            supported_language=supported_language,
            name="FrFirstNameRecognizer",
            global_regex_flags=re.DOTALL | re.MULTILINE,
        )

    def validate_result(self, pattern_text: str) -> bool:
        """In the first-name dictionary, after removing ambiguous words."""
        return fold(pattern_text) in self.first_names
