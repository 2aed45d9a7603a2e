"""DATE_OF_BIRTH: a date right after a birth cue (né le, née le, date de naissance, DDN).

Any other date (an appointment, a registration, a contract end) is not a birth date and is left alone:
dates are what the analysis needs, birth dates are what re-identifies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import regex as re
from presidio_analyzer import Pattern, PatternRecognizer, RecognizerResult

if TYPE_CHECKING:
    from presidio_analyzer.nlp_engine import NlpArtifacts

MONTHS = (
    r"janvier|f[ée]vrier|mars|avril|mai|juin|juillet|ao[ûu]t|septembre|octobre|novembre|d[ée]cembre|"
    r"janv\.?|f[ée]vr?\.?|avr\.?|juil\.?|sept?\.?|oct\.?|nov\.?|d[ée]c\.?"
)
BIRTH_CUE = re.compile(
    r"(?:\bn[ée]e?s?|\bn[ée]\s?\(e\)|naissance|\bddn|\bd\.d\.n\.?)\W{0,4}(?:(?:le|du|en|au|:)\W{0,3}){0,2}$",
    re.IGNORECASE,
)
CUE_WINDOW = 40


class FrBirthDateRecognizer(PatternRecognizer):
    """Dates of birth, numeric (12/03/1985, 12.03.85, 1985-03-12) or written (1er mars 1985)."""

    COUNTRY_CODE = "fr"
    PATTERNS = [
        Pattern(
            "date dd/mm/yyyy",
            r"(?<![\w/.\-])(?:0?[1-9]|[12]\d|3[01])\s?[/.\-]\s?(?:0?[1-9]|1[0-2])\s?[/.\-]\s?(?:19|20)?\d{2}(?![\w/])",
            0.9,
        ),
        Pattern(
            "date yyyy-mm-dd",
            r"(?<![\w\-])(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?!\w)",
            0.9,
        ),
        Pattern(
            "date written",
            rf"(?<!\w)(?:1er|0?[1-9]|[12]\d|3[01])\s+(?:{MONTHS})\s+(?:19|20)\d{{2}}(?!\w)",
            0.9,
        ),
    ]

    def __init__(self, supported_language: str = "fr", supported_entity: str = "DATE_OF_BIRTH") -> None:
        super().__init__(
            supported_entity=supported_entity,
            patterns=list(self.PATTERNS),
            supported_language=supported_language,
            name="FrBirthDateRecognizer",
        )

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        """Keep only the dates that a birth cue introduces."""
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        return [r for r in results if BIRTH_CUE.search(text[max(0, r.start - CUE_WINDOW) : r.start])]
