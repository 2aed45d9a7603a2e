"""FR_FT_ID: France Travail job-seeker identifier (7 digits + 1 letter or digit)."""

from __future__ import annotations

import regex as re
from presidio_analyzer import Pattern, PatternRecognizer


class FrFranceTravailIdRecognizer(PatternRecognizer):
    """7 digits and a capital letter is distinctive; 8 bare digits need a context word to count."""

    COUNTRY_CODE = "fr"
    PATTERNS = [
        Pattern("FT id (7 digits + letter)", r"(?<!\w)\d{7}[ \u00a0]?[A-Z](?!\w)", 0.6),
        Pattern("FT id (8 digits)", r"(?<!\w)(?<!\d[ .])\d{8}(?!\w)(?![ .]\d)", 0.3),
    ]
    CONTEXT = [
        "identifiant",
        "travail",
        "emploi",
        "demandeur",
        "inscrit",
        "inscription",
        "dossier",
        "matricule",
    ]

    def __init__(self, supported_language: str = "fr", supported_entity: str = "FR_FT_ID") -> None:
        super().__init__(
            supported_entity=supported_entity,
            patterns=list(self.PATTERNS),
            context=self.CONTEXT,
            supported_language=supported_language,
            name="FrFranceTravailIdRecognizer",
            global_regex_flags=re.DOTALL | re.MULTILINE,
        )
