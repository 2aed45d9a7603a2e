"""NIR (numéro de sécurité sociale): 15 characters, key = 97 - (first 13 mod 97)."""

from __future__ import annotations

import re

from anonymization.checksums import nir_key
from anonymization.identifiers.base import IdentifierType

# sex (1/2, 3/4 foreign-born provisional, 7/8 NIA), year, month (01-12, 20-42 and 50-99 for
# unknown months), department (01-99 or Corsica 2A/2B), commune, order, key.
NIR_SHAPE = re.compile(r"[1-478]\d{2}(?:0[1-9]|1[0-2]|[2-4]\d|[5-9]\d)(?:\d{2}|2[AB])\d{6}\d{2}")


def nir_is_valid(compact: str) -> bool:
    """True for a compact upper-case NIR with the right shape and key."""
    return NIR_SHAPE.fullmatch(compact) is not None and nir_key(compact[:13]) == int(compact[13:])


class NirIdentifier(IdentifierType):
    """Social security number; the linkage identifier of the parcours schema."""

    name = "nir"

    def normalize(self, raw: str) -> str:
        compact = self.compact(raw)
        if len(compact) != 15:
            raise self.reject("a NIR has 15 characters")
        if NIR_SHAPE.fullmatch(compact) is None:
            raise self.reject("not the shape of a NIR (sex, year, month, department, commune, order, key)")
        if nir_key(compact[:13]) != int(compact[13:]):
            raise self.reject("wrong NIR key (97 - first 13 digits mod 97)")
        return compact
