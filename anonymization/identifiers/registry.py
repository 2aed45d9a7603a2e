"""Registry of identifier types by name (the names used in table configurations)."""

from __future__ import annotations

from anonymization.errors import ConfigError
from anonymization.identifiers.base import IdentifierType
from anonymization.identifiers.email import EmailIdentifier
from anonymization.identifiers.ft_id import FranceTravailIdentifier
from anonymization.identifiers.nir import NirIdentifier
from anonymization.identifiers.phone import PhoneIdentifier
from anonymization.identifiers.siret import SirenIdentifier, SiretIdentifier

IDENTIFIER_TYPES: dict[str, IdentifierType] = {
    kind.name: kind
    for kind in (
        NirIdentifier(),
        FranceTravailIdentifier(),
        SirenIdentifier(),
        SiretIdentifier(),
        EmailIdentifier(),
        PhoneIdentifier(),
    )
}


def get_identifier_type(name: str) -> IdentifierType:
    """Look an identifier type up by name, with a clear error listing the known ones."""
    try:
        return IDENTIFIER_TYPES[name]
    except KeyError:
        raise ConfigError(
            f"unknown identifier type {name!r}; known: {', '.join(sorted(IDENTIFIER_TYPES))}"
        ) from None
