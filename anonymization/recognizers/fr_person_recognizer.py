"""PERSON (dictionary rule): capitalized word pairs holding a known French first name (INSEE "Fichier
des prénoms"), e.g. Julie MARTIN, MARTIN Julie, Léa Le Guen.

spaCy's French NER finds most names; this rule and the civility rule catch what the small model misses
most often: upper-case surnames and names with particles.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import regex as re
from presidio_analyzer import Pattern, PatternRecognizer

FIRST_NAMES_FILE = Path("names") / "insee_prenoms_1900_2022_par_sexe_decennie.csv"
CIVILITY = r"(?i:m\.|mr\.?|mme|mlle|monsieur|madame|mademoiselle|docteur|dr\.?|ma[îi]tre|me)"
NAME_WORD = r"(?:[A-ZÀ-Ý](?:[a-zà-ÿ'’]+(?:-[A-ZÀ-Ý][a-zà-ÿ'’]+)*|[A-ZÀ-Ý'’]+(?:-[A-ZÀ-Ý'’]+)*))"
PARTICLE = r"(?:(?i:de|du|des|le|la|van|von|ben|el|d['’])\s*)"
PARTICLE_WORDS = frozenset({"de", "du", "des", "le", "la", "les", "van", "von", "ben", "el"})


@lru_cache(maxsize=1 << 16)
def fold(word: str) -> str:
    """Case- and accent-insensitive form used for dictionary look-ups (cached: words repeat)."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_NOT_NAME_WORDS = (
    "France Travail Emploi Pôle Pole Mission Missions Locale Locales Région Region Sud Provence "
    "Alpes Côte Azur Apec Carif Oref Conseil Département Ville Mairie Caf Cpam Rsa Cap Bac Bts "
    "Dut Cv Cdi Cdd Saint Sainte Rue Avenue Boulevard Place Chemin Route Le La Les Un Une Des "
    "Du De Et Il Elle Nous Vous Ils Madame Monsieur Mademoiselle Mme Mlle Docteur Lundi Mardi "
    "Mercredi Jeudi Vendredi Samedi Dimanche Janvier Février Mars Avril Mai Juin Juillet Août "
    "Septembre Octobre Novembre Décembre "
)
_CITY_WORDS = (
    "Marseille Nice Toulon Avignon Paris Lyon Aix Cannes Antibes Gap Digne Arles Fréjus Hyères Grasse "
    "Martigues Aubagne"
)
#: Towns that are also first names (Paris ADELAIDE): a name only before an upper-case surname.
CITIES = frozenset(fold(w) for w in _CITY_WORDS.split())
NOT_NAMES = frozenset(fold(w) for w in _NOT_NAME_WORDS.split()) | CITIES
# First names that are also everyday capitalized words (Marine nationale, Rose, Avril, …).
_AMBIGUOUS_WORDS = (
    "Marine Conception France Avril Rose Olive Ange Aimé Désiré Victoire Constance Prudence "
    "Espérance Blanche Céleste Fleur Violette Capucine Lune Océane Aurore Soleil Gloire "
    "Juste Salut Fidèle Parfait Innocent Mai "
    "Juin Vendredi Dimanche Noël"
)
AMBIGUOUS = frozenset(fold(w) for w in _AMBIGUOUS_WORDS.split())


def load_first_names(path: Path, min_births: int = 500) -> frozenset[str]:
    """First names given at least `min_births` times in France since 1900, folded."""
    names: set[str] = set()
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            name = row["prenom"]
            if not name.startswith("_") and int(row["total_1900_2022"]) >= min_births:
                names.add(fold(name))
    return frozenset(names - {fold(w) for w in NOT_NAMES})


class FrPersonRecognizer(PatternRecognizer):
    """2-3 capitalized words (particles allowed) that start or end with a known French first name."""

    COUNTRY_CODE = "fr"

    def __init__(
        self,
        first_names: Iterable[str] = (),
        supported_language: str = "fr",
        supported_entity: str = "PERSON",
        rare_first_names: Iterable[str] = (),
    ) -> None:
        self.first_names = (
            first_names if isinstance(first_names, frozenset) else frozenset(fold(n) for n in first_names)
        )
        # Rarer first names count only before an upper-case surname ("Karam VICARD"), where the
        # shape of the pair itself makes a false positive unlikely.
        self.rare_first_names = self.first_names | frozenset(fold(n) for n in rare_first_names)
        patterns = [
            Pattern(
                "first name + surname",
                rf"(?<![\w\-])(?!{CIVILITY}\s){NAME_WORD}(?:\s+{PARTICLE}?{NAME_WORD}){{1,2}}(?![\w\-])",
                0.6,
            )
        ]
        super().__init__(
            supported_entity=supported_entity,
            patterns=patterns,
            supported_language=supported_language,
            name="FrPersonRecognizer",
            global_regex_flags=re.DOTALL | re.MULTILINE,
        )

    def validate_result(self, pattern_text: str) -> bool:
        """A known first name at one end (an ambiguous one only beside an upper-case surname), and no
        institution or calendar word anywhere — unless a clear first name precedes an upper-case surname."""
        words = [w for w in pattern_text.split() if fold(w) not in PARTICLE_WORDS]
        if not words:
            return False
        first = fold(words[0])
        if (
            (first in self.rare_first_names or (first in CITIES and fold(words[-1]) not in NOT_NAMES))
            and first not in AMBIGUOUS
            and len(words[-1]) > 1
            and words[-1].isupper()
        ):
            return True  # "Brigitte FRANCE": an upper-case surname may also be a place or an institution word
        if any(fold(w) in NOT_NAMES for w in words):
            return False
        for name, other in ((words[0], words[-1]), (words[-1], words[0])):
            folded = fold(name)
            if folded in self.first_names and (folded not in AMBIGUOUS or other.isupper()):
                return True
        return False


def first_names_from_reference_data(data_dir: Path, min_births: int = 500) -> frozenset[str]:
    """The INSEE first names found under `data_dir` (empty when the file is absent: civility rules only)."""
    path = data_dir / FIRST_NAMES_FILE
    return load_first_names(path, min_births) if path.is_file() else frozenset()
