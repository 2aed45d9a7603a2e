"""Public reference data as the form and the answer need it: ROME 4.0 job titles to search, PACA
communes and zones d'emploi, the ROME mobility graph, and BMO 2024 per bassin.

Everything is read once from the reference folder (``tasks.reference``) and kept in memory as plain
dicts and tuples, so that a diagnosis does no pandas work on these tables.
"""

from __future__ import annotations

import math
import re
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from tasks import labour_market, reference

_APPELLATIONS = "rome/unix_referentiel_appellation_v460_utf8.csv"
_MOBILITY = "rome/unix_rubrique_mobilite_v460_utf8.csv"


def fold(text: str) -> str:
    """Lower case, no accents, words separated by one space: what a search compares."""
    text = unicodedata.normalize("NFKD", str(text).lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(re.findall(r"[a-z0-9]+", text))


@dataclass(frozen=True)
class Appellation:
    code: str  # code_ogr
    label: str
    rome: str


@dataclass(frozen=True)
class Place:
    """Where the person looks for work: a commune (with its zone) or a whole zone d'emploi."""

    code: str
    label: str
    zone_emploi: str
    zone_label: str
    bassin: str
    bassin_label: str
    departements: tuple[str, ...]


@dataclass(frozen=True)
class Market:
    """BMO 2024 for the occupation's closest BMO family in a bassin (``None`` = secret cell)."""

    family: str
    family_label: str
    bassin_label: str
    projects: float | None
    difficult_share: float | None
    seasonal_share: float | None


class Catalogue:
    """The reference tables, loaded once per process."""

    def __init__(self) -> None:
        table = reference._read_csv(_APPELLATIONS, dtype=str, keep_default_na=False)
        known = reference.rome_referential().index
        table = table[table["code_rome"].isin(known)]
        self.appellations: dict[str, Appellation] = {
            c: Appellation(c, label, rome)
            for c, label, rome in zip(
                table["code_ogr"], table["libelle_appellation_long"], table["code_rome"], strict=True
            )
        }
        # Folded once, and indexed by word: a search scans the vocabulary, not the 13 000 titles.
        self._titles = list(self.appellations.values())
        self._folded_titles = [fold(a.label) for a in self._titles]
        self._titles_by_word: dict[str, set[int]] = {}
        for i, text in enumerate(self._folded_titles):
            for word in text.split():
                self._titles_by_word.setdefault(word, set()).add(i)
        self._vocabulary = sorted(self._titles_by_word)  # words with a prefix are one bisected run
        self.rome_labels = {
            str(code): str(label) for code, label in reference.rome_referential()["libelle_rome"].items()
        }
        communes = reference.communes_paca()
        self.communes: dict[str, Place] = {}
        # A zone's département is the one most of its communes are in (a few zones straddle two).
        zone_deps = {
            str(z): {str(g.value_counts().index[0])}
            for z, g in communes.groupby("zone_emploi")["departement"]
        }
        for code, row in communes.iterrows():
            self.communes[str(code)] = Place(
                str(code),
                str(row["commune_label"]),
                str(row["zone_emploi"]),
                str(row["zone_label"]),
                str(row["bassin"]),
                str(row["bassin_label"]),
                (str(row["departement"]),),
            )
        self._commune_index = [(fold(p.label), p) for p in self.communes.values()]
        self.zones: dict[str, Place] = {}
        for zone, group in communes.groupby("zone_emploi"):
            main = group["bassin"].value_counts().index[0]
            self.zones[str(zone)] = Place(
                str(zone),
                str(group["zone_label"].iloc[0]),
                str(zone),
                str(group["zone_label"].iloc[0]),
                str(main),
                str(group.loc[group["bassin"] == main, "bassin_label"].iloc[0]),
                tuple(sorted(zone_deps[str(zone)])),
            )
        mobility = reference._read_csv(_MOBILITY, dtype=str, keep_default_na=False)
        mobility["order"] = pd.to_numeric(mobility["numero_ordre"], errors="coerce").fillna(99)
        self.mobility: dict[str, tuple[str, ...]] = {
            str(r): tuple(g.sort_values("order")["code_rome_cible"])
            for r, g in mobility[mobility["code_rome_cible"].isin(known)].groupby("code_rome")
        }
        cells = labour_market.bmo_cells()
        self._bmo = {
            (b, f): (label, flabel, p, d, s)
            for b, label, f, flabel, p, d, s in cells[
                ["bassin", "bassin_label", "fap2021", "fap2021_label", "projects", "difficult", "seasonal"]
            ].itertuples(index=False)
        }
        self._family_labels = dict(zip(cells["fap2021"], cells["fap2021_label"], strict=False))
        crosswalk = labour_market.fap2021_to_rome4().sort_values("share", ascending=False, kind="stable")
        self._families: dict[str, tuple[str, ...]] = {
            str(r): tuple(g["fap2021"]) for r, g in crosswalk.groupby("rome4", sort=False)
        }

    # ------------------------------------------------------------------ search

    def search_appellations(self, query: str, limit: int = 15) -> list[Appellation]:
        """Job titles whose words start with every word of ``query`` (accents and case ignored);
        an exact title first, then the shortest titles."""
        words = fold(query).split()
        if not words:
            return []
        exact = fold(query)
        matches: set[int] | None = None
        for w in words:  # titles having, for every query word, a word that starts with it
            start, stop = bisect_left(self._vocabulary, w), bisect_left(self._vocabulary, w + "\uffff")
            having = set().union(*(self._titles_by_word[word] for word in self._vocabulary[start:stop]))
            matches = having if matches is None else matches & having
            if not matches:
                return []
        assert matches is not None
        found = sorted(
            matches,
            key=lambda i: (
                self._folded_titles[i] != exact,
                len(self._titles[i].label),
                self._titles[i].label,
            ),
        )
        return [self._titles[i] for i in found[:limit]]

    def search_communes(self, query: str, limit: int = 15) -> list[Place]:
        """Communes by INSEE code or by name (accents, case and hyphens ignored)."""
        text = query.strip()
        if re.fullmatch(r"(\d{2}|2[AB])\d{3}", text.upper()):
            place = self.communes.get(text.upper())
            return [place] if place else []
        wanted = fold(text)
        if not wanted:
            return []
        exact = [p for t, p in self._commune_index if t == wanted]
        if exact:
            return exact[:limit]
        return sorted((p for t, p in self._commune_index if t.startswith(wanted)), key=lambda p: p.label)[
            :limit
        ]

    def neighbouring_zones(self, zone: str) -> list[Place]:
        """Other zones d'emploi sharing a département with ``zone`` (the commuting horizon)."""
        departements = set(self.zones[zone].departements)
        return [p for z, p in sorted(self.zones.items()) if z != zone and departements & set(p.departements)]

    # ------------------------------------------------------------------ labour market

    def market(self, bassin: str, rome: str) -> Market | None:
        """BMO 2024 of the occupation's main BMO family in the bassin; None when no family maps."""
        families = self._families.get(rome, ())
        for family in families:
            cell = self._bmo.get((bassin, family))
            if cell is None:
                continue
            bassin_label, family_label, projects, difficult, seasonal = cell
            return Market(
                family=family,
                family_label=str(family_label),
                bassin_label=str(bassin_label),
                projects=_finite(projects),
                difficult_share=_share(difficult, projects),
                seasonal_share=_share(seasonal, projects),
            )
        if families:
            family = families[0]
            return Market(family, str(self._family_labels.get(family, family)), "", None, None, None)
        return None


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _share(part: float, total: float) -> float | None:
    known_part, known_total = _finite(part), _finite(total)
    if known_part is None or known_total is None or known_total <= 0:
        return None
    return min(known_part / known_total, 1.0)


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    return Catalogue()
