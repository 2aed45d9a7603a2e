"""BMO 2024 (PACA) by ROME 4.0: where synthetic job seekers live and which occupations they target,
and the market reality the autodiagnostic service shows (hiring projects per bassin and occupation).

Occupations — BMO counts hiring projects per FAP 2021 family, and no FAP 2021 ↔ ROME 4.0 table is
public. The route taken, in three documented steps:

1. **FAP 2021 → FAP 2009** (``fap2021_to_fap2009``): for each BMO family, the FAP 2009 family of the
   same *domain letter* whose label is closest (overlap coefficient of word stems and character
   similarity of the accent-free labels; ``peu qualifiés`` read as ``non qualifiés``, and a penalty
   when only one side is unskilled), with bonuses for the same qualification digit (4th character:
   6x employees, 7x-8x technicians and supervisors, 9x executives), for the same two-character
   family, and for the same code up to its third character (``P0X60`` → ``P0Z60``). FAP 2009 labels
   come from La Bonne Boîte's ``lbb_metiers_tension_fap_rome.csv``; only families that reach a ROME
   code are candidates, and unlabelled ones only through their code. The table and its scores are
   returned for inspection: most matches are exact relabellings, a few are approximate (e.g. in
   metalwork and public administration), which is enough for a synthetic marginal.
2. **FAP 2009 → ROME v3**: the DARES/Pôle emploi correspondence table
   (``fap2009_pcs_rome_correspondance.csv``, continuation lines filled forward) joined with the
   FAP↔ROME pairs of the La Bonne Boîte file (the two agree where they overlap). A family's hiring
   projects are split over its ROME v3 codes in proportion to the job offers those codes received in
   PACA in 2021 (``oee`` of the tension table), plus one offer each so that no code is left at zero.
3. **ROME v3 → ROME 4.0**: evenly over the ROME 4.0 fiches whose ``code_rome_parent`` is that v3 code.

Places — there is no population file, so a commune's weight is the number of BMO 2024 hiring
projects of its bassin divided evenly among the bassin's communes. Drawing (bassin, occupation) jointly
from the BMO cells and then a commune uniformly within the bassin makes both the bassin × occupation
joint and the occupation marginal follow BMO exactly; zone d'emploi shares then follow from the
commune → ZE2020 table. BMO cells under statistical secrecy (``*``) count as ``SECRET_CELL_VALUE``.
"""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from tasks import reference

#: BMO masks small counts with ``*``; they are small but not zero (a middle value of the masked range).
SECRET_CELL_VALUE = 5.0
#: Bonus added to the label score of a FAP 2009 candidate with the same qualification digit / family.
SAME_LEVEL_BONUS = 0.15
SAME_FAMILY_BONUS = 0.05
#: Bonus for the FAP 2009 code that only differs by its third character (``P0X60`` → ``P0Z60``).
SAME_CODE_BONUS = 0.3

_STOPWORDS = frozenset({"de", "des", "du", "la", "le", "les", "et", "en", "d", "l", "a", "au", "aux", "ou"})
#: Words shared by too many families to tell them apart; they count in the character ratio only.
_GENERIC = frozenset({"ouvrier", "qualifie", "non", "agent", "autre", "salarie", "assimile", "professionnel"})


def _read(relative: str, **options: Any) -> pd.DataFrame:
    path = reference.reference_data_dir() / relative
    if not path.is_file():
        raise reference.ReferenceDataError(f"reference file {path} is missing")
    table: pd.DataFrame = pd.read_csv(path, **options)
    return table


