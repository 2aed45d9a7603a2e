"""E-mail address: trimmed and lower-cased, since mail systems treat case as insignificant in practice."""

from __future__ import annotations

import re

from anonymization.identifiers.base import IdentifierType

EMAIL_SHAPE = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}"
)


class EmailIdentifier(IdentifierType):
    """E-mail address."""

    name = "email"

    def normalize(self, raw: str) -> str:
        value = raw.strip().lower()
        if EMAIL_SHAPE.fullmatch(value) is None:
            raise self.reject("not an e-mail address (local@domain.tld)")
        return value
