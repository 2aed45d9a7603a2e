"""Synthetic French identities with realistic PII: names, NIR, France Travail id, e-mail, phone, address.

Names follow INSEE birth frequencies (first names by sex and birth decade, surnames overall; INSEE's
rare-name aggregates ``_PRENOMS_RARES`` and ``AUTRES NOMS`` are dropped). The NIR carries a valid key
(97 − number mod 97, with Corsica's 2A/2B read as 19/18) and a birth place consistent with the person:
mostly a PACA commune, else another département or abroad (département 99 + INSEE country code).
Contact details are written in the many notations found in real partner files, because the linkage
and PII-scrubbing code must cope with all of them.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import numpy as np
import pandas as pd

from tasks import reference

_FIRST_NAMES = "names/insee_prenoms_1900_2022_par_sexe_decennie.csv"
_LAST_NAMES = "names/insee_noms_1891_2000_top20000.csv"

#: Birth places: PACA commune, other metropolitan département, abroad.
BIRTH_PLACE_SHARES = (0.68, 0.22, 0.10)
#: INSEE country codes (the 3 digits after département 99) of frequent birth countries of PACA residents.
FOREIGN_COUNTRIES = ("350", "352", "351", "139", "127", "109", "134", "135", "341", "333", "324", "123")
_OTHER_DEPARTEMENTS = tuple(
    [f"{d:02d}" for d in range(1, 96) if d not in (4, 5, 6, 13, 20, 83, 84)] + ["2A", "2B"]
)

EMAIL_PROVIDERS = (
    "gmail.com",
    "orange.fr",
    "free.fr",
    "laposte.net",
    "sfr.fr",
    "hotmail.fr",
    "yahoo.fr",
    "outlook.fr",
    "wanadoo.fr",
    "bbox.fr",
    "icloud.com",
    "live.fr",
)
_PROVIDER_WEIGHTS = np.array([30, 16, 10, 6, 6, 9, 5, 5, 4, 3, 3, 3], dtype=float)

STREET_TYPES = (
    "rue",
    "avenue",
    "boulevard",
    "chemin",
    "impasse",
    "allée",
    "place",
    "route",
    "cours",
    "traverse",
    "montée",
    "quai",
)
_STREET_TYPE_WEIGHTS = np.array([34, 18, 10, 12, 6, 5, 3, 5, 2, 2, 2, 1], dtype=float)
STREET_NAMES = (
    "de la République",
    "Jean Jaurès",
    "Victor Hugo",
    "Frédéric Mistral",
    "du Général de Gaulle",
    "Pasteur",
    "Gambetta",
    "des Lilas",
    "des Oliviers",
    "des Pins",
    "de la Mer",
    "Paul Cézanne",
    "Marcel Pagnol",
    "Jean Moulin",
    "de la Libération",
    "des Écoles",
    "du Moulin",
    "de la Gare",
    "Émile Zola",
    "Alphonse Daudet",
    "des Cigales",
    "du Vieux Port",
    "Saint-Roch",
    "des Mimosas",
    "Clemenceau",
    "Jules Ferry",
    "Voltaire",
    "de Verdun",
    "du 8 Mai 1945",
    "de la Paix",
    "Sainte-Victoire",
    "des Lavandes",
    "Jean Giono",
    "Pierre Brossolette",
)
_COMPLEMENTS = ("Bât. B", "Rés. Les Pins", "Apt 12", "Bât. A, Apt 3", "Résidence Le Provençal", "Escalier C")


def _read(relative: str) -> pd.DataFrame:
    path = reference.reference_data_dir() / relative
    if not path.is_file():
        raise reference.ReferenceDataError(f"reference file {path} is missing")
    return pd.read_csv(path, dtype={"sexe": str, "prenom": str, "NOM": str}, keep_default_na=False)


def _display_name(upper: str) -> str:
    """INSEE upper-case → usual spelling: 'JEAN-PIERRE' → 'Jean-Pierre', "D'ARTAGNAN" → "D'Artagnan"."""
    out = []
    capitalize = True
    for ch in upper.lower():
        out.append(ch.upper() if capitalize and ch.isalpha() else ch)
        capitalize = ch in " -'"
    return "".join(out)


def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters and digits only (for e-mail local parts)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum())


@lru_cache(maxsize=1)
def first_name_table() -> pd.DataFrame:
    """First names with births per decade, rare-name aggregate dropped; sex 'M'/'F'; display spelling."""
    table = _read(_FIRST_NAMES)
    table = table[~table["prenom"].str.startswith("_")].copy()
    table["sex"] = table["sexe"].map({"1": "M", "2": "F"})
    table["display"] = table["prenom"].map(_display_name)
    return table.reset_index(drop=True)


@lru_cache(maxsize=1)
def last_name_table() -> pd.DataFrame:
    """Surnames with total births 1891-2000, INSEE's ``AUTRES NOMS`` aggregate dropped."""
    table = _read(_LAST_NAMES)
    table = table[table["NOM"] != "AUTRES NOMS"].copy()
    table["display"] = table["NOM"].map(_display_name)
    return table.reset_index(drop=True)


