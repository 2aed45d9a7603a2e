"""A French-only Presidio registry: our recognizers plus spaCy's NER for person names.

Presidio's default registry loads dozens of recognizers for other countries and languages, costs time
on every note and finds US social security numbers in French job-seeker notes. This one holds only what
a French counselor's note can leak.
"""

from __future__ import annotations

from pathlib import Path

from presidio_analyzer import RecognizerRegistry

from anonymization.recognizers.fr_address_recognizer import FrAddressRecognizer
from anonymization.recognizers.fr_birth_date_recognizer import FrBirthDateRecognizer
from anonymization.recognizers.fr_civility_person_recognizer import FrCivilityPersonRecognizer
from anonymization.recognizers.fr_email_recognizer import FrEmailRecognizer
from anonymization.recognizers.fr_first_name_recognizer import FrFirstNameRecognizer
from anonymization.recognizers.fr_ft_id_recognizer import FrFranceTravailIdRecognizer
from anonymization.recognizers.fr_iban_recognizer import FrIbanRecognizer
from anonymization.recognizers.fr_identifier_shape_recognizer import FrIdentifierShapeRecognizer
from anonymization.recognizers.fr_nir_recognizer import FrNirRecognizer
from anonymization.recognizers.fr_person_recognizer import FrPersonRecognizer, first_names_from_reference_data
from anonymization.recognizers.fr_phone_recognizer import FrPhoneRecognizer
from anonymization.recognizers.fr_siren_recognizer import FrSirenRecognizer
from anonymization.recognizers.fr_siret_recognizer import FrSiretRecognizer
from anonymization.recognizers.fr_spacy_person_recognizer import FrSpacyPersonRecognizer
from anonymization.recognizers.lexicon import common_words, place_names, stop_words, surnames, vocabulary
from anonymization.reference import reference_data_dir

LANGUAGE = "fr"

# Entity type → typed tag written in place of the entity.
ENTITY_TAGS: dict[str, str] = {
    "PERSON": "NOM",
    "FR_NIR": "NIR",
    "FR_PHONE": "TELEPHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "IBAN_CODE": "IBAN",
    "FR_SIRET": "SIRET",
    "FR_SIREN": "SIREN",
    "FR_FT_ID": "ID_FRANCE_TRAVAIL",
    "FR_ADDRESS": "ADRESSE",
    "DATE_OF_BIRTH": "DATE_NAISSANCE",
    "ID_NUMBER": "IDENTIFIANT",
}


def build_french_registry(data_dir: Path | None = None, with_ner: bool = True) -> RecognizerRegistry:
    """The registry used by FrenchScrubber (set `with_ner=False` for a regex-only scrubber)."""
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    data_dir = data_dir or reference_data_dir()
    first_names = first_names_from_reference_data(data_dir)
    rare_first_names = first_names_from_reference_data(data_dir, min_births=100)
    known_surnames = surnames(data_dir)
    for recognizer in (
        FrNirRecognizer(),
        FrPhoneRecognizer(),
        FrEmailRecognizer(),
        FrIbanRecognizer(),
        FrSiretRecognizer(),
        FrSirenRecognizer(),
        FrFranceTravailIdRecognizer(),
        FrIdentifierShapeRecognizer(),
        FrAddressRecognizer(),
        FrBirthDateRecognizer(),
        FrPersonRecognizer(first_names, rare_first_names=rare_first_names),
        FrCivilityPersonRecognizer(first_names, known_surnames),
        FrFirstNameRecognizer(
            first_names,
            common_words=common_words(data_dir),
            surnames=known_surnames,
            stop_words=stop_words(),
            rare_first_names=rare_first_names,
            vocabulary=vocabulary(data_dir),
            place_names=place_names(data_dir),
        ),
    ):
        registry.add_recognizer(recognizer)
    if with_ner:
        registry.add_recognizer(FrSpacyPersonRecognizer(first_names, supported_language=LANGUAGE))
    return registry
