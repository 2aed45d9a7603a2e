"""FR_PHONE: French phone numbers in the notations people use, checked against the numbering plan."""

from __future__ import annotations

import phonenumbers
from presidio_analyzer import Pattern, PatternRecognizer

SEP = r"[ \u00a0\u202f.\-]?"
INTERNATIONAL = rf"(?:\+|00){SEP}33{SEP}(?:\(0\){SEP})?"


class FrPhoneRecognizer(PatternRecognizer):
    """Recognize 06 12 34 56 78, 06.12.34.56.78, +33 6 12 34 56 78, 0033 (0)6…, 0612345678.

    A match must be a valid French number for libphonenumber; the score depends on the notation
    (bare 10-digit runs are weaker) and is raised by French context words.
    """

    COUNTRY_CODE = "fr"
    PATTERNS = [
        Pattern(
            "FR phone (international)", rf"(?<![\w+]){INTERNATIONAL}[1-9](?:{SEP}\d{{2}}){{4}}(?!\w)", 0.8
        ),
        Pattern("FR phone (grouped)", r"(?<![\w+])0[1-9](?:[ \u00a0\u202f.\-]\d{2}){4}(?!\w)", 0.75),
        Pattern("FR phone (compact)", r"(?<![\w+])0[1-9]\d{8}(?!\w)", 0.55),
    ]
    CONTEXT = [
        "téléphone",
        "telephone",
        "tél",
        "tel",
        "portable",
        "mobile",
        "joignable",
        "joindre",
        "appeler",
        "rappeler",
        "numéro",
        "numero",
        "fixe",
        "standard",
        "contact",
        "sms",
    ]

    def __init__(self, supported_language: str = "fr", supported_entity: str = "FR_PHONE") -> None:
        super().__init__(
            supported_entity=supported_entity,
            patterns=list(self.PATTERNS),
            context=self.CONTEXT,
            supported_language=supported_language,
            name="FrPhoneRecognizer",
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        """None keeps the notation's score for valid numbers; invalid ones are dropped."""
        try:
            number = phonenumbers.parse(pattern_text, "FR")
        except phonenumbers.NumberParseException:
            return False
        if number.country_code != 33 or not phonenumbers.is_valid_number(number):
            return False
        return None
