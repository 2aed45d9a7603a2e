"""Seeded generator of the company holders' ``entreprises.csv`` (use case 2), calibrated on public data.

One row per establishment of Provence-Alpes-Côte d'Azur. What is real and what is invented:
- the occupations an establishment seeks follow La Bonne Boîte's hirings by (ROME v3 × NAF
  sub-class) for the NAF sub-classes of its sector (``lbb_embauches_rome_naf.csv``), carried to
  ROME 4.0 through ``code_rome_parent``;
- the chance that a project is judged difficult, and that it is seasonal, is the BMO 2024 PACA
  rate of the occupation (``xmet/met``, ``smet/met`` per FAP 2021 family, spread over ROME 4.0 by
  ``simulations.labour_market.fap2021_to_rome4``), shifted by the company's hidden type;
- places follow BMO hiring projects (``labour_market.commune_weights``);
- the **hidden types** (``COMPANY_TYPES``: sector mix, size, difficulty and seasonality shifts) are
  assumptions, kept in ``<out>/companies_truth.csv`` for evaluation only — no node reads it;
- ``skill_need`` is the follow-up: the occupations the establishment did find hard to hire the
  next year, more likely among the difficult occupations it seeks now.

Holders: France Travail's employer service (most establishments), the Carif-Oref observatory
(establishments surveyed on their skill needs, more industry, care and construction) and APEC
(establishments recruiting executives: services and industry, larger). Some establishments are
known to France Travail and to a second holder (same SIRET, same survey answers).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from tasks import reference
from tasks.companies import COMPANY_COLUMNS, SIZE_SCALE, sector_of_division

from . import labour_market

GENERATOR_VERSION = "1"
FILE_NAME = "entreprises.csv"
TRUTH_FILE = "companies_truth.csv"


@dataclass(frozen=True)
class CompanyType:
    """A kind of establishment (hidden truth): what it does, how big it is, how it hires."""

    name: str
    label_fr: str
    share: float
    divisions: dict[int, float]  # NAF division → weight
    size_weights: tuple[float, ...]  # over ``SIZE_SCALE``
    projects_mean: float  # mean hiring projects of a 1-2 employee establishment (grows with size)
    difficulty_shift: float  # added to the BMO rate of each sought occupation
    seasonal_shift: float
    turnover: float  # past hires per hiring project


COMPANY_TYPES: tuple[CompanyType, ...] = (
    CompanyType(
        "restauration_saisonniere",
        "Restauration et hébergement touristiques",
        0.17,
        {55: 0.35, 56: 0.65},
        (0.05, 0.25, 0.3, 0.22, 0.12, 0.05, 0.01, 0, 0, 0),
        2.5,
        -0.02,
        0.35,
        2.2,
    ),
    CompanyType(
        "exploitations_agricoles",
        "Exploitations agricoles à main-d'œuvre saisonnière",
        0.07,
        {1: 0.9, 2: 0.05, 3: 0.05},
        (0.15, 0.35, 0.25, 0.15, 0.07, 0.03, 0, 0, 0, 0),
        3.0,
        -0.12,
        0.45,
        2.5,
    ),
    CompanyType(
        "artisans_batiment",
        "Artisans et PME du bâtiment",
        0.17,
        {43: 0.8, 41: 0.15, 42: 0.05},
        (0.1, 0.35, 0.25, 0.15, 0.1, 0.05, 0, 0, 0, 0),
        1.2,
        0.12,
        -0.25,
        0.8,
    ),
    CompanyType(
        "commerce_proximite",
        "Commerces de proximité",
        0.18,
        {47: 0.75, 45: 0.1, 96: 0.15},
        (0.1, 0.4, 0.25, 0.15, 0.07, 0.03, 0, 0, 0, 0),
        1.0,
        -0.35,
        -0.1,
        1.2,
    ),
    CompanyType(
        "industrie_pme",
        "PME industrielles",
        0.10,
        {10: 0.3, 25: 0.2, 28: 0.1, 22: 0.1, 33: 0.15, 20: 0.15},
        (0, 0.03, 0.07, 0.15, 0.25, 0.3, 0.12, 0.05, 0.02, 0.01),
        0.6,
        0.08,
        -0.3,
        0.7,
    ),
    CompanyType(
        "sante_medico_social",
        "Établissements de santé et médico-sociaux",
        0.10,
        {86: 0.35, 87: 0.35, 88: 0.3},
        (0.02, 0.05, 0.08, 0.15, 0.25, 0.25, 0.12, 0.05, 0.02, 0.01),
        0.8,
        0.15,
        -0.3,
        1.0,
    ),
    CompanyType(
        "services_numerique",
        "Services aux entreprises et numérique",
        0.13,
        {62: 0.35, 69: 0.2, 70: 0.2, 71: 0.25},
        (0.15, 0.3, 0.2, 0.15, 0.1, 0.07, 0.02, 0.01, 0, 0),
        0.8,
        -0.08,
        -0.35,
        0.6,
    ),
    CompanyType(
        "transport_logistique",
        "Transport et logistique",
        0.08,
        {49: 0.6, 52: 0.4},
        (0.05, 0.15, 0.15, 0.2, 0.2, 0.15, 0.06, 0.03, 0.01, 0),
        0.9,
        0.1,
        -0.15,
        1.3,
    ),
)
TYPE_NAMES: tuple[str, ...] = tuple(t.name for t in COMPANY_TYPES)


@dataclass(frozen=True)
class Holder:
    """A partner that follows establishments, and how its portfolio differs from the population's."""

    site: str
    share: float  # share of the distinct establishments of the simulation
    type_weights: dict[str, float]  # multiplies the population share of each type
    size_tilt: float  # > 1 favours larger brackets


