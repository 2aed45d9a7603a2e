"""Public reference data (geography, ROME, labour-market tension) and the lookups model features need.

These tables are public open data, so nodes may read them; they are resolved from one folder
(env ``R2DDE_REFERENCE_DATA``, default ``<repo>/../shared/data``), read offline, parsed once and cached.
Cached frames are shared by every caller: treat them as read-only (``.copy()`` before changing one).

Code vintages differ and are bridged here on purpose, in one place:
- communes: INSEE ZE2020 composition (COG 2025) is the master list; the BMO bassin of each commune comes
  from the older-COG bassin table (the one commune of that table absent from COG 2025 is dropped);
- occupations: ROME 4.0 is the working code; tension figures are published per ROME v3 code, reached
  through ROME 4.0's ``code_rome_parent``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

ENV_VAR = "R2DDE_REFERENCE_DATA"

_ZE_COMMUNES = "geo/insee_ze2020_communes_paca.csv"
_BASSIN_COMMUNES = "geo/bassins_bmo_communes_paca.csv"
_ROME_REFERENTIEL = "rome/unix_referentiel_code_rome_v460_utf8.csv"
_ROME_DOMAINES = "rome/unix_cr_gd_dp_v460_utf8.csv"
_ROME_V3_LABELS = "nomenclatures/rome_v3_labels.csv"
_TENSION = "labour_market/tension_bassin_rome_2021.csv"
_NAF_SUBCLASSES = "nomenclatures/naf_rev2_sous_classes.csv"
_SIZE_BRACKETS = "nomenclatures/tranches_effectif_salarie.csv"
_SIZE_CATEGORIES = "nomenclatures/tranche_effectif_vers_taille.csv"

#: ``ind_tension_d`` is a 1..5 class; the score maps it linearly onto [0, 1].
TENSION_CLASS_MIN = 1
TENSION_CLASS_MAX = 5


class ReferenceDataError(RuntimeError):
    """The reference data folder or one of its files is missing or unreadable."""


class UnknownCodeError(KeyError):
    """A code (commune, zone, ROME) that the reference tables do not know."""

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return str(self.args[0]) if self.args else "unknown code"


def reference_data_dir() -> Path:
    """The folder of public reference data: ``$R2DDE_REFERENCE_DATA`` or ``<repo>/../shared/data``."""
    configured = os.environ.get(ENV_VAR)
    repo_root = Path(__file__).resolve().parents[1]
    folder = Path(configured) if configured else repo_root.parent / "shared" / "data"
    if not folder.is_dir():
        origin = f"${ENV_VAR}" if configured else f"the default (set ${ENV_VAR} to override)"
        raise ReferenceDataError(f"reference data folder {folder} does not exist ({origin})")
    return folder


def _read_csv(relative: str, **options: Any) -> pd.DataFrame:
    path = reference_data_dir() / relative
    if not path.is_file():
        raise ReferenceDataError(f"reference file {path} is missing")
    try:
        table: pd.DataFrame = pd.read_csv(path, **options)
        return table
    except (ValueError, OSError) as exc:
        raise ReferenceDataError(f"reference file {path} could not be read: {exc}") from exc


def _row(table: pd.DataFrame, code: str) -> pd.Series:
    """The row of a code in a table indexed by unique codes (``.loc`` would be a frame on a duplicate)."""
    row = table.loc[code]
    if not isinstance(row, pd.Series):
        raise ReferenceDataError(f"code '{code}' appears more than once in its reference table")
    return row


def clear_caches() -> None:
    """Forget every cached table (e.g. after changing ``$R2DDE_REFERENCE_DATA`` in tests)."""
    for loader in (
        communes_paca,
        zones_emploi_paca,
        rome_referential,
        rome_v3_labels,
        tension_table,
        _tension_maps,
        _zone_bassin_weights,
        _departement_bassins,
        _zone_departements,
        _bassin_departements,
        _rome_parents,
        tension_lookup,
        bassin_tension_lookup,
        naf_subclasses,
        size_brackets,
        rome_grand_domaine_labels,
    ):
        loader.cache_clear()


# --------------------------------------------------------------------------- geography


@lru_cache(maxsize=1)
def communes_paca() -> pd.DataFrame:
    """PACA communes indexed by INSEE code: label, zone d'emploi 2020, département, BMO bassin."""
    ze = _read_csv(_ZE_COMMUNES, dtype=str, keep_default_na=False)
    bassins = _read_csv(_BASSIN_COMMUNES, dtype=str, keep_default_na=False)
    table = ze.merge(
        bassins[["CODE_COMMUNE_INSEE", "BE19", "NOMBE19"]],
        left_on="codgeo",
        right_on="CODE_COMMUNE_INSEE",
        how="left",
        validate="one_to_one",
    )
    missing = table.loc[table["BE19"].isna(), "codgeo"].tolist()
    if missing:
        raise ReferenceDataError(f"communes without a BMO bassin in {_BASSIN_COMMUNES}: {missing[:5]}")
    out = pd.DataFrame(
        {
            "commune_label": table["libgeo"].to_numpy(),
            "zone_emploi": table["ze2020"].to_numpy(),
            "zone_label": table["libze2020"].to_numpy(),
            "departement": table["dep"].to_numpy(),
            "bassin": table["BE19"].to_numpy(),
            "bassin_label": table["NOMBE19"].to_numpy(),
        },
        index=pd.Index(table["codgeo"].to_numpy(), name="commune"),
    )
    return out.sort_index()