def sample_first_names(rng: np.random.Generator, sex: np.ndarray, birth_year: np.ndarray) -> np.ndarray:
    """First names drawn with the INSEE frequencies of each person's sex and birth decade."""
    table = first_name_table()
    decade = np.clip((birth_year // 10) * 10, 1900, 2020)
    out = np.empty(len(sex), dtype=object)
    for s in ("F", "M"):
        names = table[table["sex"] == s]
        for d in np.unique(decade[sex == s]):
            idx = np.flatnonzero((sex == s) & (decade == d))
            counts = names[f"n_{d}s"].to_numpy(dtype=float)
            out[idx] = names["display"].to_numpy()[
                rng.choice(len(names), size=idx.size, p=counts / counts.sum())
            ]
    return out


def sample_last_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """Surnames drawn with INSEE birth frequencies."""
    table = last_name_table()
    counts = table["total_1891_2000"].to_numpy(dtype=float)
    return table["display"].to_numpy()[rng.choice(len(table), size=n, p=counts / counts.sum())]


# --------------------------------------------------------------------------- NIR


def nir_key(body: np.ndarray) -> np.ndarray:
    """NIR keys (2 digits as text) of 13-character NIR bodies; Corsica's 2A/2B count as 19/18."""
    digits = np.array([b.replace("2A", "19", 1) if b[5:7] == "2A" else b for b in body], dtype=object)
    digits = np.array([b.replace("2B", "18", 1) if b[5:7] == "2B" else b for b in digits], dtype=object)
    numbers = np.array([int(b) for b in digits], dtype=np.int64)
    keys = 97 - numbers % 97
    return np.array([f"{k:02d}" for k in keys], dtype=object)


def nir_is_valid(nir: str) -> bool:
    """True when a NIR (spaces ignored) has 15 characters and the right key."""
    compact = nir.replace(" ", "").upper()
    if len(compact) != 15:
        return False
    body, key = compact[:13], compact[13:]
    if body[5:7] == "2A":
        body = body[:5] + "19" + body[7:]
    elif body[5:7] == "2B":
        body = body[:5] + "18" + body[7:]
    if not (body.isdigit() and key.isdigit()):
        return False
    return 97 - int(body) % 97 == int(key)


def sample_nirs(
    rng: np.random.Generator, sex: np.ndarray, birth_year: np.ndarray, birth_month: np.ndarray
) -> np.ndarray:
    """NIRs with valid keys; birth place a PACA commune, another département, or abroad (99)."""
    n = len(sex)
    communes = reference.communes_paca().index.to_numpy()
    place = rng.choice(3, size=n, p=BIRTH_PLACE_SHARES)
    paca = communes[rng.integers(0, len(communes), size=n)]
    other_dep = np.array(_OTHER_DEPARTEMENTS, dtype=object)[rng.integers(0, len(_OTHER_DEPARTEMENTS), size=n)]
    other_com = rng.integers(1, 600, size=n)
    country = np.array(FOREIGN_COUNTRIES, dtype=object)[rng.integers(0, len(FOREIGN_COUNTRIES), size=n)]
    order = rng.integers(1, 1000, size=n)
    body = np.empty(n, dtype=object)
    for i in range(n):  # string assembly only; every draw above is vectorized
        if place[i] == 0:
            where = paca[i]
        elif place[i] == 1:
            where = f"{other_dep[i]}{other_com[i]:03d}"
        else:
            where = f"99{country[i]}"
        body[i] = (
            f"{1 if sex[i] == 'M' else 2}{birth_year[i] % 100:02d}{birth_month[i]:02d}{where}{order[i]:03d}"
        )
    return np.array([b + k for b, k in zip(body, nir_key(body), strict=True)], dtype=object)


def format_nir(nir: str, style: int) -> str:
    """A NIR as written by hand or by a system: compact, or grouped '1 85 05 13 055 123 45'."""
    if style == 0:
        return nir
    groups = [nir[0], nir[1:3], nir[3:5], nir[5:7], nir[7:10], nir[10:13], nir[13:15]]
    return " ".join(groups) if style == 1 else " ".join(groups[:-1]) + " " + groups[-1]


# --------------------------------------------------------------------------- contact details


def sample_ft_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """France Travail identifiers: 7 digits and one letter or digit."""
    digits = rng.integers(0, 10_000_000, size=n)
    alphabet = np.array(list("ABCDEFGHJKLMNPRSTUVWXYZ0123456789"))
    last = alphabet[rng.integers(0, len(alphabet), size=n)]
    return np.array([f"{d:07d}{c}" for d, c in zip(digits, last, strict=True)], dtype=object)


def sample_emails(
    rng: np.random.Generator, first: np.ndarray, last: np.ndarray, birth_year: np.ndarray
) -> np.ndarray:
    """E-mail addresses derived from the name, in the usual French patterns and providers."""
    n = len(first)
    pattern = rng.integers(0, 6, size=n)
    number = rng.integers(1, 100, size=n)
    provider = np.array(EMAIL_PROVIDERS)[
        rng.choice(len(EMAIL_PROVIDERS), size=n, p=_PROVIDER_WEIGHTS / _PROVIDER_WEIGHTS.sum())
    ]
    out = np.empty(n, dtype=object)
    for i in range(n):
        f, l_ = ascii_slug(first[i]), ascii_slug(last[i])
        local = (
            f"{f}.{l_}",
            f"{f[0]}.{l_}",
            f"{f}.{l_}{number[i]}",
            f"{l_}.{f}",
            f"{f}{l_}{birth_year[i] % 100:02d}",
            f"{f}_{l_}",
        )[pattern[i]]
        out[i] = f"{local}@{provider[i]}"
    return out


PHONE_STYLES = ("spaced", "international", "compact", "dotted", "international_compact", "dashed")


def format_phone(national: str, style: str) -> str:
    """A 10-digit French number ('0612345678') in one of the notations found in partner files."""
    pairs = [national[i : i + 2] for i in range(0, 10, 2)]
    if style == "spaced":
        return " ".join(pairs)
    if style == "international":
        return "+33 " + national[1] + " " + " ".join(pairs[1:])
    if style == "compact":
        return national
    if style == "dotted":
        return ".".join(pairs)
    if style == "international_compact":
        return "+33" + national[1:]
    return "-".join(pairs)


def sample_phones(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(national 10-digit numbers, their written forms): mobiles 06/07, some PACA landlines 04."""
    prefix = rng.choice(np.array(["06", "07", "04"]), size=n, p=[0.55, 0.3, 0.15])
    rest = rng.integers(0, 100_000_000, size=n)
    style = np.array(PHONE_STYLES)[
        rng.choice(len(PHONE_STYLES), size=n, p=[0.35, 0.2, 0.2, 0.12, 0.08, 0.05])
    ]
    national = np.array([f"{p}{r:08d}" for p, r in zip(prefix, rest, strict=True)], dtype=object)
    written = np.array([format_phone(v, s) for v, s in zip(national, style, strict=True)], dtype=object)
    return national, written


def postcode(commune: str) -> str:
    """A plausible postcode for a PACA commune.

    No postcode table is in the reference data and an INSEE code is not a postcode: this keeps the
    département prefix and derives the rest from the code (``13055`` Marseille → ``13001``…``13016``).
    """
    dep = commune[:2]
    if commune == "13055":
        return f"130{int(commune[2:]) % 16 + 1:02d}"
    return f"{dep}{(int(commune[2:]) * 37) % 90 + 10:02d}0"


def sample_addresses(rng: np.random.Generator, commune: np.ndarray) -> np.ndarray:
    """French postal addresses in the person's commune: number, street type and name, postcode, town."""
    n = len(commune)
    labels = reference.communes_paca()["commune_label"]
    number = rng.integers(1, 180, size=n)
    suffix = rng.choice(np.array(["", " bis", " ter"]), size=n, p=[0.9, 0.07, 0.03])
    street_type = np.array(STREET_TYPES)[
        rng.choice(len(STREET_TYPES), size=n, p=_STREET_TYPE_WEIGHTS / _STREET_TYPE_WEIGHTS.sum())
    ]
    street = np.array(STREET_NAMES)[rng.integers(0, len(STREET_NAMES), size=n)]
    complement = np.where(
        rng.random(n) < 0.15, np.array(_COMPLEMENTS)[rng.integers(0, len(_COMPLEMENTS), size=n)], ""
    )
    upper = rng.random(n) < 0.2
    towns = {c: f"{postcode(c)} {labels.at[c]}" for c in np.unique(commune)}
    out = np.empty(n, dtype=object)
    for i in range(n):
        line = f"{number[i]}{suffix[i]} {street_type[i]} {street[i]}"
        if complement[i]:
            line = f"{complement[i]}, {line}"
        text = f"{line}, {towns[commune[i]]}"
        out[i] = text.upper() if upper[i] else text
    return out