HOLDERS: dict[str, Holder] = {
    h.site: h
    for h in (
        Holder("france_travail", 0.60, {}, 1.0),
        Holder(
            "carif_oref",
            0.25,
            {
                "industrie_pme": 2.0,
                "sante_medico_social": 1.8,
                "artisans_batiment": 1.5,
                "commerce_proximite": 0.6,
            },
            1.2,
        ),
        Holder(
            "apec",
            0.15,
            {
                "services_numerique": 3.0,
                "industrie_pme": 2.5,
                "sante_medico_social": 1.5,
                "restauration_saisonniere": 0.3,
                "exploitations_agricoles": 0.2,
                "commerce_proximite": 0.4,
            },
            1.6,
        ),
    )
}
DEFAULT_HOLDERS: tuple[str, ...] = ("france_travail", "carif_oref", "apec")
#: Share of a second holder's establishments that France Travail also follows.
OVERLAP_WITH_FRANCE_TRAVAIL: dict[str, float] = {"carif_oref": 0.12, "apec": 0.10}


# --------------------------------------------------------------------------- calibration tables


@lru_cache(maxsize=1)
def bmo_rates_by_rome4() -> pd.DataFrame:
    """Per ROME 4.0 fiche: BMO 2024 PACA projects, difficult and seasonal rates (FAP 2021 spread)."""
    path = reference.reference_data_dir() / "labour_market/bmo_2024_paca_bassin_metier.csv"
    bmo = pd.read_csv(path, dtype=str, keep_default_na=False)
    table = pd.DataFrame({"fap2021": bmo["Code métier BMO"].to_numpy()})
    for column in ("met", "xmet", "smet"):  # secret cells count as 0 here: they cancel out in the rates
        table[column] = (
            pd.to_numeric(bmo[column].replace("*", np.nan), errors="coerce").fillna(0.0).to_numpy()
        )
    per_family = table.groupby("fap2021", as_index=False)[["met", "xmet", "smet"]].sum()
    joint = per_family.merge(labour_market.fap2021_to_rome4(), on="fap2021", how="inner")
    for column in ("met", "xmet", "smet"):
        joint[column] = joint[column] * joint["share"]
    out = joint.groupby("rome4")[["met", "xmet", "smet"]].sum()
    out = out[out["met"] > 0]
    return pd.DataFrame(
        {
            "projects": out["met"],
            "difficult_rate": out["xmet"] / out["met"],
            "seasonal_rate": out["smet"] / out["met"],
        }
    )