@lru_cache(maxsize=1)
def zones_emploi_paca() -> pd.DataFrame:
    """The 22 zones d'emploi (ZE2020) with PACA communes: columns ``ze2020``, ``libze2020``, ``n_communes``.

    ``n_communes`` counts PACA communes only (4 zones extend beyond the region).
    """
    communes = communes_paca()
    zones = communes.groupby("zone_emploi").agg(
        libze2020=("zone_label", "first"), n_communes=("commune_label", "size")
    )
    return zones.rename_axis("ze2020").reset_index().sort_values("ze2020", ignore_index=True)


def _commune_row(commune: str) -> pd.Series:
    communes = communes_paca()
    code = str(commune).strip()
    if code not in communes.index:
        raise UnknownCodeError(f"'{code}' is not an INSEE code of a PACA commune")
    return _row(communes, code)


def commune_to_zone(commune: str) -> str:
    """ZE2020 code (4 chars) of a PACA commune."""
    return str(_commune_row(commune)["zone_emploi"])


def commune_to_bassin(commune: str) -> str:
    """BMO bassin code (4 chars, e.g. ``9306`` Marseille) of a PACA commune."""
    return str(_commune_row(commune)["bassin"])


def commune_to_departement(commune: str) -> str:
    """Département code (2 chars) of a PACA commune."""
    return str(_commune_row(commune)["departement"])


def zone_label(zone_emploi: str) -> str:
    """Label of a PACA zone d'emploi (e.g. ``9312`` → Marseille)."""
    labels = dict(zip(zones_emploi_paca()["ze2020"], zones_emploi_paca()["libze2020"], strict=True))
    if zone_emploi not in labels:
        raise UnknownCodeError(f"'{zone_emploi}' is not a zone d'emploi (ZE2020) of PACA")
    return str(labels[zone_emploi])


@lru_cache(maxsize=64)
def _zone_bassin_weights(zone_emploi: str) -> tuple[tuple[str, int], ...]:
    communes = communes_paca()
    members = communes[communes["zone_emploi"] == zone_emploi]
    if members.empty:
        raise UnknownCodeError(f"'{zone_emploi}' is not a zone d'emploi (ZE2020) of PACA")
    counts = members.groupby("bassin").size()
    return tuple((str(b), int(n)) for b, n in counts.items())


def bassins_of_zone(zone_emploi: str) -> dict[str, int]:
    """BMO bassins overlapping a zone d'emploi, with the number of the zone's communes in each."""
    return dict(_zone_bassin_weights(zone_emploi))


@lru_cache(maxsize=1)
def _departement_bassins() -> dict[str, frozenset[str]]:
    communes = communes_paca()
    return {str(d): frozenset(g["bassin"]) for d, g in communes.groupby("departement")}


@lru_cache(maxsize=1)
def _zone_departements() -> dict[str, frozenset[str]]:
    communes = communes_paca()
    return {str(z): frozenset(g["departement"]) for z, g in communes.groupby("zone_emploi")}


@lru_cache(maxsize=1)
def _bassin_departements() -> dict[str, frozenset[str]]:
    communes = communes_paca()
    return {str(b): frozenset(g["departement"]) for b, g in communes.groupby("bassin")}


# --------------------------------------------------------------------------- occupations (ROME)


