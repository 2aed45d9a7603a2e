"""PERSON (civility and cue rules): the name after M., Mme, Madame, Monsieur, Docteur, Maître…, and
after the cues a form or a note uses for a name (Nom :, Prénom :, nom d'usage, née, Signé :), in any
case — "mme sophie lefebvre" and "M. DA SILVA" alike.

The first word after the cue is the name unless it is a function word or a title ("Madame la
Directrice", "M. le maire"); the next words follow while they look like names: capitalized, or a known
first name or surname in lower case. The civility itself stays in the text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import regex as re
from presidio_analyzer import LocalRecognizer, RecognizerResult

from anonymization.recognizers.fr_person_recognizer import NOT_NAMES, PARTICLE_WORDS, fold
from anonymization.recognizers.lexicon import TITLES, stop_words, words

if TYPE_CHECKING:
    from presidio_analyzer.nlp_engine import NlpArtifacts

# Docteur, Maître and Me are also nouns or a pronoun ("maître d'œuvre", "il me dit"): a name after them
# must be capitalized. "m." not after a number (5 m. de haut).
CIVILITY = (
    r"(?:(?<!\d\s?)(?i:m\.|mr\.?|mme\.?|mlle\.?|monsieur|madame|mademoiselle|dr\.?)"
    r"|(?i:docteur|ma[îi]tre|Me)(?=\s+\p{Lu}))"
)
CUE = (
    r"(?:(?i:nom|pr[ée]nom|nom\s+de\s+(?:famille|naissance|jeune\s+fille)|nom\s+d['’]usage)\s*:"
    r"|(?i:nom\s+de\s+(?:famille|naissance|jeune\s+fille)|nom\s+d['’]usage|sign[ée]e?\s*:|[ée]pouse|veuve)"
    r"|(?i:n[ée]e)(?=\s+\p{Lu}))"
)
START = re.compile(rf"(?<![\w\-]){CIVILITY}\s+|(?<![\w\-]){CUE}\s*")
WORD = re.compile(r"[ \t]*(\p{L}[\p{L}'’]*(?:-\p{L}[\p{L}'’]*)*)")
MAX_WORDS = 4
# Capitalized words that after a civility start a title or a clause, not a surname.
NOT_AFTER_CIVILITY = TITLES | words(
    "le la les l de du des d et ou a au aux est en ne n se s il elle on nous vous ils elles y"
)
# Particles of French and foreign surnames (da Silva, van der Berg, ben Salah, ould Ahmed).
NAME_PARTICLES = PARTICLE_WORDS | words("da do dos das di del della der den ter bin ibn abd al ould mac mc")


class FrCivilityPersonRecognizer(LocalRecognizer):
    """Up to four name words after a civility or a name cue."""

    def __init__(
        self,
        first_names: Iterable[str] = frozenset(),
        surnames: Iterable[str] = frozenset(),
        supported_language: str = "fr",
        supported_entity: str = "PERSON",
    ) -> None:
        self.names = frozenset(first_names) | frozenset(surnames)
        self.stops = stop_words() | TITLES | (NOT_NAMES - PARTICLE_WORDS) | {"nom", "prenom"}
        super().__init__(
            supported_entities=[supported_entity],
            supported_language=supported_language,
            name="FrCivilityPersonRecognizer",
        )

    def load(self) -> None:
        """Nothing to load."""

    def _name_end(self, text: str, position: int) -> int:
        """End of the name that starts at `position`, or `position` when there is none."""
        end = cursor = position
        taken = 0
        while taken < MAX_WORDS:
            match = WORD.match(text, cursor)
            if match is None:
                break
            word = match.group(1)
            if fold(word) in NAME_PARTICLES:  # "de", "da", "ben", "van": kept only before a name word
                following = WORD.match(text, match.end())
                if following is None or fold(following.group(1)) in self.stops | NAME_PARTICLES:
                    break
                word, match = following.group(1), following
            elif fold(word) in self.stops and not self._surname_despite_stop(word, taken):
                break
            if taken and not self._follows(word):
                break
            end = cursor = match.end()
            taken += 1
        return end

    @staticmethod
    def _surname_despite_stop(word: str, taken: int) -> bool:
        """An upper-case word ("M. DA SILVA", "Mme AVRIL"), or a capitalized first word after the
        civility that is no article or title ("Mme Deux", "Mme Février"), is a surname."""
        if len(word) > 1 and word.isupper():
            return True
        return taken == 0 and word[0].isupper() and fold(word) not in NOT_AFTER_CIVILITY

    def _follows(self, word: str) -> bool:
        """A word after the first one is part of the name when it looks like one."""
        return word[0].isupper() or fold(word) in self.names

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results = []
        for cue in START.finditer(text):
            start = cue.end()
            end = self._name_end(text, start)
            if end > start:
                results.append(RecognizerResult("PERSON", start, end, 0.85))
        return results
