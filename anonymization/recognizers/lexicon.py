"""Word lists the name rules need, read from the public reference data (never fetched).

* `common_words`: every lower-case word of the ROME 4.0 job texts and job titles, plus spaCy's French
  stop words — real French job vocabulary, so that a first name which is also an everyday word
  ("pierre" in "taille de pierre", "rose", "marine") is never taken for a name when written in lower case.
* `vocabulary`: the same in any case, plus the names of PACA's communes and employment zones — what
  a rare first name must not be to count as a name anywhere in a note.
* `surnames`: INSEE's 20 000 most frequent surnames (1891-2000), to follow a lower-case first name or a
  civility with the surname people write after it ("jean dupont", "mme sophie lefebvre").
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import regex as re

from anonymization.recognizers.fr_person_recognizer import fold

ROME_FILES = (
    Path("rome") / "unix_texte_v460_utf8.csv",
    Path("rome") / "unix_referentiel_appellation_v460_utf8.csv",
    Path("rome") / "unix_referentiel_competence_v460_utf8.csv",
)
SURNAMES_FILE = Path("names") / "insee_noms_1891_2000_top20000.csv"
COMMUNES_FILE = Path("geo") / "insee_ze2020_communes_paca.csv"
WORD = re.compile(r"\p{L}+(?:-\p{L}+)*")


def words(text: str) -> frozenset[str]:
    """The folded words of a space-separated list."""
    return frozenset(fold(w) for w in text.split())


# Titles and roles that follow a civility without being a name ("Madame la Directrice").
TITLES = words(
    "directeur directrice maire adjoint adjointe président présidente conseiller conseillère référent "
    "référente juge préfet préfète député députée sénateur ministre responsable chef cheffe gérant "
    "gérante patron patronne tuteur tutrice formateur formatrice employeur professeur médecin "
    "docteur avocat avocate notaire assistante assistant secrétaire"
)


@lru_cache(maxsize=4)
def common_words(data_dir: Path) -> frozenset[str]:
    """Folded lower-case words of the ROME texts and titles, and French stop words."""
    from spacy.lang.fr.stop_words import STOP_WORDS

    words = {fold(w) for w in STOP_WORDS}
    for name in ROME_FILES:
        path = data_dir / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        words.update(fold(w) for w in WORD.findall(text) if w.islower())
    return frozenset(words)


@lru_cache(maxsize=4)
def vocabulary(data_dir: Path) -> frozenset[str]:
    """Folded words of the ROME texts and titles in any case, and the names of PACA's communes: the
    capitalized words a job text or a note uses that are not people."""
    words = set(common_words(data_dir))
    for name in ROME_FILES:
        path = data_dir / name
        if path.is_file():
            words.update(fold(w) for w in WORD.findall(path.read_text(encoding="utf-8")))
    return frozenset(words | place_names(data_dir))


@lru_cache(maxsize=4)
def place_names(data_dir: Path) -> frozenset[str]:
    """Folded words of the names of PACA's communes and employment zones."""
    words: set[str] = set()
    communes = data_dir / COMMUNES_FILE
    if communes.is_file():
        with communes.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                for label in (row.get("libgeo", ""), row.get("libze2020", "")):
                    words.update(fold(w) for w in WORD.findall(label))
    return frozenset(words)


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """spaCy's French stop words, folded (function words, auxiliaries, pronouns)."""
    from spacy.lang.fr.stop_words import STOP_WORDS

    return frozenset(fold(w) for w in STOP_WORDS)


@lru_cache(maxsize=4)
def surnames(data_dir: Path) -> frozenset[str]:
    """Folded INSEE surnames (empty when the file is absent)."""
    path = data_dir / SURNAMES_FILE
    if not path.is_file():
        return frozenset()
    with path.open(encoding="utf-8", newline="") as handle:
        return frozenset(fold(row["NOM"]) for row in csv.DictReader(handle) if row["NOM"] != "AUTRES NOMS")
