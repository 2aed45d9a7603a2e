"""Seeded generator of the partners' ``parcours`` files (use case 1), calibrated on public data.

What is real and what is invented:
- places and occupations follow BMO 2024 hiring projects in PACA (see ``simulations.labour_market``
  for the FAP 2021 → ROME 4.0 route and the commune weights);
- the outcome follows a known logistic model (``simulations.ground_truth.GROUND_TRUTH``) of the
  2021 tension of the person's (bassin, ROME) pair (``tasks.reference.bassin_tension_index``) and of
  the profile;
- identities follow INSEE name frequencies, with valid NIR keys (``simulations.identities``);
- profile distributions per partner (ages, education, durations) are plausible assumptions, stated
  in ``simulations.site_profiles.SITE_PROFILES``; a region's agencies and Missions Locales
  (``simulations.region``) keep their network's profile and draw their people in their own bassin.

Some people are registered at two partners (same NIR, names, sex, birth year, commune, profile and
outcome; their own record id, registration date, note and notations), so that linkage and opt-outs
have work to do. ``generate_partners`` writes ``<out>/<site>/parcours.csv`` and ``<out>/ground_truth.json``;
the same seed gives byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from simulations import identities, labour_market, region
from simulations.ground_truth import GROUND_TRUTH
from simulations.notes import compose_notes
from tasks import reference
from tasks.schema import EDUCATION_LEVELS, MONTHS_TO_EMPLOYMENT_MAX, OUTCOME_HORIZON_MONTHS, PARCOURS_COLUMNS

from .site_profiles import (
    DEFAULT_SITES,
    FT_ID_KNOWN_ELSEWHERE,
    OVERLAP_WITH_FRANCE_TRAVAIL,
    SITE_PROFILES,
    SiteProfile,
)

__all__ = ["DEFAULT_SITES", "SITE_PROFILES", "SiteProfile", "generate_partners"]

REFERENCE_YEAR = GROUND_TRUTH.reference_year
REGISTRATION_START = dt.date(2023, 1, 2)
REGISTRATION_END = dt.date(2024, 6, 28)
GENERATOR_VERSION = "1"


# --------------------------------------------------------------------------- sampling helpers


def _ages(rng: np.random.Generator, profile: SiteProfile, n: int) -> np.ndarray:
    low, high = profile.age_min, profile.age_max + 1
    return np.floor(rng.triangular(low, profile.age_mode, high, size=n)).astype(int).clip(low, high - 1)


@dataclass(frozen=True)
class _Places:
    bassins: np.ndarray
    communes_by_bassin: dict[str, np.ndarray]


def _places() -> _Places:
    communes = reference.communes_paca()
    groups = {str(b): g.index.to_numpy() for b, g in communes.groupby("bassin")}
    return _Places(np.array(sorted(groups)), groups)


def _occupation_matrix(profile: SiteProfile) -> pd.DataFrame:
    """(bassin, rome4, probability) cells for a profile: BMO weights with the executive adjustment."""
    cells = labour_market.bassin_occupation_weights().copy()
    executive = reference.rome_referential()["emploi_cadre"]
    is_exec = cells["rome4"].map(executive).fillna(False).to_numpy(dtype=bool)
    cells["p"] = cells["weight"] * np.where(is_exec, profile.executive_weight, profile.non_executive_weight)
    if profile.bassins:  # an agency's or a Mission Locale's people live in the bassins it serves
        cells["p"] = cells["p"].where(cells["bassin"].isin(profile.bassins), 0.0)
    cells = cells[cells["p"] > 0].reset_index(drop=True)
    cells["p"] = cells["p"] / cells["p"].sum()
    return cells


@dataclass(frozen=True)
class _Mobility:
    """Reverse ROME mobility graph: for each target, the fiches people move from."""

    sources: dict[str, np.ndarray]


def _mobility() -> _Mobility:
    path = reference.reference_data_dir() / "rome/unix_rubrique_mobilite_v460_utf8.csv"
    if not path.is_file():
        raise reference.ReferenceDataError(f"reference file {path} is missing")
    graph = pd.read_csv(path, dtype=str, keep_default_na=False)
    return _Mobility({str(t): g["code_rome"].to_numpy() for t, g in graph.groupby("code_rome_cible")})


def _previous_occupations(
    rng: np.random.Generator,
    profile: SiteProfile,
    target: np.ndarray,
    fallback: pd.DataFrame,
    mobility: _Mobility,
) -> np.ndarray:
    """Empty (no previous job), the target itself, or a fiche from which ROME's mobility graph leads to it."""
    n = len(target)
    kind = rng.random(n)
    missing_up_to = profile.previous_missing_rate
    same_up_to = missing_up_to + (1 - missing_up_to) * profile.same_occupation_rate
    previous = np.full(n, "", dtype=object)
    same = (kind >= missing_up_to) & (kind < same_up_to)
    other = kind >= same_up_to
    previous[same] = target[same]
    pick = rng.random(n)
    random_fallback = fallback["rome4"].to_numpy()[
        rng.choice(len(fallback), size=n, p=fallback["p"].to_numpy())
    ]
    for i in np.flatnonzero(other):
        sources = mobility.sources.get(target[i])
        previous[i] = sources[int(pick[i] * len(sources))] if sources is not None else random_fallback[i]
    return previous


