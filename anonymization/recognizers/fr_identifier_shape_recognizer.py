"""Any identifier-shaped number the typed recognizers did not claim: a run of 8 or more digits
(spaces, dots or dashes allowed between them) that is not a date, a year list or a quantity.

The typed recognizers score higher, so where they match, their type wins when overlaps are merged;
this one makes sure that a number no rule knows (a NIR with a digit too many, a SIRET cut short, an
unfamiliar notation) is removed anyway. Its type follows the length: 10 digits from 0 → phone,
13 or 15 from 1-8 → NIR, 14 → SIRET, 9 → SIREN, 8 → France Travail id, others → ID_NUMBER.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import regex as re
from presidio_analyzer import LocalRecognizer, RecognizerResult

if TYPE_CHECKING:
    from presidio_analyzer.nlp_engine import NlpArtifacts

# A number followed by a unit or a currency is a quantity, not an identifier.
NOT_A_QUANTITY = (
    r"(?!\s?(?:€|\$|%|(?i:k€|m€|euros?|eur|habitants|salariés|personnes|emplois|heures|km|m2|m²|"
    r"kg|tonnes)\b))"
)
RUN = re.compile(rf"(?<![\w.\-/,])\d(?:[ \u00a0\u202f.\-]?\d){{7,}}(?![\w/])(?!,\d){NOT_A_QUANTITY}")
DATE = re.compile(r"\d{1,2}[ .\-]\d{1,2}[ .\-](?:19|20)?\d{2}")
# A date and the hour after it ("06.12.2023 10:30", "06/12/2023 14 h") is no phone and no identifier.
DATE_FIRST = re.compile(r"\d{1,2}[.\-/]\d{1,2}[.\-/](?:19|20)\d{2}(?!\d)")
YEARS = re.compile(r"(?:(?:19|20)\d{2}[ .\-]?)+")


def type_by_length(digits: str) -> str:
    """The entity type a bare number of this length most likely is."""
    n = len(digits)
    if n == 10 and digits[0] == "0":
        return "FR_PHONE"
    if n in (13, 15) and digits[0] in "12345678":
        return "FR_NIR"
    return {14: "FR_SIRET", 9: "FR_SIREN", 8: "FR_FT_ID"}.get(n, "ID_NUMBER")


class FrIdentifierShapeRecognizer(LocalRecognizer):
    """Long digit runs, typed by their length."""

    ENTITIES = ["FR_PHONE", "FR_NIR", "FR_SIRET", "FR_SIREN", "FR_FT_ID", "ID_NUMBER"]

    def __init__(self, supported_language: str = "fr") -> None:
        super().__init__(
            supported_entities=list(self.ENTITIES),
            supported_language=supported_language,
            name="FrIdentifierShapeRecognizer",
        )

    def load(self) -> None:
        """Nothing to load."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results = []
        for match in RUN.finditer(text):
            written = match.group()
            if DATE.fullmatch(written) or YEARS.fullmatch(written) or DATE_FIRST.match(written):
                continue
            kind = type_by_length(re.sub(r"\D", "", written))
            if kind in entities:
                results.append(RecognizerResult(kind, match.start(), match.end(), 0.5))
        return results
