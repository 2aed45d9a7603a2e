"""PERSON (model part): spaCy's French NER, minus the spans that are plainly not people.

The small French model labels sentence-initial verbs ("Rédige", "Entretien") and phrases such as
"Entreprise SIRET" or "Bac+5" as persons. Dropped: spans holding an identifier keyword, a diploma or an
institution's name, spans starting in lower case, and single words that are neither a known first name
nor an upper-case surname nor introduced by a civility.
"""

from __future__ import annotations

import regex as re
from presidio_analyzer import RecognizerResult
from presidio_analyzer.predefined_recognizers import SpacyRecognizer

from anonymization.recognizers.fr_person_recognizer import CIVILITY, NOT_NAMES, fold

_NOT_PERSON_EXTRA = (
    "siret siren nir iban rib entreprise société societe identifiant numéro tél téléphone mail "
    "courriel adresse rendez-vous cdi cdd rsa caces bac brevet certificat diplôme licence "
    "master stage formation titre professionnel nationale contact date ss n° num sécu secu contacter "
    "appeler écrire ecrire joindre"
)
NOT_PERSON_WORDS = NOT_NAMES | {fold(w) for w in _NOT_PERSON_EXTRA.split()}

CIVILITY_BEFORE = re.compile(rf"(?<!\w){CIVILITY}\s+$")


class FrSpacyPersonRecognizer(SpacyRecognizer):
    """spaCy NER persons for French text, filtered."""

    def __init__(self, first_names: frozenset[str] = frozenset(), supported_language: str = "fr") -> None:
        super().__init__(
            supported_language=supported_language,
            supported_entities=["PERSON"],
            name="FrSpacyPersonRecognizer",
        )
        self.first_names = first_names

    def is_plausible(self, text: str, start: int, end: int) -> bool:
        """Whether an NER person span can be a person's name."""
        words = [w.strip(".,;:()'’\"") for w in text[start:end].split()]
        if not words or not words[0] or not words[0][0].isupper():
            return False
        if any(c.isdigit() or c == "@" for c in text[start:end]):
            return False  # an identifier or an e-mail the model read as a name: its own recognizer types it
        if any(fold(w) in NOT_PERSON_WORDS for w in words):
            return False
        if len(words) > 1:
            return True
        word = words[0]
        return (
            fold(word) in self.first_names
            or (word.isalpha() and len(word) > 1 and word.isupper())
            or CIVILITY_BEFORE.search(text[max(0, start - 15) : start]) is not None
        )

    def analyze(self, text: str, entities: list[str], nlp_artifacts: object = None) -> list[RecognizerResult]:
        """NER persons that pass `is_plausible`."""
        results = super().analyze(text, entities, nlp_artifacts)
        return [r for r in results if self.is_plausible(text, r.start, r.end)]
