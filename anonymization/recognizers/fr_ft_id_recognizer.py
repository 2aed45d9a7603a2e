"""FR_FT_ID: France Travail job-seeker identifier (7 digits + 1 letter, either case, or 8 digits)."""

from __future__ import annotations

import regex as re
from presidio_analyzer import Pattern, PatternRecognizer

from anonymization.recognizers.fr_identifier_shape_recognizer import NOT_A_QUANTITY


class FrFranceTravailIdRecognizer(PatternRecognizer):
    """7 digits and a letter, or 8 bare digits (an identifier-shaped number is removed, context or not)."""

    COUNTRY_CODE = "fr"
    PATTERNS = [
        Pattern("FT id (7 digits + letter)", r"(?<![\w.\-])\d{7}[ \u00a0]?[A-Za-z](?!\w)", 0.7),
        Pattern(
            "FT id (8 digits)", rf"(?<![\w.\-/])(?<!\d[ .])\d{{8}}(?!\w)(?![ .\-/]?\d){NOT_A_QUANTITY}", 0.55
        ),
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
