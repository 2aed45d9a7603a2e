"""France Travail job-seeker identifier: 7 digits and one alphanumeric character."""

from __future__ import annotations

import re

from anonymization.identifiers.base import IdentifierType

FT_ID_SHAPE = re.compile(r"\d{7}[0-9A-Z]")


class FranceTravailIdentifier(IdentifierType):
    """Identifiant France Travail (ex Pôle emploi)."""

    name = "ft_id"

    def normalize(self, raw: str) -> str:
        compact = self.compact(raw)
        if FT_ID_SHAPE.fullmatch(compact) is None:
            raise self.reject("a France Travail identifier is 7 digits and 1 letter or digit")
        return compact