def _tokens(label: str) -> list[str]:
    text = unicodedata.normalize("NFKD", label.lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("peu qualifie", "non qualifie").replace("’", "'")
    words = re.findall(r"[a-z0-9]+", text)
    return [w.rstrip("sx") if len(w) > 3 else w for w in words if w not in _STOPWORDS]


def _stem(word: str) -> str:
    """Six-letter prefix, so that 'chaudronnerie' meets 'chaudronniers' and 'menuiserie' 'menuisiers'."""
    return word[:6]


def _label_score(a: str, b: str) -> float:
    ta, tb = _tokens(a), _tokens(b)
    if not ta or not tb:
        return 0.0
    sa = {_stem(w) for w in ta if w not in _GENERIC}
    sb = {_stem(w) for w in tb if w not in _GENERIC}
    overlap = len(sa & sb) / min(len(sa), len(sb)) if sa and sb else 0.0
    ratio = SequenceMatcher(None, " ".join(ta), " ".join(tb)).ratio()
    skill = 0.0 if ("non" in ta) == ("non" in tb) else -0.2  # unskilled vs skilled families
    return 0.6 * overlap + 0.4 * ratio + skill


@lru_cache(maxsize=1)
def fap2009_rome_v3() -> pd.DataFrame:
    """FAP 2009 family → ROME v3 code pairs, with the FAP 2009 label (La Bonne Boîte) where known."""
    raw = _read(
        "nomenclatures/fap2009_pcs_rome_correspondance.csv", sep=";", header=None, dtype=str, encoding="utf-8"
    )
    raw[0] = raw[0].where(raw[0].str.fullmatch(r"[A-Z]\d[A-Z]\d\d", na=False)).ffill()
    dares = raw.dropna(subset=[0, 2])
    dares = dares[dares[2].str.fullmatch(r"[A-Z]\d{4}")]
    lbb = _read("labour_market/lbb_metiers_tension_fap_rome.csv", dtype=str, keep_default_na=False)
    lbb = lbb[lbb["rome_code"].str.fullmatch(r"[A-Z]\d{4}")]
    pairs = pd.concat(
        [
            pd.DataFrame({"fap2009": dares[0].to_numpy(), "rome_v3": dares[2].to_numpy()}),
            pd.DataFrame({"fap2009": lbb["fap_code"].to_numpy(), "rome_v3": lbb["rome_code"].to_numpy()}),
        ]
    ).drop_duplicates()
    labels = lbb.drop_duplicates("fap_code").set_index("fap_code")["fap"]
    pairs["fap2009_label"] = pairs["fap2009"].map(labels).fillna("")
    return pairs.sort_values(["fap2009", "rome_v3"]).reset_index(drop=True)


@lru_cache(maxsize=1)
def fap2021_to_fap2009() -> pd.DataFrame:
    """Each BMO (FAP 2021, 228 level) family with its matched FAP 2009 family and the match score."""
    fap21 = _read("nomenclatures/fap2021_nomenclature.csv", dtype=str, keep_default_na=False)
    fap21 = fap21.drop_duplicates("code_fap_228")[["code_fap_228", "intitule_fap_228"]]
    candidates = fap2009_rome_v3().drop_duplicates("fap2009")
    rows = []
    for code, label in zip(fap21["code_fap_228"], fap21["intitule_fap_228"], strict=True):
        same_domain = candidates[candidates["fap2009"].str[0] == code[0]]
        best: tuple[float, str, str] = (-1.0, "", "")
        for cand, cand_label in zip(same_domain["fap2009"], same_domain["fap2009_label"], strict=True):
            same_code = cand[:2] == code[:2] and cand[3:] == code[3:5]
            if not cand_label and not same_code:
                continue  # an unlabelled family can only be reached by its own code
            score = _label_score(label, cand_label) + (SAME_CODE_BONUS if same_code else 0.0)
            score += SAME_LEVEL_BONUS if cand[3] == code[3] else 0.0
            score += SAME_FAMILY_BONUS if cand[:2] == code[:2] else 0.0
            if score > best[0]:
                best = (score, cand, cand_label)
        rows.append(
            {
                "fap2021": code,
                "fap2021_label": label,
                "fap2009": best[1],
                "fap2009_label": best[2],
                "score": round(best[0], 4),
            }
        )
    return pd.DataFrame(rows)


@lru_cache(maxsize=1)
def fap2021_to_rome4() -> pd.DataFrame:
    """Share of each FAP 2021 family's hiring projects given to each ROME 4.0 fiche (shares sum to 1)."""
    crosswalk = fap2021_to_fap2009()
    pairs = fap2009_rome_v3()[["fap2009", "rome_v3"]]
    tension = reference.tension_table()
    paca_offers = tension[tension["bassin"].str.startswith("93")].groupby("rome_v3")["oee"].sum()
    fiches = reference.rome_referential().reset_index()[["code_rome", "code_rome_parent"]]
    children = fiches.groupby("code_rome_parent")["code_rome"].apply(list)

    linked = crosswalk[["fap2021", "fap2009"]].merge(pairs, on="fap2009", how="inner")
    linked = linked[linked["rome_v3"].isin(children.index)].copy()
    linked["offers"] = linked["rome_v3"].map(paca_offers).fillna(0.0) + 1.0
    linked["v3_share"] = linked["offers"] / linked.groupby("fap2021")["offers"].transform("sum")
    linked["rome4"] = linked["rome_v3"].map(children)
    exploded = linked.explode("rome4")
    exploded["share"] = exploded["v3_share"] / exploded.groupby(["fap2021", "rome_v3"])["rome4"].transform(
        "size"
    )
    out = exploded.groupby(["fap2021", "rome4"])["share"].sum().reset_index()
    return out.sort_values(["fap2021", "rome4"]).reset_index(drop=True)


@lru_cache(maxsize=1)
def bmo_projects() -> pd.DataFrame:
    """BMO 2024 hiring projects in PACA per (bassin, FAP 2021 family), secret cells imputed."""
    bmo = _read("labour_market/bmo_2024_paca_bassin_metier.csv", dtype=str, keep_default_na=False)
    met = pd.to_numeric(bmo["met"].replace("*", np.nan), errors="coerce").fillna(SECRET_CELL_VALUE)
    table = pd.DataFrame({"bassin": bmo["BE24"].to_numpy(), "fap2021": bmo["Code métier BMO"].to_numpy()})
    table["projects"] = met.to_numpy()
    return table.groupby(["bassin", "fap2021"])["projects"].sum().reset_index()


@lru_cache(maxsize=1)
def bassin_occupation_weights() -> pd.DataFrame:
    """Hiring projects per (bassin, ROME 4.0 fiche): BMO cells spread over fiches by ``fap2021_to_rome4``.

    Families with no ROME route (e.g. politicians, clergy) are dropped; their share is reported by
    ``unmapped_project_share``.
    """
    joint = bmo_projects().merge(fap2021_to_rome4(), on="fap2021", how="inner")
    joint["weight"] = joint["projects"] * joint["share"]
    out = joint.groupby(["bassin", "rome4"])["weight"].sum().reset_index()
    return out[out["weight"] > 0].sort_values(["bassin", "rome4"]).reset_index(drop=True)


def unmapped_project_share() -> float:
    """Share of PACA BMO hiring projects whose FAP 2021 family reaches no ROME 4.0 fiche."""
    projects = bmo_projects()
    mapped = projects["fap2021"].isin(fap2021_to_rome4()["fap2021"])
    return float(projects.loc[~mapped, "projects"].sum() / projects["projects"].sum())


def occupation_weights() -> pd.Series:
    """Regional marginal: share of PACA hiring projects per ROME 4.0 fiche (sums to 1)."""
    weights = bassin_occupation_weights().groupby("rome4")["weight"].sum()
    return weights / weights.sum()


@lru_cache(maxsize=1)
def commune_weights() -> pd.Series:
    """Probability of living in each PACA commune: bassin hiring projects split evenly over its communes."""
    communes = reference.communes_paca()
    per_bassin = bassin_occupation_weights().groupby("bassin")["weight"].sum()
    n_communes = communes.groupby("bassin").size()
    weights = communes["bassin"].map(per_bassin / n_communes).fillna(0.0)
    return weights / weights.sum()


def zone_weights() -> pd.Series:
    """Expected share of each zone d'emploi implied by ``commune_weights`` and the commune → ZE2020 table."""
    communes = reference.communes_paca()
    return commune_weights().groupby(communes["zone_emploi"]).sum()


@lru_cache(maxsize=1)
def bmo_cells() -> pd.DataFrame:
    """BMO 2024 in PACA per (bassin, FAP 2021 family): hiring projects (``projects``), those judged
    difficult (``difficult``) and seasonal (``seasonal``), summed over départements; a cell under
    statistical secrecy (``*``) stays missing (NaN) so that a reader can say it is secret."""
    bmo = _read("labour_market/bmo_2024_paca_bassin_metier.csv", dtype=str, keep_default_na=False)
    table = pd.DataFrame(
        {
            "bassin": bmo["BE24"].to_numpy(),
            "bassin_label": bmo["NOMBE24"].to_numpy(),
            "fap2021": bmo["Code métier BMO"].to_numpy(),
            "fap2021_label": bmo["Nom métier BMO"].to_numpy(),
        }
    )
    for column, source in (("projects", "met"), ("difficult", "xmet"), ("seasonal", "smet")):
        table[column] = pd.to_numeric(bmo[source].replace("*", np.nan), errors="coerce").to_numpy()
    keys = ["bassin", "bassin_label", "fap2021", "fap2021_label"]
    return table.groupby(keys, as_index=False)[["projects", "difficult", "seasonal"]].sum(min_count=1)