def bmo_regional_rates() -> tuple[float, float]:
    """PACA's share of projects judged difficult and of seasonal projects (BMO 2024, whole region)."""
    rates = bmo_rates_by_rome4()
    weights = rates["projects"]
    return (
        float((rates["difficult_rate"] * weights).sum() / weights.sum()),
        float((rates["seasonal_rate"] * weights).sum() / weights.sum()),
    )


@lru_cache(maxsize=1)
def lbb_occupations_by_division() -> dict[int, pd.Series]:
    """NAF division → share of its hirings per ROME 4.0 fiche (La Bonne Boîte, v3 spread evenly on v4)."""
    path = reference.reference_data_dir() / "labour_market/lbb_embauches_rome_naf.csv"
    lbb = pd.read_csv(path, dtype={"naf_id": str, "rome_id": str})
    lbb["division"] = lbb["naf_id"].str[:2].astype(int)
    fiches = reference.rome_referential().reset_index()[["code_rome", "code_rome_parent"]]
    children = fiches.groupby("code_rome_parent")["code_rome"].apply(list)
    lbb = lbb[lbb["rome_id"].isin(children.index)].copy()
    lbb["rome4"] = lbb["rome_id"].map(children)
    lbb = lbb.explode("rome4")
    lbb["hirings"] = lbb["hirings"] / lbb.groupby(["division", "rome_id"])["rome4"].transform("size")
    out: dict[int, pd.Series] = {}
    for division, group in lbb.groupby("division"):
        weights = group.groupby("rome4")["hirings"].sum()
        # pandas-stubs types a group key as any scalar; "division" holds integers (NAF divisions).
        out[int(division)] = weights / weights.sum()  # type: ignore[arg-type]
    return out


@lru_cache(maxsize=1)
def naf_subclasses_by_division() -> dict[int, tuple[str, ...]]:
    codes = reference.naf_subclasses().index
    out: dict[int, list[str]] = {}
    for code in codes:
        out.setdefault(int(code[:2]), []).append(code)
    return {k: tuple(v) for k, v in out.items()}


# --------------------------------------------------------------------------- sampling


def luhn_complete(digits: str) -> str:
    """``digits`` followed by the Luhn check digit that makes the whole pass."""
    for check in "0123456789":
        candidate = digits + check
        total = 0
        for position, char in enumerate(reversed(candidate)):
            value = int(char) * (2 if position % 2 else 1)
            total += value - 9 if value > 9 else value
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable: one check digit always fits")


def sample_sirets(rng: np.random.Generator, n: int) -> np.ndarray:
    """Distinct, Luhn-valid SIRETs (SIREN Luhn-valid too), never La Poste's SIREN."""
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        siren = luhn_complete(f"{rng.integers(1, 99_999_999):08d}")
        if siren == "356000000":
            continue
        siret = luhn_complete(siren + f"{rng.integers(1, 9999):04d}")
        if siret not in seen:
            seen.add(siret)
            out.append(siret)
    return np.array(out, dtype=object)


def _type_probabilities(holder: Holder) -> np.ndarray:
    p = np.array([t.share * holder.type_weights.get(t.name, 1.0) for t in COMPANY_TYPES])
    probabilities: np.ndarray = p / p.sum()
    return probabilities


def _sizes(rng: np.random.Generator, kind: CompanyType, tilt: float, n: int) -> np.ndarray:
    p = np.array(kind.size_weights) * tilt ** np.arange(len(SIZE_SCALE))
    return rng.choice(len(SIZE_SCALE), size=n, p=p / p.sum())


