"""Telephone number, normalized to E.164 with Google's libphonenumber (French numbering by default)."""

from __future__ import annotations

import phonenumbers

from anonymization.identifiers.base import IdentifierType


class PhoneIdentifier(IdentifierType):
    """Phone number in any French notation (06 12 34 56 78, +33 6…, 0033 (0)6…) or international."""

    name = "phone"

    def __init__(self, default_region: str = "FR") -> None:
        self.default_region = default_region

    def normalize(self, raw: str) -> str:
        try:
            number = phonenumbers.parse(raw, self.default_region)
        except phonenumbers.NumberParseException as exc:
            raise self.reject("not a phone number") from exc
        if not phonenumbers.is_valid_number(number):
            raise self.reject("not a valid number in the numbering plan")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
