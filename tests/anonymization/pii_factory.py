"""Synthetic French identifiers with valid checksums, and the many ways people write them.

Used by the tests and by benchmarks/anonymization (which put this folder on sys.path). Names come from
INSEE's first-name and surname frequency files in the shared reference data.
"""

from __future__ import annotations

import csv
import random
from functools import lru_cache

from anonymization.checksums import luhn_valid, nir_key
from anonymization.reference import reference_data_dir
from simulations.notes import MONTHS_FR

STREET_TYPES = [
    "rue",
    "avenue",
    "boulevard",
    "chemin",
    "impasse",
    "allée",
    "place",
    "route",
    "traverse",
    "cours",
]
STREET_NAMES = [
    "de la République",
    "Jean Jaurès",
    "des Lilas",
    "du Moulin",
    "Victor Hugo",
    "de la Gare",
    "du 8 Mai 1945",
    "Saint-Exupéry",
    "des Oliviers",
    "de l'Église",
    "Paul Cézanne",
    "du Prado",
    "Gambetta",
    "des Pins",
    "Frédéric Mistral",
    "de Provence",
    "Pasteur",
    "du Général de Gaulle",
]


def nir(rng: random.Random, corsica: bool = False) -> str:
    """A valid 15-character NIR (optionally born in Corsica, department 2A/2B)."""
    sex = rng.choice("12")
    year = f"{rng.randint(40, 99):02d}" if rng.random() < 0.8 else f"{rng.randint(0, 10):02d}"
    month = f"{rng.randint(1, 12):02d}"
    department = (
        rng.choice(["2A", "2B"]) if corsica else rng.choice(["04", "05", "06", "13", "83", "84", "75"])
    )
    body = f"{sex}{year}{month}{department}{rng.randint(1, 999):03d}{rng.randint(1, 999):03d}"
    return f"{body}{nir_key(body):02d}"


def wrong_key_nir(rng: random.Random) -> str:
    """A NIR-shaped string whose key is wrong."""
    valid = nir(rng)
    return valid[:13] + f"{(int(valid[13:]) + rng.randint(1, 96)) % 97 or 97:02d}"


def luhn_complete(prefix: str) -> str:
    """Append the Luhn check digit to `prefix`."""
    for digit in "0123456789":
        if luhn_valid(prefix + digit):
            return prefix + digit
    raise AssertionError("unreachable")


def siren(rng: random.Random) -> str:
    """A valid SIREN (9 digits, Luhn)."""
    return luhn_complete(f"{rng.randint(10_000_000, 99_999_999)}")


def siret(rng: random.Random) -> str:
    """A valid SIRET (14 digits, Luhn), not La Poste's."""
    while True:
        value = luhn_complete(siren(rng)[:9] + f"{rng.randint(1, 9999):04d}")
        if not value.startswith("356000000"):
            return value


def luhn_invalid(value: str) -> str:
    """Change the last digit so the Luhn check fails."""
    return value[:-1] + str((int(value[-1]) + 1) % 10)


def iban_fr(rng: random.Random) -> str:
    """A valid French IBAN (FRkk + 23 characters), compact."""
    bban = (
        f"{rng.randint(10000, 99999)}{rng.randint(10000, 99999)}{rng.randint(0, 10**11 - 1):011d}"
        f"{rng.randint(0, 99):02d}"
    )
    numeric = int("".join(str(int(c, 36)) for c in bban + "FR00"))
    return f"FR{98 - numeric % 97:02d}{bban}"


def ft_id(rng: random.Random) -> str:
    """A France Travail identifier: 7 digits + a capital letter."""
    return f"{rng.randint(0, 9_999_999):07d}{rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}"


def mobile(rng: random.Random) -> str:
    """A French mobile number, compact national form."""
    if rng.random() < 0.7:  # 069x and 0639 are Réunion/Mayotte numbers (+262)
        return f"06{rng.choice('1245678')}{rng.randint(0, 9_999_999):07d}"
    return f"07{rng.randint(3, 8)}{rng.randint(0, 9_999_999):07d}"


def landline(rng: random.Random) -> str:
    """A French geographic number (PACA: 04)."""
    return f"04{rng.randint(10_000_000, 99_999_999)}"