def _establishments(rng: np.random.Generator, holder: Holder, n: int) -> pd.DataFrame:
    """``n`` distinct establishments as one holder's portfolio draws them (truth columns included)."""
    occupations = lbb_occupations_by_division()
    rates = bmo_rates_by_rome4()
    mean_difficult, mean_seasonal = bmo_regional_rates()
    naf_by_division = naf_subclasses_by_division()
    communes = labour_market.commune_weights()
    types = rng.choice(len(COMPANY_TYPES), size=n, p=_type_probabilities(holder))
    commune = rng.choice(communes.index.to_numpy(), size=n, p=communes.to_numpy())
    rows = []
    for i, t in enumerate(types):
        kind = COMPANY_TYPES[t]
        divisions = [d for d in kind.divisions if d in occupations and d in naf_by_division]
        weights = np.array([kind.divisions[d] for d in divisions])
        division = divisions[rng.choice(len(divisions), p=weights / weights.sum())]
        naf = naf_by_division[division][rng.integers(len(naf_by_division[division]))]
        rank = int(_sizes(rng, kind, holder.size_tilt, 1)[0])
        headcount = reference.size_brackets().loc[SIZE_SCALE[rank], ["low", "high"]].mean()
        projects = int(rng.poisson(kind.projects_mean * (1 + headcount) ** 0.45))
        pool = occupations[division]
        n_occupations = min(max(projects, 0), 1 + int(rng.poisson(0.3 + 0.25 * rank)))
        sought: dict[str, int] = {}
        if projects > 0:
            chosen = (
                rng.choice(
                    pool.index.to_numpy(), size=max(n_occupations, 1), replace=False, p=pool.to_numpy()
                )
                if len(pool) >= n_occupations
                else pool.index.to_numpy()
            )
            split = rng.multinomial(projects, rng.dirichlet(np.ones(len(chosen))))
            sought = {str(c): int(k) for c, k in zip(chosen, split, strict=True) if k > 0}
        company_shift = rng.normal(0.0, 0.08)
        difficult = seasonal = 0
        needs: set[str] = set()
        for code, count in sought.items():
            base_d = rates["difficult_rate"].get(code, mean_difficult)
            base_s = rates["seasonal_rate"].get(code, mean_seasonal)
            p_d = float(np.clip(base_d + kind.difficulty_shift + company_shift, 0.02, 0.98))
            p_s = float(np.clip(base_s + kind.seasonal_shift, 0.0, 0.98))
            difficult += int(rng.binomial(count, p_d))
            seasonal += int(rng.binomial(count, p_s))
            if rng.random() < 0.1 + 0.75 * p_d:  # next year, difficult occupations stay difficult
                needs.add(code)
        if rng.random() < 0.15:  # a new occupation becomes hard to hire
            needs.add(str(rng.choice(pool.index.to_numpy(), p=pool.to_numpy())))
        hires = int(
            rng.poisson(kind.turnover * max(projects, 0.5) * (0.6 + 0.8 * (seasonal / max(projects, 1))))
        )
        rows.append(
            {
                "type": kind.name,
                "naf": naf,
                "size_bracket": SIZE_SCALE[rank],
                "commune": str(commune[i]),
                "hiring_projects": projects,
                "difficult_projects": difficult,
                "seasonal_projects": seasonal,
                "past_hires": hires,
                "rome_sought": "|".join(f"{c}:{k}" for c, k in sorted(sought.items())),
                "skill_need": "|".join(sorted(needs)),
            }
        )
    frame = pd.DataFrame(rows)
    frame.insert(0, "siret", sample_sirets(rng, n))
    assert frame["naf"].str[:2].astype(int).map(sector_of_division).notna().all()
    return frame


#: Rows written with a defect when ``bad_rows`` is asked: (column, bad value, what it shows).
BAD_ROW_DEFECTS: tuple[tuple[str, str | int], ...] = (
    ("naf", "9999Z"),  # not a NAF sub-class
    ("size_bracket", "41"),  # 500-999 employees: not a small or medium company
    ("hiring_projects", -3),  # a negative count
)


def _site_sizes(total: int, sites: Sequence[str]) -> dict[str, int]:
    shares = np.array([HOLDERS[s].share for s in sites])
    raw = total * shares / shares.sum()
    sizes = np.floor(raw).astype(int)
    sizes[np.argsort(-(raw - sizes), kind="stable")[: total - sizes.sum()]] += 1
    return {s: int(k) for s, k in zip(sites, sizes, strict=True)}