def _dates(rng: np.random.Generator, n: int) -> np.ndarray:
    span = (REGISTRATION_END - REGISTRATION_START).days
    offsets = rng.integers(0, span + 1, size=n)
    return np.array(
        [(REGISTRATION_START + dt.timedelta(days=int(d))).isoformat() for d in offsets], dtype=object
    )


def _outcomes(rng: np.random.Generator, probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``employed_6m`` drawn from the model; months consistent with it (≤ 6, or 6.1-24, or censored)."""
    n = len(probability)
    employed = (rng.random(n) < probability).astype(int)
    early = np.round(0.2 + rng.beta(1.3, 1.6, size=n) * (OUTCOME_HORIZON_MONTHS - 0.2), 1)
    late_rate = 0.30 + 0.45 * probability
    late = rng.random(n) < late_rate
    late_months = np.round(
        OUTCOME_HORIZON_MONTHS + 0.1 + rng.beta(1.1, 1.9, size=n) * (MONTHS_TO_EMPLOYMENT_MAX - 6.1), 1
    )
    months = np.where(employed == 1, early, np.where(late, late_months, np.nan))
    return employed, months


def _site_people(
    rng: np.random.Generator, profile: SiteProfile, n: int, places: _Places, mobility: _Mobility
) -> pd.DataFrame:
    """The core (notation-free) records of ``n`` distinct people followed by one partner."""
    cells = _occupation_matrix(profile)
    chosen = rng.choice(len(cells), size=n, p=cells["p"].to_numpy())
    bassin = cells["bassin"].to_numpy()[chosen]
    rome = cells["rome4"].to_numpy()[chosen]
    commune_pick = rng.random(n)
    commune = np.array(
        [
            places.communes_by_bassin[b][int(u * len(places.communes_by_bassin[b]))]
            for b, u in zip(bassin, commune_pick, strict=True)
        ],
        dtype=object,
    )
    sex = np.where(rng.random(n) < profile.female_share, "F", "M").astype(object)
    age = _ages(rng, profile, n)
    birth_year = REFERENCE_YEAR - age
    executive = reference.rome_referential()["emploi_cadre"].reindex(rome).to_numpy(dtype=bool)
    education_p = np.array(profile.education)
    exec_p = np.array(SITE_PROFILES["apec"].education)
    levels = np.array(EDUCATION_LEVELS, dtype=object)
    education = np.where(
        executive,
        levels[rng.choice(len(levels), size=n, p=exec_p)],
        levels[rng.choice(len(levels), size=n, p=education_p)],
    )
    months_unemployed = np.floor(rng.gamma(1.3, profile.months_unemployed_mean / 1.3, size=n)).astype(int)
    licence_rate = np.where(age < 20, profile.licence_rate * 0.5, profile.licence_rate)
    licence = (rng.random(n) < licence_rate).astype(int)
    mobility_km = np.where(
        licence == 1,
        rng.choice(np.array([5, 10, 15, 20, 25, 30, 40, 50, 80]), size=n),
        rng.choice(np.array([0, 2, 5, 10, 15]), size=n),
    ).astype(int)
    training = (rng.random(n) < profile.training_rate).astype(int)
    previous = _previous_occupations(rng, profile, rome, cells, mobility)
    pairs = pd.Series(list(zip(bassin, rome, strict=True)))
    tension_by_pair = {pair: reference.bassin_tension_index(*pair) for pair in sorted(set(pairs))}
    tension = pairs.map(tension_by_pair).to_numpy(dtype=float)
    probability = GROUND_TRUTH.probability(
        tension=tension,
        education_level=education,
        months_unemployed=months_unemployed,
        birth_year=birth_year,
        driving_licence=licence,
        mobility_km=mobility_km,
        training_followed=training,
        same_occupation=(previous == rome),
        sex=sex,
    )
    employed, months = _outcomes(rng, probability)
    first = identities.sample_first_names(rng, sex, birth_year)
    last = identities.sample_last_names(rng, n)
    birth_month = rng.integers(1, 13, size=n)
    birth_day = rng.integers(1, 29, size=n)
    phone_national, _ = identities.sample_phones(rng, n)
    return pd.DataFrame(
        {
            "nir_compact": identities.sample_nirs(rng, sex, birth_year, birth_month),
            "first_name": first,
            "last_name": last,
            "sex": sex,
            "birth_year": birth_year,
            "birth_month": birth_month,
            "birth_day": birth_day,
            "email": identities.sample_emails(rng, first, last, birth_year),
            "phone_national": phone_national,
            "address": identities.sample_addresses(rng, commune),
            "has_email": rng.random(n) < 0.93,
            "has_phone": rng.random(n) < 0.96,
            "ft_id_value": identities.sample_ft_ids(rng, n),
            "commune": commune,
            "bassin": bassin,
            "education_level": education,
            "rome_target": rome,
            "rome_previous": previous,
            "months_unemployed": months_unemployed,
            "mobility_km": mobility_km,
            "driving_licence": licence,
            "training_followed": training,
            "registration_date": _dates(rng, n),
            "tension": tension,
            "p_employed": probability,
            "employed_6m": employed,
            "months_to_employment": months,
        }
    )


# --------------------------------------------------------------------------- rendering


def _render(
    rng: np.random.Generator, profile: SiteProfile, core: pd.DataFrame, in_ft: np.ndarray
) -> pd.DataFrame:
    """The partner's file: its record ids, notations, France Travail ids and counselor notes."""
    n = len(core)
    order = rng.permutation(n)
    core = core.iloc[order].reset_index(drop=True)
    in_ft = in_ft[order]
    nir_style = rng.integers(0, 3, size=n)
    nir = np.array(
        [identities.format_nir(v, s) for v, s in zip(core["nir_compact"], nir_style, strict=True)],
        dtype=object,
    )
    style = np.array(identities.PHONE_STYLES)[rng.integers(0, len(identities.PHONE_STYLES), size=n)]
    phone = np.array(
        [
            identities.format_phone(v, s) if h else ""
            for v, s, h in zip(core["phone_national"], style, core["has_phone"], strict=True)
        ],
        dtype=object,
    )
    email = np.where(core["has_email"].to_numpy(), core["email"].to_numpy(), "")
    if profile.kind == "france_travail":
        ft_id = core["ft_id_value"].to_numpy()
    else:
        known = in_ft & (rng.random(n) < FT_ID_KNOWN_ELSEWHERE)
        ft_id = np.where(known, core["ft_id_value"].to_numpy(), "")
    last = (
        core["last_name"].str.upper().to_numpy()
        if profile.upper_case_surnames
        else core["last_name"].to_numpy()
    )
    record_id = np.array(
        [f"{profile.record_prefix}-{REFERENCE_YEAR - 1}-{i:06d}" for i in rng.permutation(n) + 1]
    )
    rome_labels = reference.rome_referential()["libelle_rome"]
    communes = reference.communes_paca()
    counselor_sex = np.where(rng.random(n) < 0.7, "F", "M").astype(object)
    counselor_birth = rng.integers(1965, 1998, size=n)
    people = pd.DataFrame(
        {
            "first_name": core["first_name"],
            "last_name": last,
            "sex": core["sex"],
            "phone": phone,
            "email": email,
            "nir": nir,
            "address": core["address"],
            "ft_id": ft_id,
            "birth_year": core["birth_year"],
            "birth_month": core["birth_month"],
            "birth_day": core["birth_day"],
            "rome_label": core["rome_target"].map(rome_labels).str.lower(),
            "previous_label": core["rome_previous"].map(rome_labels).fillna("").str.lower(),
            "zone_label": core["commune"].map(communes["zone_label"]),
            "commune_label": core["commune"].map(communes["commune_label"]),
            "mobility_km": core["mobility_km"],
            "months_unemployed": core["months_unemployed"],
            "driving_licence": core["driving_licence"],
            "training_followed": core["training_followed"],
            "registration_date": core["registration_date"],
            "counselor_first": identities.sample_first_names(rng, counselor_sex, counselor_birth),
            "counselor_last": identities.sample_last_names(rng, n),
            "counselor_sex": counselor_sex,
        }
    )
    notes = compose_notes(rng, people)
    table = pd.DataFrame(
        {
            "record_id": record_id,
            "nir": nir,
            "ft_id": ft_id,
            "last_name": last,
            "first_name": core["first_name"],
            "email": email,
            "phone": phone,
            "address": core["address"],
            "birth_year": core["birth_year"],
            "sex": core["sex"],
            "commune": core["commune"],
            "education_level": core["education_level"],
            "rome_target": core["rome_target"],
            "rome_previous": core["rome_previous"],
            "months_unemployed": core["months_unemployed"],
            "mobility_km": core["mobility_km"],
            "driving_licence": core["driving_licence"],
            "training_followed": core["training_followed"],
            "registration_date": core["registration_date"],
            "employed_6m": core["employed_6m"],
            "months_to_employment": core["months_to_employment"],
            "counselor_note": notes,
        }
    )
    return table[list(PARCOURS_COLUMNS)]


# --------------------------------------------------------------------------- entry point


def _site_sizes(people: int, sites: Sequence[str], minimum: int) -> dict[str, int]:
    """``people`` shared by the sites' weights (largest remainders), each raised to ``minimum``."""
    weights = region.site_weights(list(sites))
    shares = np.array([weights[s] for s in sites])
    raw = people * shares / shares.sum()
    sizes = np.floor(raw).astype(int)
    sizes[np.argsort(-(raw - sizes), kind="stable")[: people - sizes.sum()]] += 1
    return {s: max(int(k), minimum) for s, k in zip(sites, sizes, strict=True)}


def _serving_agency(rng: np.random.Generator, bassin: str, agencies: Sequence[SiteProfile]) -> str | None:
    """The France Travail site a person of ``bassin`` is registered at (one of its agencies)."""
    serving = [a.site for a in agencies if not a.bassins or bassin in a.bassins]
    if len(serving) > 1:
        return serving[int(rng.integers(len(serving)))]
    return serving[0] if serving else None


def _register_at_france_travail(
    rng: np.random.Generator, sites: Sequence[str], cores: dict[str, pd.DataFrame]
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Copy a share of every other partner's adults to the France Travail site of their bassin.

    Returns who is also at France Travail per site, and the overlap counts ``"<ft site>|<site>"``."""
    profiles = {s: region.site_profile(s) for s in sites}
    agencies = [p for p in profiles.values() if p.kind == "france_travail"]
    in_ft = {site: np.zeros(len(core), dtype=bool) for site, core in cores.items()}
    overlaps: dict[str, int] = {}
    if not agencies:
        return in_ft, overlaps
    served = None if any(not a.bassins for a in agencies) else {b for a in agencies for b in a.bassins}
    shared: dict[str, list[pd.DataFrame]] = {a.site: [] for a in agencies}
    for site in sites:
        rate = OVERLAP_WITH_FRANCE_TRAVAIL.get(profiles[site].kind)
        if rate is None:
            continue
        core = cores[site]
        adult = core["birth_year"].to_numpy() <= REFERENCE_YEAR - 18
        if served is not None:
            adult &= core["bassin"].isin(served).to_numpy()
        eligible = np.flatnonzero(adult)
        size = min(int(round(rate * len(core))), len(eligible))
        chosen = np.sort(rng.choice(eligible, size=size, replace=False))
        in_ft[site][chosen] = True
        copy = core.iloc[chosen].copy()
        copy["registration_date"] = _dates(rng, len(copy))
        copy["ft_id_value"] = core["ft_id_value"].to_numpy()[chosen]
        targets = np.array([_serving_agency(rng, b, agencies) for b in copy["bassin"]], dtype=object)
        for agency in shared:
            part = copy[targets == agency]
            if len(part):
                shared[agency].append(part)
                overlaps[f"{agency}|{site}"] = len(part)
    for agency, parts in shared.items():
        cores[agency] = pd.concat([cores[agency], *parts], ignore_index=True)
        in_ft[agency] = np.ones(len(cores[agency]), dtype=bool)
    return in_ft, overlaps


def generate_partners(
    out_dir: Path,
    *,
    seed: int = 42,
    people: int = 6000,
    sites: Sequence[str] = DEFAULT_SITES,
    min_site_people: int = 0,
) -> dict[str, Path]:
    """Write ``<out_dir>/<site>/parcours.csv`` for each site and ``<out_dir>/ground_truth.json``.

    ``people`` is the number of distinct persons (a site never gets fewer than ``min_site_people``);
    people registered at a second partner add records. ``sites`` are networks (``france_travail``…)
    or a region's agencies and Missions Locales (``simulations.region.region_sites``).
    Returns the path of each site's file, keyed by site id.
    """
    if len(set(sites)) != len(sites) or not sites:
        raise ValueError("sites must be a non-empty list without repeats")
    profiles = {s: region.site_profile(s) for s in sites}  # names the unknown site, if any
    if people < 10 * len(sites):
        raise ValueError(f"people={people} is too small for {len(sites)} sites (at least {10 * len(sites)})")
    streams = np.random.SeedSequence(seed).spawn(2 * len(sites) + 1)
    places, mobility = _places(), _mobility()
    sizes = _site_sizes(people, sites, min_site_people)
    cores: dict[str, pd.DataFrame] = {}
    for i, site in enumerate(sites):
        cores[site] = _site_people(
            np.random.default_rng(streams[i]), profiles[site], sizes[site], places, mobility
        )
    in_ft, overlaps = _register_at_france_travail(np.random.default_rng(streams[len(sites)]), sites, cores)

    out_dir = Path(out_dir)
    paths: dict[str, Path] = {}
    summary: dict[str, dict[str, float | int]] = {}
    for i, site in enumerate(sites):
        table = _render(
            np.random.default_rng(streams[len(sites) + 1 + i]), profiles[site], cores[site], in_ft[site]
        )
        folder = out_dir / site
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "parcours.csv"
        table.to_csv(path, index=False, lineterminator="\n", float_format="%.1f", encoding="utf-8")
        paths[site] = path
        core = cores[site]
        summary[site] = {
            "records": len(table),
            "employed_6m_rate": round(float(core["employed_6m"].mean()), 4),
            "mean_model_probability": round(float(core["p_employed"].mean()), 4),
            "mean_tension": round(float(core["tension"].mean()), 4),
            "female_share": round(float((core["sex"] == "F").mean()), 4),
        }
    truth = {
        "generator": f"simulations.partners v{GENERATOR_VERSION}",
        "seed": seed,
        "people": people,
        "sites": summary,
        "overlaps": overlaps,
        "outcome_model": {
            "kind": "logistic",
            "target": "employed_6m",
            "tension": "tasks.reference.bassin_tension_index(bassin of commune, rome_target)",
            "coefficients": GROUND_TRUTH.as_dict(),
        },
        "site_profiles": {s: asdict(profiles[s]) for s in sites},
        "site_sizes": region.size_sources(list(sites)),
        "calibration": {
            "occupations": "BMO 2024 PACA hiring projects, FAP 2021 -> FAP 2009 -> ROME v3 -> ROME 4.0",
            "places": "commune weight = BMO projects of its bassin / communes of the bassin",
            "unmapped_bmo_project_share": round(labour_market.unmapped_project_share(), 6),
        },
    }
    (out_dir / "ground_truth.json").write_text(
        json.dumps(truth, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    )
    return paths
