"""French PII recognizers for Presidio, one per file (checksums in `validate_result`)."""

from anonymization.recognizers.fr_address_recognizer import FrAddressRecognizer
from anonymization.recognizers.fr_birth_date_recognizer import FrBirthDateRecognizer
from anonymization.recognizers.fr_civility_person_recognizer import FrCivilityPersonRecognizer
from anonymization.recognizers.fr_email_recognizer import FrEmailRecognizer
from anonymization.recognizers.fr_first_name_recognizer import FrFirstNameRecognizer
from anonymization.recognizers.fr_ft_id_recognizer import FrFranceTravailIdRecognizer
from anonymization.recognizers.fr_iban_recognizer import FrIbanRecognizer
from anonymization.recognizers.fr_identifier_shape_recognizer import FrIdentifierShapeRecognizer
from anonymization.recognizers.fr_nir_recognizer import FrNirRecognizer
from anonymization.recognizers.fr_person_recognizer import FrPersonRecognizer
from anonymization.recognizers.fr_phone_recognizer import FrPhoneRecognizer
from anonymization.recognizers.fr_siren_recognizer import FrSirenRecognizer
from anonymization.recognizers.fr_siret_recognizer import FrSiretRecognizer
from anonymization.recognizers.fr_spacy_person_recognizer import FrSpacyPersonRecognizer
from anonymization.recognizers.registry import ENTITY_TAGS, build_french_registry

__all__ = [
    "ENTITY_TAGS",
    "FrAddressRecognizer",
    "FrBirthDateRecognizer",
    "FrCivilityPersonRecognizer",
    "FrEmailRecognizer",
    "FrFirstNameRecognizer",
    "FrFranceTravailIdRecognizer",
    "FrIbanRecognizer",
    "FrIdentifierShapeRecognizer",
    "FrNirRecognizer",
    "FrPersonRecognizer",
    "FrPhoneRecognizer",
    "FrSirenRecognizer",
    "FrSiretRecognizer",
    "FrSpacyPersonRecognizer",
    "build_french_registry",
]