def write_nir(value: str, rng: random.Random) -> str:
    """A NIR the way people write it."""
    groups = [value[0], value[1:3], value[3:5], value[5:7], value[7:10], value[10:13], value[13:]]
    style = rng.randrange(4)
    if style == 0:
        return value
    if style == 1:
        return " ".join(groups)
    if style == 2:
        return ".".join(groups)
    return (
        " ".join(groups[:-1]) + "  " + groups[-1]
        if rng.random() < 0.5
        else "".join(groups[:-1]) + " " + groups[-1]
    )


def write_phone(value: str, rng: random.Random) -> str:
    """A French number the way people write it."""
    pairs = [value[i : i + 2] for i in range(0, 10, 2)]
    style = rng.randrange(6)
    if style == 0:
        return value
    if style == 1:
        return " ".join(pairs)
    if style == 2:
        return ".".join(pairs)
    if style == 3:
        return "-".join(pairs)
    if style == 4:
        return "+33 " + value[1] + " " + " ".join(pairs[1:])
    return "+33" + value[1:]


def write_siret(value: str, rng: random.Random) -> str:
    """A SIRET compact or grouped 3-3-3-5."""
    return value if rng.random() < 0.5 else f"{value[:3]} {value[3:6]} {value[6:9]} {value[9:]}"


def write_iban(value: str, rng: random.Random) -> str:
    """An IBAN compact or in groups of four."""
    return value if rng.random() < 0.4 else " ".join(value[i : i + 4] for i in range(0, len(value), 4))


@lru_cache(maxsize=1)
def _names() -> tuple[list[str], list[int], list[str], list[int]]:
    data = reference_data_dir() / "names"
    first, first_w, last, last_w = [], [], [], []
    with (data / "insee_prenoms_1900_2022_par_sexe_decennie.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if not row["prenom"].startswith("_"):
                first.append(row["prenom"])
                first_w.append(int(row["total_1900_2022"]))
    with (data / "insee_noms_1891_2000_top20000.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["NOM"] != "AUTRES NOMS":
                last.append(row["NOM"])
                last_w.append(int(row["total_1891_2000"]))
    return first, first_w, last, last_w


def title(name: str) -> str:
    """MARIE-CLAIRE → Marie-Claire."""
    return "-".join(part.capitalize() for part in name.split("-"))


def first_name(rng: random.Random) -> str:
    """An INSEE first name drawn by frequency, title-cased."""
    first, weights, _, _ = _names()
    return title(rng.choices(first, weights)[0])


def last_name(rng: random.Random) -> str:
    """An INSEE surname drawn by frequency (upper case, as INSEE writes them)."""
    _, _, last, weights = _names()
    return rng.choices(last, weights)[0]


def email_for(first: str, last: str, rng: random.Random) -> str:
    """A plausible personal e-mail address."""
    local = rng.choice([f"{first}.{last}", f"{first[0]}{last}", f"{last}{rng.randint(1, 99)}"]).lower()
    local = local.replace(" ", "").replace("'", "")
    local = "".join(c for c in local if c.isascii())
    return f"{local}@{rng.choice(['gmail.com', 'orange.fr', 'free.fr', 'laposte.net', 'yahoo.fr', 'sfr.fr'])}"


@lru_cache(maxsize=1)
def communes() -> list[tuple[str, str]]:
    """(INSEE code, name) of the PACA communes."""
    with (reference_data_dir() / "geo" / "insee_ze2020_communes_paca.csv").open(encoding="utf-8") as handle:
        return [(row["codgeo"], row["libgeo"]) for row in csv.DictReader(handle)]


def address(rng: random.Random, with_city: bool = True) -> str:
    """A French postal address in PACA."""
    number = f"{rng.randint(1, 250)}{rng.choice(['', '', '', ' bis', ' ter'])}"
    street = f"{number} {rng.choice(STREET_TYPES)} {rng.choice(STREET_NAMES)}"
    if not with_city:
        return street
    code, name = rng.choice(communes())
    postcode = code[:2] + f"{rng.randint(0, 9)}{rng.randint(0, 9)}0" if code[:2] != "13" else "13001"
    return f"{street}{rng.choice([', ', ' '])}{postcode} {name}"


def birth_date(rng: random.Random) -> str:
    """A date of birth in a French notation."""
    day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.randint(1950, 2007)
    style = rng.randrange(4)
    if style == 0:
        return f"{day:02d}/{month:02d}/{year}"
    if style == 1:
        return f"{'1er' if day == 1 else day} {MONTHS_FR[month - 1]} {year}"
    if style == 2:
        return f"{day:02d}.{month:02d}.{year}"
    return f"{year}-{month:02d}-{day:02d}"
