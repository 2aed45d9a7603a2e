"""PERSON (first-name rule): a known French first name on its own or followed by its surname, in any
case — "Julie a rappelé", "rencontre avec Karim", "vu ac samir", "rdv avec jean-pierre martin".

First names given at least 500 times in France since 1900 (INSEE) count, minus the ones that are
also everyday capitalized words in job texts and notes (Marine, France, Avril, Rose, …), which count only
in brackets after an upper-case surname ("M. LEFEBVRE (Marine)"). Rarer INSEE first names (Houssem,
Kadidia, Cristovao) count when they are no word of the ROME texts in any case and no PACA commune.
In lower case, a first name must also be absent from the real job vocabulary (ROME texts) and the
stop words: "pierre" (taille de pierre) is a word, "karim" is a name. A lower-case first name takes the
surname that follows it when that word is an INSEE surname ("marie dubois"), or a particle and a word
("ahmed ben salah").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import regex as re
from presidio_analyzer import LocalRecognizer, RecognizerResult

from anonymization.recognizers.fr_person_recognizer import AMBIGUOUS, NOT_NAMES, PARTICLE_WORDS, fold

if TYPE_CHECKING:
    from presidio_analyzer.nlp_engine import NlpArtifacts

TOKEN = re.compile(r"(?<![\w\-'’@.])\p{L}+(?:-\p{L}+)*(?![\w\-@])")
# "M. LEFEBVRE (Marine)": a first name in brackets right after an upper-case surname.
AFTER_SURNAME = re.compile(r"\p{Lu}{2,}[ \t]*\([ \t]*$")
AFTER_PREPOSITION = re.compile(r"(?<![\w'’])(?i:de|avec|par|pour|chez)[ \t]+$")
BEFORE_PUNCTUATION = re.compile(r"[ \t]*[:,]")
# Months are surnames too (Juin, Mars, Avril) when they follow a first name.
MONTHS = frozenset(
    fold(m)
    for m in ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre")
    + ("octobre", "novembre", "décembre")
)
NEXT_WORD = re.compile(r"[ \t]+(\p{L}[\p{L}'’]*(?:-\p{L}+)*)(?![\w\-@])")


class FrFirstNameRecognizer(LocalRecognizer):
    """A first name (capitalized, or lower case and not an everyday word), with a lower-case surname."""

    def __init__(
        self,
        first_names: frozenset[str] = frozenset(),
        supported_language: str = "fr",
        supported_entity: str = "PERSON",
        common_words: frozenset[str] = frozenset(),
        surnames: frozenset[str] = frozenset(),
        stop_words: frozenset[str] = frozenset(),
        rare_first_names: frozenset[str] = frozenset(),
        vocabulary: frozenset[str] = frozenset(),
        place_names: frozenset[str] = frozenset(),
    ) -> None:
        self.first_names = (first_names - AMBIGUOUS - NOT_NAMES) | (
            rare_first_names - AMBIGUOUS - NOT_NAMES - vocabulary - stop_words
        )
        self.ambiguous = first_names & AMBIGUOUS
        # What a capitalized word after a first name must not be to count as its surname.
        # Job words are surnames too (Boulanger, Charpentier): only places and institutions are not.
        self.not_surnames = place_names | stop_words | (NOT_NAMES - MONTHS)
        self.lower_first_names = self.first_names - common_words - stop_words
        self.surnames = surnames - stop_words
        self.stop_words = stop_words
        super().__init__(
            supported_entities=[supported_entity],
            supported_language=supported_language,
            name="FrFirstNameRecognizer",
        )

    def load(self) -> None:
        """Nothing to load."""

    def _surname_end(self, text: str, position: int) -> int:
        """End of the lower-case surname right after a lower-case first name (or `position`)."""
        match = NEXT_WORD.match(text, position)
        if match is None or not match.group(1).islower():
            return position
        word = fold(match.group(1))
        if word in PARTICLE_WORDS:
            following = NEXT_WORD.match(text, match.end())
            if following is not None and fold(following.group(1)) not in self.stop_words:
                return following.end()
            return position
        return match.end() if word in self.surnames else position

    def _capitalized_surname_end(self, text: str, position: int) -> int:
        """End of the capitalized surname right after a capitalized first name ("Julie Vallet",
        "Julie Juin", "Karim Boulanger"): any capitalized word that is no commune and no institution."""
        match = NEXT_WORD.match(text, position)
        if match is None:
            return position
        word = match.group(1)
        if not word[0].isupper() or fold(word) in self.not_surnames:
            return position
        return match.end()

    def _ambiguous_is_a_name(self, text: str, start: int, end: int) -> bool:
        """An ambiguous first name (Marine, Rose) in a name position: in brackets after an upper-case
        surname ("M. LEFEBVRE (Marine)"), or after a preposition and before a colon or a comma
        ("Suivi de Marine :")."""
        return bool(AFTER_SURNAME.search(text, 0, start)) or bool(
            AFTER_PREPOSITION.search(text, 0, start) and BEFORE_PUNCTUATION.match(text, end)
        )

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results = []
        for match in TOKEN.finditer(text):
            word = match.group()
            folded = fold(word)
            if word[0].isupper() and word[1:].islower() or "-" in word and word.istitle():
                if folded in self.first_names:
                    end = self._capitalized_surname_end(text, match.end())
                    results.append(RecognizerResult("PERSON", match.start(), end, 0.6))
                elif folded in self.ambiguous and self._ambiguous_is_a_name(text, match.start(), match.end()):
                    results.append(RecognizerResult("PERSON", match.start(), match.end(), 0.6))
            elif word.islower() and len(word) > 2 and folded in self.lower_first_names:
                end = self._surname_end(text, match.end())
                results.append(RecognizerResult("PERSON", match.start(), end, 0.6))
        return results