@lru_cache(maxsize=1)
def rome_referential() -> pd.DataFrame:
    """ROME 4.0 fiches indexed by code: label, ROME v3 parent, grand domaine, domaine, executive flag."""
    fiches = _read_csv(_ROME_REFERENTIEL, dtype=str, keep_default_na=False)
    domaines = _read_csv(_ROME_DOMAINES, dtype=str, keep_default_na=False)
    table = fiches.merge(
        domaines[["code_rome", "code_grand_domaine", "code_domaine_professionel"]],
        on="code_rome",
        how="left",
        validate="one_to_one",
    )
    out = pd.DataFrame(
        {
            "libelle_rome": table["libelle_rome"].to_numpy(),
            "code_rome_parent": table["code_rome_parent"].to_numpy(),
            "grand_domaine": table["code_grand_domaine"].fillna(table["code_rome"].str[0]).to_numpy(),
            "domaine_professionnel": table["code_domaine_professionel"].fillna("").to_numpy(),
            # ``emploi_cadre`` is "O" (oui), "N" or empty (not assessed): only "O" counts as executive.
            "emploi_cadre": (table["emploi_cadre"] == "O").to_numpy(),
        },
        index=pd.Index(table["code_rome"].to_numpy(), name="code_rome"),
    )
    return out.sort_index()


def _rome_row(rome4: str) -> pd.Series:
    table = rome_referential()
    code = str(rome4).strip().upper()
    if code not in table.index:
        raise UnknownCodeError(f"'{code}' is not a ROME 4.0 code")
    return _row(table, code)


@lru_cache(maxsize=1)
def _rome_parents() -> dict[str, str]:
    table = rome_referential()
    return dict(zip(table.index, table["code_rome_parent"], strict=True))


def is_rome4_code(code: str) -> bool:
    """True when ``code`` is a fiche of the ROME 4.0 referential."""
    return str(code).strip().upper() in rome_referential().index


def rome_label(rome4: str) -> str:
    """Label of a ROME 4.0 fiche (e.g. ``M1805`` → Études et développement informatique)."""
    return str(_rome_row(rome4)["libelle_rome"])


def rome_parent(rome4: str) -> str:
    """The ROME v3 code a ROME 4.0 fiche derives from (``code_rome_parent``)."""
    code = str(rome4).strip().upper()
    parent = _rome_parents().get(code)
    if parent is None:
        raise UnknownCodeError(f"'{code}' is not a ROME 4.0 code")
    return parent


def rome_grand_domaine(rome4: str) -> str:
    """Grand domaine letter (A…N) of a ROME 4.0 fiche."""
    return str(_rome_row(rome4)["grand_domaine"])


def rome_is_executive(rome4: str) -> bool:
    """True when ROME 4.0 flags the fiche as an executive job (``emploi_cadre == "O"``)."""
    return bool(_rome_row(rome4)["emploi_cadre"])


@lru_cache(maxsize=1)
def rome_v3_labels() -> pd.Series:
    """ROME v3 code → label (the vintage of the tension and FAP 2009 tables)."""
    table = _read_csv(_ROME_V3_LABELS, sep="|", dtype=str, keep_default_na=False)
    return pd.Series(table["rome_label"].to_numpy(), index=pd.Index(table["rome_id"].to_numpy()))


# --------------------------------------------------------------------------- labour-market tension


@lru_cache(maxsize=1)
def tension_table() -> pd.DataFrame:
    """Tension 2021 by (ROME v3, BMO bassin), nationwide: score in [0, 1], job offers, job seekers."""
    raw = _read_csv(_TENSION, sep=";", decimal=",", dtype={"ROME": str, "cbassin": str})
    span = TENSION_CLASS_MAX - TENSION_CLASS_MIN
    return pd.DataFrame(
        {
            "rome_v3": raw["ROME"].to_numpy(),
            "bassin": raw["cbassin"].to_numpy(),
            "tension": ((raw["ind_tension_d"].astype(float) - TENSION_CLASS_MIN) / span).to_numpy(),
            "oee": raw["oee"].astype(float).to_numpy(),
            "defm_abc": raw["defm_abc"].astype(float).to_numpy(),
        }
    )


@dataclass(frozen=True)
class _TensionMaps:
    by_pair: dict[tuple[str, str], float]
    national: dict[str, float]
    overall: float


@lru_cache(maxsize=1)
def _tension_maps() -> _TensionMaps:
    table = tension_table()
    by_pair = {
        (str(r), str(b)): float(t)
        for r, b, t in zip(table["rome_v3"], table["bassin"], table["tension"], strict=True)
    }
    national = {str(k): float(v) for k, v in table.groupby("rome_v3")["tension"].mean().items()}
    return _TensionMaps(by_pair=by_pair, national=national, overall=float(table["tension"].mean()))


@dataclass(frozen=True)
class TensionLookup:
    """A tension score and the level of the fallback chain that produced it."""

    value: float
    level: str  # "bassin" | "departement" | "national" | "overall"
    rome_v3: str


