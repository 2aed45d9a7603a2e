"""Replace an entity by a study-keyed pseudonym tag, e.g. <NOM_3f2a9c1b04d2>.

The same person's name or phone number gets the same tag everywhere in one study (so a note still
reads "<NOM_a1> called <NOM_b2>, then <NOM_a1> …"), and a different one in another study.
"""

from __future__ import annotations

from typing import Any

from presidio_anonymizer.operators import Operator, OperatorType

from anonymization.errors import InvalidIdentifierError
from anonymization.identifiers import get_identifier_type
from anonymization.recognizers.fr_person_recognizer import fold

# Entities that are identifiers get the identifier's own normalization (so 06 12… and +33 6… agree).
ENTITY_IDENTIFIER_TYPES = {
    "FR_NIR": "nir",
    "FR_PHONE": "phone",
    "EMAIL_ADDRESS": "email",
    "FR_SIRET": "siret",
    "FR_SIREN": "siren",
    "FR_FT_ID": "ft_id",
}


def normalize_entity(entity_type: str, text: str) -> str:
    """Canonical form of an entity's text before it is keyed."""
    kind = ENTITY_IDENTIFIER_TYPES.get(entity_type)
    if kind is not None:
        try:
            return get_identifier_type(kind).normalize(text)
        except InvalidIdentifierError:
            pass
    return " ".join(fold(text).split())


class PseudonymOperator(Operator):
    """Keyed tag from the study pseudonymizer passed as the 'study' parameter."""

    NAME = "pseudonym"

    def operate(self, text: str, params: dict[str, Any] | None = None) -> str:
        params = params or {}
        entity_type = params["entity_type"]
        digest = params["study"].text_tag(entity_type, normalize_entity(entity_type, text))
        return f"<{params['tag']}_{digest}>"

    def validate(self, params: dict[str, Any] | None = None) -> None:
        if not params or not all(params.get(k) for k in ("tag", "entity_type", "study")):
            raise ValueError("the pseudonym operator needs 'tag', 'entity_type' and 'study' parameters")

    def operator_name(self) -> str:
        return self.NAME

    def operator_type(self) -> OperatorType:
        return OperatorType.Anonymize
