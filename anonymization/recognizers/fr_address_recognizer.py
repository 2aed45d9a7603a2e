"""FR_ADDRESS: whole French postal addresses — street, complements, postal box, postcode, commune, CEDEX.

An address is found as pieces that are then joined when only commas, dashes or spaces separate them:

* strong pieces, an address on their own: a numbered street ("22 bis rue de la république"), a
  postcode and its commune ("13001 Marseille", "84000 avignon", "06300 Nice Cedex 4"), a postal box
  ("BP 45", "CS 30012", "TSA 10001"), a unit in a building ("bât. B", "apt 12", "appartement 5",
  "escalier 3");
* medium pieces, an address when capitalized: a street without number ("Chemin de la Source"), a
  complement naming a place ("Résidence Les Pins", "Cité Air Bel", "lieu-dit La Plaine", "Hameau de
  Saint-Pierre", "ZA des Paluds", "Mas des Oliviers", "Le Clos des Pins");
* weak pieces, kept only beside another piece or after an address cue: a complement in lower case
  ("résidence du parc"), "CCAS", "lot 12".

Street names are read in any case after a number (people type "12 rue des lilas 13010 marseille"), up to
a stop word, a punctuation mark, a number or the next address keyword, so that "habite 45 av de la Corse
13007 Marseille depuis 2019" stops before "depuis".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import regex as re
from presidio_analyzer import LocalRecognizer, RecognizerResult

from anonymization.recognizers.fr_person_recognizer import fold
from anonymization.recognizers.lexicon import stop_words, words

if TYPE_CHECKING:
    from presidio_analyzer.nlp_engine import NlpArtifacts

STREET_TYPES = (
    r"rue|avenue|av\.?|boulevard|bd\.?|bld\.?|place|pl\.|chemin|ch\.|impasse|imp\.|allée|allee|all\.|route|"
    r"rte\.?|quai|cours|square|passage|traverse|trav\.|montée|montee|promenade|esplanade|rond-point|"
    r"faubourg|fg\.?|parvis|ruelle|chaussée|carrefour|corniche|voie|sentier|sente|venelle"
)
# Streets that are addresses without a number when their name is capitalized ("Chemin de la Source");
# "cours", "place" or "passage" followed by a capitalized word are too often something else.
BARE_STREET_TYPES = (
    r"rue|avenue|boulevard|bd\.?|chemin|impasse|allée|allee|route|quai|traverse|montée|montee|"
    r"corniche|faubourg"
)
COMPLEMENTS = (
    r"résidence|residence|résid\.|rés\.?|res\.|cité|cite|lotissement|lotiss\.|hameau|lieu-dit|lieudit|l\.-d\.|"
    r"quartier|qrt\.?|villa|clos|mas|bastide|za|zi|zac|zone\s+(?:artisanale|industrielle|d['’]activités?)|"
    r"foyer|hlm|ccas"
)
UNITS = (
    r"bâtiment|batiment|bât\.?|bat\.?|bt\.?|appartement|appart\.?|appt\.?|apt\.?|escalier|esc\.?|"
    r"étage|logement|log\."
)
DESIGNATOR = r"(?:n[°o]\s*)?(?:[A-Z]?\d{1,4}[A-Z]?|[A-Z]{1,2}\d{0,2})(?![\w])"
PARTICLES = words("de du des la le les l d aux au sur en et sous lès")
KEYWORD = re.compile(rf"(?i:{STREET_TYPES}|{COMPLEMENTS}|{UNITS}|bp|cs|tsa|cedex)", re.V1)

NUMBERED_STREET = re.compile(
    rf"(?<![\w,.])\d{{1,4}}(?:\s?(?i:bis|ter|quater|[a-d])(?!\w))?\s*,?\s+(?i:{STREET_TYPES})(?!\w)"
)
BARE_STREET = re.compile(rf"(?<![\w\-])(?i:{BARE_STREET_TYPES})(?!\w)")
COMPLEMENT = re.compile(rf"(?<![\w\-])(?:(?:Le|La|Les|L['’])\s*)?(?i:{COMPLEMENTS})(?![\w\-])")
UNIT = re.compile(rf"(?<![\w\-])(?i:{UNITS})(?:(?<=\.)\s*|\s+){DESIGNATOR}")
LOT = re.compile(rf"(?<![\w\-])(?i:lot)\s+{DESIGNATOR}")
POSTAL_BOX = re.compile(r"(?<![\w\-])(?:BP|B\.P\.|CS|TSA|bp)\s?\d{1,6}(?!\w)")
POSTCODE = re.compile(r"(?<![\w\-])(?:0[1-9]|[1-8]\d|9[0-8]|2[AB])\d{3}(?!\w)")
COMMUNE_WORD = re.compile(r"[ \t]+((?:[LlDd]['’])?\p{L}[\p{L}'’]*(?:-\p{L}[\p{L}'’]*)*)")
CEDEX = re.compile(r"[ \t]+(?i:cedex)(?:[ \t]+\d{1,2}(?!\w))?")
IN_COMMUNE = re.compile(r"[ \t]+à[ \t]+\p{Lu}\p{L}*(?:-\p{L}+)*")
# A word, or a number; a dot ends a token only in an abbreviation of up to 3 letters (St., Ste, Gal.).
NAME_TOKEN = re.compile(
    r"[ \t]*((?:[LlDd]['’])?\p{L}[\p{L}'’]*(?:-[\p{L}\d][\p{L}'’]*)*|\d{1,4}(?:er|e)?(?!\w))"
    r"(?:(?<=(?<!\p{L})\p{L}{1,3})\.)?"
)
GAP = re.compile(r"[ \t]*(?:[,;/\-–][ \t]*)*")
CUE = re.compile(
    r"(?<!\w)(?i:adresse|habite|domicil\w*|réside|reside|résidant|vit|hébergée?|demeurant|déménag\w*|courrier|chez)"
    r"\W{0,3}(?:\w+\W{1,3}){0,2}$"
)
STRONG, MEDIUM, WEAK = 3, 2, 1
MONTHS = words("janvier fevrier mars avril mai juin juillet aout septembre octobre novembre decembre")
MAX_NAME_TOKENS = 6
# Abbreviations inside street names, after which the name goes on ("rue St. Jean", "av. du Gal. Leclerc").
STREET_ABBREVIATIONS = frozenset(["st", "ste", "gal", "gen", "mal", "pdt", "dr", "pr", "cdt", "lt", "cne"])


def _core(word: str) -> str:
    """The word without its elided article (l'Église → Église)."""
    return word[2:] if len(word) > 2 and word[1] in "'’" else word


class FrAddressRecognizer(LocalRecognizer):
    """French postal addresses as one span, complements included."""

    def __init__(self, supported_language: str = "fr", supported_entity: str = "FR_ADDRESS") -> None:
        self.stops = stop_words() - PARTICLES
        super().__init__(
            supported_entities=[supported_entity],
            supported_language=supported_language,
            name="FrAddressRecognizer",
        )

    def load(self) -> None:
        """Nothing to load."""

    def _name(self, text: str, position: int, *, lower: bool) -> tuple[int, bool]:
        """End of the place name starting at `position` and whether it holds a capitalized word."""
        end = cursor = position
        capital, taken, after_particle, after_month = False, 0, False, False
        while taken < MAX_NAME_TOKENS:
            match = NAME_TOKEN.match(text, cursor)
            if match is None:
                break
            token = match.group(1)
            folded = fold(token.rstrip("."))
            if token[0].isdigit():
                following = NAME_TOKEN.match(text, match.end())
                if after_month and len(token) == 4:  # "rue du 8 Mai 1945"
                    end = cursor = match.end()
                    taken, after_month = taken + 1, False
                    continue
                if not after_particle or following is None or not following.group(1)[0].isupper():
                    break  # "rue du 11 Novembre", never the postcode or the next number
                cursor, taken = match.end(), taken + 1
                continue
            if folded in PARTICLES or (len(token) == 2 and token[1] in "'’"):
                cursor, taken, after_particle = match.end(), taken + 1, True
                continue
            if KEYWORD.fullmatch(token.rstrip(".")) or KEYWORD.fullmatch(token):
                break
            core = _core(token)
            if core[0].isupper():
                capital = True
            elif not lower or folded in self.stops:
                break
            end = cursor = match.end()
            taken, after_particle, after_month = taken + 1, False, folded in MONTHS
            if text[end - 1] == "." and folded not in STREET_ABBREVIATIONS:
                break  # a dot may end the sentence: never read into the next one ("du BTP. Les")
        return end, capital

    def _commune_end(self, text: str, position: int) -> int:
        """End of the commune after a postcode (capitalized words, or one lower-case word), CEDEX included."""
        end = cursor = position
        words = 0
        while words < 5:
            match = COMMUNE_WORD.match(text, cursor)
            if match is None:
                break
            word = match.group(1)
            folded = fold(word)
            if folded == "cedex":
                break
            if _core(word)[0].isupper():
                end = cursor = match.end()
            elif folded in PARTICLES and words:
                cursor = match.end()
                words += 1
                continue
            elif words == 0 and folded not in self.stops and len(word) > 2:
                end = cursor = match.end()
                words = 5  # one lower-case word only: "13010 marseille"
                break
            else:
                break
            words += 1
        cedex = CEDEX.match(text, end)
        return cedex.end() if cedex else end

    def _pieces(self, text: str) -> list[tuple[int, int, int]]:
        pieces: list[tuple[int, int, int]] = []
        for match in NUMBERED_STREET.finditer(text):
            end, _ = self._name(text, match.end(), lower=True)
            if end > match.end():
                within = IN_COMMUNE.match(text, end)
                pieces.append((match.start(), within.end() if within else end, STRONG))
        for match in BARE_STREET.finditer(text):
            end, capital = self._name(text, match.end(), lower=False)
            if end > match.end() and capital:
                within = IN_COMMUNE.match(text, end)
                pieces.append((match.start(), within.end() if within else end, MEDIUM))
            elif end > match.end():
                pieces.append((match.start(), end, WEAK))
        for match in COMPLEMENT.finditer(text):
            end, capital = self._name(text, match.end(), lower=True)
            strength = MEDIUM if capital else WEAK
            pieces.append((match.start(), end, strength))
        for pattern, strength in ((UNIT, STRONG), (LOT, WEAK), (POSTAL_BOX, STRONG)):
            pieces.extend((m.start(), m.end(), strength) for m in pattern.finditer(text))
        for match in POSTCODE.finditer(text):
            end = self._commune_end(text, match.end())
            if end > match.end():
                pieces.append((match.start(), end, STRONG))
        return pieces

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        groups: list[list[int]] = []
        for start, end, strength in sorted(self._pieces(text)):
            if groups and (start <= groups[-1][1] or GAP.fullmatch(text, groups[-1][1], start)):
                groups[-1][1] = max(groups[-1][1], end)
                groups[-1][2] = max(groups[-1][2], strength)
                groups[-1][3] += 1
            else:
                groups.append([start, end, strength, 1])
        results = []
        for start, end, strength, count in groups:
            cued = CUE.search(text[max(0, start - 40) : start]) is not None
            if strength >= MEDIUM or count > 1 or cued:
                # Above spaCy's persons (0.85): "Jean Jaurès" in "12 avenue Jean Jaurès" is an address.
                results.append(RecognizerResult("FR_ADDRESS", start, end, 0.9))
        return results