def _resolve_tension(
    rome4: str, bassin_weights: dict[str, int], departements: frozenset[str]
) -> TensionLookup:
    v3 = rome_parent(rome4)
    maps = _tension_maps()
    found = [(maps.by_pair[(v3, b)], w) for b, w in bassin_weights.items() if (v3, b) in maps.by_pair]
    if found:
        total = sum(w for _, w in found)
        return TensionLookup(sum(t * w for t, w in found) / total, "bassin", v3)
    dep_bassins = set().union(*(_departement_bassins().get(d, frozenset()) for d in departements))
    values = [maps.by_pair[(v3, b)] for b in sorted(dep_bassins) if (v3, b) in maps.by_pair]
    if values:
        return TensionLookup(sum(values) / len(values), "departement", v3)
    if v3 in maps.national:
        return TensionLookup(maps.national[v3], "national", v3)
    return TensionLookup(maps.overall, "overall", v3)


@lru_cache(maxsize=65536)
def tension_lookup(zone_emploi: str, rome4: str) -> TensionLookup:
    """Tension of an occupation in a zone d'emploi, with the fallback level used.

    Chain: mean of the ROME v3 parent's ``ind_tension_d`` over the BMO bassins overlapping the zone
    (weighted by the zone's communes in each) → mean over the bassins of the zone's départements →
    national mean for that ROME v3 → overall mean of the table.
    """
    weights = bassins_of_zone(zone_emploi)
    return _resolve_tension(rome4, weights, _zone_departements()[zone_emploi])


def tension_index(zone_emploi: str, rome4: str) -> float:
    """Tension score in [0, 1] of a ROME 4.0 occupation in a PACA zone d'emploi (1 = hardest hiring)."""
    return tension_lookup(zone_emploi, rome4).value


@lru_cache(maxsize=65536)
def bassin_tension_lookup(bassin: str, rome4: str) -> TensionLookup:
    """Tension of an occupation in one BMO bassin of PACA (same fallback chain as ``tension_lookup``)."""
    departements = _bassin_departements().get(bassin)
    if departements is None:
        raise UnknownCodeError(f"'{bassin}' is not a BMO bassin of PACA")
    return _resolve_tension(rome4, {bassin: 1}, departements)


def bassin_tension_index(bassin: str, rome4: str) -> float:
    """Tension score in [0, 1] of a ROME 4.0 occupation in a BMO bassin of PACA."""
    return bassin_tension_lookup(bassin, rome4).value


# --------------------------------------------------------------------------- companies (NAF, size brackets)


@lru_cache(maxsize=1)
def naf_subclasses() -> pd.Series:
    """NAF rév. 2 sub-class code (``5610A``) → label, the 732 codes of INSEE's nomenclature."""
    table = _read_csv(_NAF_SUBCLASSES, sep="|", dtype=str, keep_default_na=False)
    return pd.Series(table["naf_label"].to_numpy(), index=pd.Index(table["naf_id"].to_numpy(), name="naf"))


@lru_cache(maxsize=1)
def size_brackets() -> pd.DataFrame:
    """INSEE/SIRENE salaried-size brackets in order: code (``00``…``53``), label (``10-19``), category
    (TPE/PME/ETI/GE), and the bracket's lower and upper headcounts."""
    brackets = _read_csv(_SIZE_BRACKETS, dtype=str, keep_default_na=False)
    categories = _read_csv(_SIZE_CATEGORIES, dtype=str, keep_default_na=False)
    table = brackets.merge(categories, left_on="code", right_on="effectif", how="left", validate="one_to_one")
    bounds = table["label"].str.extract(r"^(\d+)(?:-(\d+))?")
    return pd.DataFrame(
        {
            "label": table["label"].to_numpy(),
            "category": table["taille"].fillna("").to_numpy(),
            "low": bounds[0].astype(int).to_numpy(),
            "high": bounds[1].fillna(bounds[0]).astype(int).to_numpy(),
        },
        index=pd.Index(table["code"].to_numpy(), name="size_bracket"),
    )


@lru_cache(maxsize=1)
def rome_grand_domaine_labels() -> dict[str, str]:
    """ROME grand domaine letter (A…N) → its French label (ROME 4.0)."""
    table = _read_csv(_ROME_DOMAINES, dtype=str, keep_default_na=False)
    pairs = table.drop_duplicates("code_grand_domaine")
    return dict(zip(pairs["code_grand_domaine"], pairs["libelle_grand_domaine"], strict=True))
