"""FR_PHONE: phone-shaped numbers in every French notation, whatever their range.

A de-identifier must err on the side of removal: libphonenumber calls real numbers people write
"invalid" (unassigned 07 00 ranges, overseas mobiles 0693…, +33 6 93…), so the numbering plan is never
asked whether a number is removed. Any 10-digit run starting with 0, any +33 / 0033 number, and the
overseas country codes (+262, +269, +508, +590, +594, +596, +681, +687, +689) are phones, with spaces,
dots, dashes or slashes anywhere between digits, or none (SMS style).
"""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

from anonymization.recognizers.fr_identifier_shape_recognizer import DATE_FIRST

SEP = r"[ \u00a0\u202f.\-/]?"
DIGIT = rf"{SEP}\d"
NOT_AFTER_DIGITS = r"(?<![\w+])(?<!\d[ \u00a0\u202f.\-/])"
NOT_BEFORE_DIGITS = r"(?![ \u00a0\u202f.\-/]?\d)(?!\w)"
OVERSEAS = r"262|269|508|590|594|596|681|687|689"


class FrPhoneRecognizer(PatternRecognizer):
    """06 12 34 56 78, 06.12.34.56.78, 0612345678, 06 123 456 78, +33 (0)6…, 0033 6…, +262 692…"""

    COUNTRY_CODE = "fr"
    PATTERNS = [
        Pattern(
            "FR phone (international)",
            rf"{NOT_AFTER_DIGITS}(?:\+|00){SEP}33{SEP}(?:\(0\){SEP})?[1-9](?:{DIGIT}){{8}}{NOT_BEFORE_DIGITS}",
            0.85,
        ),
        Pattern(
            "French overseas phone (international)",
            rf"{NOT_AFTER_DIGITS}(?:\+|00){SEP}(?:{OVERSEAS}){SEP}(?:\(0\){SEP})?\d(?:{DIGIT}){{5,8}}{NOT_BEFORE_DIGITS}",
            0.8,
        ),
        Pattern(
            "FR phone (national)", rf"{NOT_AFTER_DIGITS}0{SEP}[1-9](?:{DIGIT}){{8}}{NOT_BEFORE_DIGITS}", 0.75
        ),
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
        """A date followed by an hour ("06/12/2023 10:30") has a phone's digits but is no phone."""
        return False if DATE_FIRST.match(pattern_text) else None
