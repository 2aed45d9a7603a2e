"""Seeded generator of use case 3's "sortants de formation" at Carif-Oref and France Travail.

What is real and what is invented:
- places follow BMO 2024 hiring projects in PACA (``labour_market.commune_weights``), zones
  d'emploi and départements come from INSEE's tables (``tasks.reference``);
- the level of the six-month employment rate of each training domain comes from InserJeunes
  2022-2023 (PACA apprenticeship centres and vocational high schools whose name points to the
  domain; the PACA mean otherwise), and the spread of providers' value added from the same file;
- local demand moves it with BMO 2024's share of hiring projects judged difficult in the
  (bassin, family of occupations) the domain leads to (``DOMAIN_FAMILIES``);
- profile effects (age, education, months out of work) are plausible assumptions, stated below.

Carif-Oref holds Region- and CPF-funded trainings, France Travail the ones it funds; some people
had one training at each (same NIR and profile, two records), so opt-outs reach both. Each person
has at most one training per site. ``<out>/ground_truth.json`` holds the true value of every cell
of use case 3's report over the written records (simulation only).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from simulations import identities, labour_market
from tasks import keysets, reference
from tasks.formations import COLUMNS, FILE_NAME
from tasks.registry import AGE_BANDS
from tasks.schema import EDUCATION_LEVELS

SITES = ("carif_oref", "france_travail")
#: Who is trained where: only at Carif-Oref, only at France Travail, at both (two trainings).
PRESENCE = {"carif_oref": 0.55, "france_travail": 0.30, "both": 0.15}
AGE_WEIGHTS = (0.30, 0.28, 0.22, 0.15, 0.05)
EDUCATION_WEIGHTS = (0.30, 0.28, 0.20, 0.14, 0.08)
DOMAIN_WEIGHTS = {
    "nsf210": 0.04, "nsf221": 0.05, "nsf230": 0.09, "nsf250": 0.05, "nsf252": 0.03, "nsf311": 0.10,
    "nsf312": 0.10, "nsf314": 0.05, "nsf324": 0.07, "nsf326": 0.06, "nsf330": 0.12, "nsf331": 0.07,
    "nsf334": 0.08, "nsf336": 0.03, "nsf344": 0.06,
}  # fmt: skip
#: Words in InserJeunes establishment names that point to a domain (PACA rows only).
DOMAIN_KEYWORDS = {
    "nsf210": ("agricole", "rurale", "mfr", "horticole"),
    "nsf221": ("hotel", "restauration", "boulanger", "alimentation"),
    "nsf230": ("btp", "batiment", "bâtiment", "travaux publics", "compagnons"),
    "nsf250": ("industrie", "electro", "électro", "technique"),
    "nsf252": ("automobile", "auto"),
    "nsf311": ("transport", "aftral", "logistique"),
    "nsf312": ("commerce", "cci", "vente"),
    "nsf314": ("gestion", "comptab", "iscod"),
    "nsf324": ("tertiaire", "secretariat", "bureautique"),
    "nsf326": ("informatique", "numerique", "numérique", "epitech"),
    "nsf330": ("petite enfance", "sanitaire", "social"),
    "nsf331": ("sante", "santé", "pharmacie", "infirm"),
    "nsf334": ("tourisme", "hotel", "hôtel"),
    "nsf336": ("coiffure", "beaute", "beauté", "esthetique"),
    "nsf344": ("securite", "sécurité", "bodyguard"),
}
#: BMO 2024 families of occupations (``Famille_met``) each domain leads to.
DOMAIN_FAMILIES = {
    "nsf210": "Z", "nsf221": "V", "nsf230": "O", "nsf250": "I", "nsf252": "T", "nsf311": "Z",
    "nsf312": "V", "nsf314": "A", "nsf324": "A", "nsf326": "C", "nsf330": "S", "nsf331": "S",
    "nsf334": "V", "nsf336": "V", "nsf344": "T",
}  # fmt: skip
#: How much more often women than men choose a domain (men: the inverse); 1 when absent.
SEX_TILT = {"nsf330": 3.0, "nsf331": 2.5, "nsf336": 4.0, "nsf324": 2.5, "nsf314": 1.5,
            "nsf230": 0.2, "nsf311": 0.4, "nsf252": 0.15, "nsf250": 0.3, "nsf344": 0.4}  # fmt: skip
AGE_EFFECT = dict(zip(AGE_BANDS, (0.05, 0.20, 0.05, -0.30, -0.80), strict=True))
EDUCATION_EFFECT = dict(zip(EDUCATION_LEVELS, (-0.40, -0.10, 0.10, 0.25, 0.30), strict=True))
MONTHS_OUT_EFFECT = -0.035  # per month out of work before training, up to 36
TENSION_EFFECT = 2.0  # logit per unit of the difficult-projects share, centred on the regional mean
FEMALE_EFFECT = -0.05
DURABLE_GIVEN_EMPLOYED = 0.55


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


@lru_cache(maxsize=1)
def inserjeunes_paca() -> pd.DataFrame:
    """PACA rows of InserJeunes 2022-2023 (CFA and lycées pro) with a rate and a value added."""
    frames = []
    for name in ("inserjeunes_cfa_2022_2023.csv", "inserjeunes_lycees_pro_2022_2023.csv"):
        frame = pd.read_csv(
            reference.reference_data_dir() / "training" / name, sep=";", dtype=str, encoding="utf-8"
        )
        frame.columns = [c.strip() for c in frame.columns]
        frame = frame[frame["Région"] == "PROVENCE-ALPES-COTE D'AZUR"]
        frames.append(
            pd.DataFrame(
                {
                    "label": frame["Libellé de l'établissement"].str.lower(),
                    "rate": pd.to_numeric(frame["Taux"], errors="coerce") / 100.0,
                    "value_added": pd.to_numeric(frame["Valeur ajoutée"], errors="coerce") / 100.0,
                }
            )
        )
    return pd.concat(frames).dropna().reset_index(drop=True)


@lru_cache(maxsize=1)
def domain_rates() -> dict[str, float]:
    """Six-month employment rate per domain: InserJeunes PACA establishments named for it, or the mean."""
    table = inserjeunes_paca()
    mean = float(table["rate"].mean())
    rates = {}
    for domain, words in DOMAIN_KEYWORDS.items():
        matched = table[table["label"].apply(lambda label, w=words: any(x in label for x in w))]
        rates[domain] = float(matched["rate"].mean()) if len(matched) >= 2 else mean
    return rates


def provider_spread() -> float:
    """Std of InserJeunes PACA value added (points), turned into a logit-scale provider effect."""
    return float(inserjeunes_paca()["value_added"].std()) / 0.24


@lru_cache(maxsize=1)
def difficult_share() -> pd.DataFrame:
    """BMO 2024: share of hiring projects judged difficult per (bassin, family), and the regional mean."""
    bmo = pd.read_csv(
        reference.reference_data_dir() / "labour_market" / "bmo_2024_paca_bassin_metier.csv",
        dtype=str,
        keep_default_na=False,
    )
    met = pd.to_numeric(bmo["met"].replace("*", np.nan), errors="coerce")
    difficult = pd.to_numeric(bmo["xmet"].replace("*", np.nan), errors="coerce")
    table = pd.DataFrame(
        {"bassin": bmo["BE24"], "family": bmo["Famille_met"], "met": met, "xmet": difficult}
    ).dropna()
    grouped = table.groupby(["bassin", "family"])[["met", "xmet"]].sum()
    grouped["share"] = grouped["xmet"] / grouped["met"].clip(lower=1)
    return grouped["share"].reset_index()


def _tension(bassin: np.ndarray, domain: np.ndarray) -> np.ndarray:
    shares = difficult_share()
    lookup = {(b, f): s for b, f, s in shares.itertuples(index=False)}
    regional = float(shares["share"].mean())
    families = np.array([DOMAIN_FAMILIES[d] for d in domain], dtype=object)
    return np.array([lookup.get((b, f), regional) for b, f in zip(bassin, families, strict=True)]) - regional


def _people(rng: np.random.Generator, n: int) -> pd.DataFrame:
    communes = reference.communes_paca()
    weights = labour_market.commune_weights()
    commune = rng.choice(weights.index.to_numpy(), size=n, p=weights.to_numpy())
    sex = np.where(rng.random(n) < 0.5, "F", "M")
    age_band = np.array(AGE_BANDS, dtype=object)[rng.choice(len(AGE_BANDS), size=n, p=AGE_WEIGHTS)]
    age_low = np.array([int(a.split("-")[0].rstrip("+")) for a in age_band])
    birth_year = 2024 - (age_low + rng.integers(0, 10, size=n))
    nir = identities.sample_nirs(rng, sex, birth_year, rng.integers(1, 13, size=n))
    return pd.DataFrame(
        {
            "nir": nir,
            "sex": sex,
            "age_band": age_band,
            "education_level": np.array(EDUCATION_LEVELS, dtype=object)[
                rng.choice(len(EDUCATION_LEVELS), size=n, p=EDUCATION_WEIGHTS)
            ],
            "months_out_of_work": np.minimum(rng.exponential(10.0, size=n).astype(int), 72),
            "zone_emploi": communes.loc[commune, "zone_emploi"].to_numpy(),
            "departement": communes.loc[commune, "departement"].to_numpy(),
            "bassin": communes.loc[commune, "bassin"].to_numpy(),
        }
    )


def _trainings(
    rng: np.random.Generator, people: pd.DataFrame, site: str, provider_effect: dict[str, float]
) -> pd.DataFrame:
    n = len(people)
    domains = np.array(list(DOMAIN_WEIGHTS), dtype=object)
    domain = np.empty(n, dtype=object)
    for sex in ("F", "M"):  # trainings are chosen differently by women and men (an assumption)
        tilt = np.array([SEX_TILT.get(d, 1.0) if sex == "F" else 1.0 / SEX_TILT.get(d, 1.0) for d in domains])
        weights = np.array(list(DOMAIN_WEIGHTS.values())) * tilt
        chosen = people["sex"].to_numpy() == sex
        domain[chosen] = domains[rng.choice(len(domains), size=int(chosen.sum()), p=weights / weights.sum())]
    # The provider's lot is in the learner's département (the Region buys training close to home).
    lot = rng.integers(1, keysets.PROVIDERS_PER_LOT + 1, size=n)
    provider = np.array(
        [
            f"of-{d.removeprefix('nsf')}-{dep}-{k}"
            for d, dep, k in zip(domain, people["departement"], lot, strict=True)
        ],
        dtype=object,
    )
    level_index = np.clip(
        rng.choice(5, size=n, p=(0.15, 0.30, 0.30, 0.17, 0.08))
        + (people["education_level"].map({e: i for i, e in enumerate(EDUCATION_LEVELS)}).to_numpy() >= 3),
        0,
        4,
    )
    certification = np.array(keysets.CERTIFICATION_LEVELS, dtype=object)[level_index]
    funding = (
        np.where(rng.random(n) < 0.75, "region", "cpf")
        if site == "carif_oref"
        else np.full(n, "france_travail")
    )
    rates = domain_rates()
    profile = (
        people["age_band"].map(AGE_EFFECT).to_numpy()
        + people["education_level"].map(EDUCATION_EFFECT).to_numpy()
        + MONTHS_OUT_EFFECT * np.minimum(people["months_out_of_work"].to_numpy(), 36)
        + np.where(people["sex"].to_numpy() == "F", FEMALE_EFFECT, 0.0)
    )
    logit = (
        _logit(np.array([rates[d] for d in domain]))
        + TENSION_EFFECT * _tension(people["bassin"].to_numpy(), domain)
        + profile
        - profile.mean()  # the domain's InserJeunes rate is the level of its average learner
        + np.array([provider_effect[p] for p in provider])
    )
    probability = 1.0 / (1.0 + np.exp(-logit))
    employed = (rng.random(n) < probability).astype(int)
    durable = employed * (rng.random(n) < DURABLE_GIVEN_EMPLOYED + 0.1 * (level_index >= 3)).astype(int)
    later = rng.random(n) < 0.5
    months = np.where(
        employed == 1,
        np.round(rng.uniform(0, 6, size=n), 1),
        np.where(later, np.round(rng.uniform(6.1, 24, size=n), 1), np.nan),
    )
    end = dt.date(2024, 1, 1).toordinal() + rng.integers(0, 366, size=n)
    duration = np.clip(rng.lognormal(np.log(350 + 100 * level_index), 0.4), 35, 2400).astype(int)
    prefix = "CO" if site == "carif_oref" else "FT"
    return pd.DataFrame(
        {
            "record_id": [f"{prefix}{i:07d}" for i in rng.permutation(n)],
            "nir": people["nir"].to_numpy(),
            "sex": people["sex"].to_numpy(),
            "age_band": people["age_band"].to_numpy(),
            "education_level": people["education_level"].to_numpy(),
            "months_out_of_work": people["months_out_of_work"].to_numpy(),
            "training_domain": domain,
            "certification_level": certification,
            "provider": provider,
            "zone_emploi": people["zone_emploi"].to_numpy(),
            "departement": people["departement"].to_numpy(),
            "funding": funding,
            "training_end": [dt.date.fromordinal(int(o)).isoformat() for o in end],
            "duration_hours": duration,
            "employed_6m": employed,
            "durable_employment": durable,
            "months_to_employment": months,
            "probability": probability,
        }
    )


def generate_formations(
    out_dir: Path, *, seed: int, people: int, sites: Sequence[str] = SITES
) -> dict[str, Path]:
    """Write ``<out_dir>/<site>/formations.csv`` and ``<out_dir>/ground_truth.json``; a seed, one output."""
    rng = np.random.default_rng([seed, 3])
    population = _people(rng, people)
    presence = rng.choice(3, size=people, p=tuple(PRESENCE.values()))
    providers = keysets.providers()
    spread = provider_spread()
    provider_effect = dict(zip(providers, rng.normal(0.0, spread, size=len(providers)), strict=True))
    at = {"carif_oref": presence != 1, "france_travail": presence != 0}
    paths: dict[str, Path] = {}
    written: list[pd.DataFrame] = []
    for site in sites:
        frame = _trainings(
            rng,
            population[at.get(site, np.ones(people, dtype=bool))].reset_index(drop=True),
            site,
            provider_effect,
        )
        folder = out_dir / site
        folder.mkdir(parents=True, exist_ok=True)
        frame.sort_values("record_id")[list(COLUMNS)].to_csv(folder / FILE_NAME, index=False)
        paths[site] = folder / FILE_NAME
        written.append(frame.assign(site=site))
    truth = ground_truth(pd.concat(written, ignore_index=True))
    (out_dir / "ground_truth.json").write_text(
        json.dumps(truth, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return paths


def ground_truth(records: pd.DataFrame) -> dict[str, object]:
    """True values of the report's cells over every written record (one per person and site).

    Counts and shares by plain pandas group-bys; the expected rate by the same main-effects model
    the coordinator fits, here on the exact pooled profile table; ``model_probability`` is the
    generator's own mean probability (the rate a much larger population would show).
    """
    from coordinator.analytics import Combined
    from coordinator.value_added import PROFILE_FIELDS, fit_profile_model, profile_query
    from tasks.analytics import release_plan
    from tasks.formations import analysis_columns

    frame = analysis_columns(records)
    profile_spec = profile_query(_TruthStudy())
    plan = release_plan(profile_spec)
    counts = frame.groupby([*PROFILE_FIELDS, "employed_6m"]).size()
    table = np.array([[counts.get((*cell, y), 0) for y in (0, 1)] for cell in plan.cells], dtype=float)
    model = fit_profile_model(profile_spec, Combined({"cells": table}, {"cells": 0.0}))
    frame["expected"] = model.probability(frame)
    cells = []
    for keys in (("training_domain", "zone_emploi"), ("training_domain",), ("provider",)):
        grouped = frame.groupby(list(keys))
        summary = grouped.agg(
            effectif=("employed_6m", "size"),
            taux_emploi_6m=("employed_6m", "mean"),
            taux_emploi_durable=("durable_employment", "mean"),
            taux_attendu=("expected", "mean"),
            model_probability=("probability", "mean"),
        )
        summary["valeur_ajoutee"] = summary["taux_emploi_6m"] - summary["taux_attendu"]
        for index, row in summary.iterrows():
            values = index if isinstance(index, tuple) else (index,)
            cells.append(
                {
                    "table": "-".join(keys),
                    "group": dict(zip(keys, values, strict=True)),
                    **{k: float(v) for k, v in row.items()},
                }
            )
    return {
        "generator": "simulations.usecase3",
        "records": {site: int((records["site"] == site).sum()) for site in records["site"].unique()},
        "people_at_both": int(records.duplicated("nir", keep=False).sum() // 2),
        "domain_rates": domain_rates(),
        "expected_model": model.model_dump(),
        "cells": cells,
    }


class _TruthStudy:
    """The fields of a study that ``profile_query`` reads, for the noise-free ground truth."""

    study_id = "ground-truth"
    sites = SITES
    epsilon = 1.0
