"""PERSON (model part): spaCy's French NER, minus the spans that are plainly not people.

The small French model sometimes labels "Entreprise SIRET" or "France Travail" as a person; a span
holding an identifier keyword or an institution's name is dropped.
"""

from __future__ import annotations

from presidio_analyzer import RecognizerResult
from presidio_analyzer.predefined_recognizers import SpacyRecognizer

from anonymization.recognizers.fr_person_recognizer import NOT_NAMES, fold

NOT_PERSON_WORDS = NOT_NAMES | {
    fold(w) for w in "siret siren nir iban rib entreprise société societe identifiant numéro tél téléphone "
                     "mail courriel adresse rendez-vous cdi cdd rsa caces".split()
}


class FrSpacyPersonRecognizer(SpacyRecognizer):
    """spaCy NER persons for French text, filtered."""

    def __init__(self, supported_language: str = "fr") -> None:
        super().__init__(supported_language=supported_language, supported_entities=["PERSON"],
                         name="FrSpacyPersonRecognizer")

    def analyze(self, text: str, entities: list[str], nlp_artifacts: object = None) -> list[RecognizerResult]:
        """NER persons whose words are not identifier keywords or institutions."""
        results = super().analyze(text, entities, nlp_artifacts)
        return [r for r in results
                if not any(fold(w.strip(".,;:()")) in NOT_PERSON_WORDS for w in text[r.start: r.end].split())]