def generate_companies(
    out_dir: Path,
    *,
    seed: int = 42,
    companies: int = 20000,
    sites: Sequence[str] = DEFAULT_HOLDERS,
    bad_rows: int = 0,
) -> dict[str, Path]:
    """Write ``<out_dir>/<site>/entreprises.csv`` per holder and the hidden ``companies_truth.csv``.

    ``companies`` distinct establishments; those shared with France Travail add rows there.
    ``bad_rows`` defective rows (``BAD_ROW_DEFECTS`` in turn) are appended to the first site's
    file, so that validation has something to report. Same seed, byte-identical files.
    """
    unknown = [s for s in sites if s not in HOLDERS]
    if unknown:
        raise ValueError(f"site(s) {unknown} hold no company data; holders: {sorted(HOLDERS)}")
    if not sites or len(set(sites)) != len(sites):
        raise ValueError("sites must be a non-empty list without repeats")
    if companies < 50 * len(sites):
        raise ValueError(
            f"companies={companies} is too small for {len(sites)} sites (at least {50 * len(sites)})"
        )
    streams = np.random.SeedSequence([seed, 2]).spawn(len(sites) + 2)
    sizes = _site_sizes(companies, sites)
    tables = {
        s: _establishments(np.random.default_rng(streams[i]), HOLDERS[s], sizes[s])
        for i, s in enumerate(sites)
    }
    overlap_rng = np.random.default_rng(streams[len(sites)])
    overlaps: dict[str, int] = {}
    if "france_travail" in tables:
        shared = []
        for site, rate in OVERLAP_WITH_FRANCE_TRAVAIL.items():
            if site in tables:
                chosen = np.sort(
                    overlap_rng.choice(len(tables[site]), size=int(rate * len(tables[site])), replace=False)
                )
                shared.append(tables[site].iloc[chosen])
                overlaps[f"france_travail|{site}"] = len(chosen)
        ft = pd.concat([tables["france_travail"], *shared], ignore_index=True)
        tables["france_travail"] = ft.iloc[overlap_rng.permutation(len(ft))].reset_index(drop=True)
    out_dir = Path(out_dir)
    paths: dict[str, Path] = {}
    truth_parts = []
    defects: list[dict[str, object]] = []
    for i, site in enumerate(sites):
        table = tables[site]
        truth_parts.append(pd.DataFrame({"site": site, "siret": table["siret"], "type": table["type"]}))
        rows = table[list(COMPANY_COLUMNS)].copy()
        if i == 0 and bad_rows:
            bad_rng = np.random.default_rng(streams[-1])
            picked = bad_rng.choice(len(rows), size=bad_rows, replace=False)
            extra = rows.iloc[picked].reset_index(drop=True)
            extra["siret"] = sample_sirets(bad_rng, bad_rows)
            for j in range(bad_rows):
                column, value = BAD_ROW_DEFECTS[j % len(BAD_ROW_DEFECTS)]
                extra.loc[j, column] = value
                defects.append({"line": len(rows) + j + 2, "field": column, "value": value})
            rows = pd.concat([rows.astype(object), extra.astype(object)], ignore_index=True)
        folder = out_dir / site
        folder.mkdir(parents=True, exist_ok=True)
        paths[site] = folder / FILE_NAME
        rows.to_csv(paths[site], index=False, lineterminator="\n", encoding="utf-8")
    pd.concat(truth_parts, ignore_index=True).to_csv(out_dir / TRUTH_FILE, index=False, lineterminator="\n")
    mean_difficult, mean_seasonal = bmo_regional_rates()
    summary = {
        "generator": f"simulations.companies v{GENERATOR_VERSION}",
        "seed": seed,
        "companies": companies,
        "sites": {s: {"rows": len(tables[s])} for s in sites},
        "overlaps": overlaps,
        "bad_rows": {"site": sites[0], "rows": defects} if defects else {},
        "types": [asdict(t) for t in COMPANY_TYPES],
        "calibration": {
            "occupations": "La Bonne Boîte hirings by ROME v3 x NAF sub-class, ROME v3 -> ROME 4.0",
            "difficulty_and_seasonality": "BMO 2024 PACA xmet/met and smet/met per ROME 4.0, shifted by type",
            "bmo_paca_difficult_share": round(mean_difficult, 4),
            "bmo_paca_seasonal_share": round(mean_seasonal, 4),
        },
    }
    (out_dir / "companies_truth.json").write_text(
        json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n"
    )
    return paths
