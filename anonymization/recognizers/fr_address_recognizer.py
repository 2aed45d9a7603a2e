"""FR_ADDRESS: French postal addresses — number, type of street, name, and optional postcode + commune.

Street names are read as capitalized words joined by the particles French street names use
(de, du, des, la, l', d', …), so "12 bis, avenue de la République 13001 Marseille" is one span and
"2 rue" alone is not an address. A postcode followed by a commune name is also an address part.
"""

from __future__ import annotations

import regex as re
from presidio_analyzer import Pattern, PatternRecognizer

STREET_TYPES = (
    r"rue|avenue|av\.?|boulevard|bd|bld|place|pl\.|chemin|ch\.|impasse|imp\.|allée|allee|all\.|route|rte|quai|"
    r"cours|square|passage|traverse|montée|montee|lotissement|lot\.|résidence|residence|rés\.|res\.|cité|cite|"
    r"hameau|voie|sentier|promenade|esplanade|rond-point|faubourg|fg|parvis|quartier|domaine|ruelle|lieu-dit|"
    r"chaussée|carrefour|corniche|mail|bastide|villa|clos"
)
PARTICLE = r"(?:de|du|des|la|le|les|et|sur|en|aux?|sous|l['’]|d['’])"
WORD = r"(?:[A-ZÀ-Ý][\w'’\-]*|\d{1,4}(?:er)?)"
NAME = rf"(?:{PARTICLE}\s*)*{WORD}(?:[\s\-]+(?:{PARTICLE}\s*)*{WORD}){{0,5}}"
NUMBER = r"\d{1,4}(?:\s?(?i:bis|ter|quater|[a-d])\b)?"
POSTCODE_COMMUNE = (
    rf"(?:0[1-9]|[1-8]\d|9[0-8]|2[AB])\s?\d{{3}}\s+{WORD}(?:[\s\-]+(?:{PARTICLE}\s*)*{WORD}){{0,4}}"
    rf"(?:\s+(?i:cedex)(?:\s+\d{{1,2}})?)?"
)


class FrAddressRecognizer(PatternRecognizer):
    """French postal addresses: street part with optional postcode + commune, or postcode + commune."""

    COUNTRY_CODE = "fr"
    PATTERNS = [
        Pattern(
            "FR street address",
            rf"(?<!\w){NUMBER}\s*,?\s+(?i:{STREET_TYPES})\s+{NAME}(?:\s*,?\s*{POSTCODE_COMMUNE})?",
            0.7,
        ),
        Pattern("FR postcode + commune", rf"(?<![\w,])(?<!\d\s){POSTCODE_COMMUNE}", 0.55),
    ]
    CONTEXT = [
        "adresse",
        "habite",
        "domicile",
        "domicilié",
        "domiciliée",
        "réside",
        "demeurant",
        "résidant",
        "hébergé",
        "hébergée",
        "logement",
        "vit",
    ]

    def __init__(self, supported_language: str = "fr", supported_entity: str = "FR_ADDRESS") -> None:
        super().__init__(
            supported_entity=supported_entity,
            patterns=list(self.PATTERNS),
            context=self.CONTEXT,
            supported_language=supported_language,
            name="FrAddressRecognizer",
            global_regex_flags=re.DOTALL | re.MULTILINE,
        )
