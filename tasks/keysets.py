"""Public key sets: the only values a statistics query may group or count by.

A table's cells are enumerated from these lists, never from the values found in the data: a
cell that exists only because one person's record named it would itself be a release about
that person (and its mere presence would depend on them). Every list here is public knowledge —
a national nomenclature, INSEE's zoning read from the reference data (``tasks.reference``), or
the Region's published list of contracted training providers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from . import reference
from .registry import AGE_BANDS, EDUCATION_LEVELS, ROME_DOMAINS

#: Training domains: groups of the Nomenclature des spécialités de formation (NSF, décret 94-522),
#: the classification Carif-Oref catalogues and InserJeunes use.
TRAINING_DOMAINS: dict[str, str] = {
    "nsf210": "Agriculture, agronomie",
    "nsf221": "Agro-alimentaire, cuisine",
    "nsf230": "Bâtiment, génie civil",
    "nsf250": "Mécanique, électricité, électronique",
    "nsf252": "Moteurs et mécanique automobile",
    "nsf311": "Transport, manutention, magasinage",
    "nsf312": "Commerce, vente",
    "nsf314": "Comptabilité, gestion",
    "nsf324": "Secrétariat, bureautique",
    "nsf326": "Informatique, réseaux",
    "nsf330": "Aide à la personne, sanitaire et social",
    "nsf331": "Santé",
    "nsf334": "Accueil, hôtellerie, tourisme",
    "nsf336": "Coiffure, esthétique",
    "nsf344": "Sécurité des biens et des personnes",
}
#: Levels of the Cadre national des certifications professionnelles (2019): 3 = CAP, 4 = bac,
#: 5 = bac+2, 6+ = bac+3 and above; ``sans`` = training without a certification.
CERTIFICATION_LEVELS = ("sans", "3", "4", "5", "6+")
FUNDINGS = ("region", "cpf", "france_travail")
SEXES = ("F", "M")
MONTHS_OUT_BANDS = ("0-5", "6-11", "12-23", "24+")
DEPARTEMENTS = ("04", "05", "06", "13", "83", "84")
#: Providers per training domain in the Region's published list of contracted providers
#: (programme régional de formation): each holds one lot (domain × département).
PROVIDERS_PER_LOT = 2


@lru_cache(maxsize=1)
def providers() -> tuple[str, ...]:
    """The Region's public list of contracted training providers, one code per lot holder."""
    return tuple(
        f"of-{domain.removeprefix('nsf')}-{dep}-{k}"
        for domain in TRAINING_DOMAINS
        for dep in DEPARTEMENTS
        for k in range(1, PROVIDERS_PER_LOT + 1)
    )


def zones_emploi() -> tuple[str, ...]:
    return tuple(reference.zones_emploi_paca()["ze2020"].astype(str))


@dataclass(frozen=True)
class KeySet:
    """A public list of values and where it comes from (quoted in reports)."""

    name: str
    source: str
    values: Callable[[], tuple[str, ...]]
    label: Callable[[str], str] = str


def _zone_label(code: str) -> str:
    return f"{reference.zone_label(code)} ({code})"


KEY_SETS: dict[str, KeySet] = {
    k.name: k
    for k in (
        KeySet(
            "training_domains",
            "NSF groups",
            lambda: tuple(TRAINING_DOMAINS),
            lambda code: TRAINING_DOMAINS.get(code, code),
        ),
        KeySet("zones_emploi", "INSEE zones d'emploi 2020, PACA", zones_emploi, _zone_label),
        KeySet("departements", "INSEE départements of PACA", lambda: DEPARTEMENTS),
        KeySet("age_bands", "age bands of the common schema", lambda: AGE_BANDS),
        KeySet("sexes", "sex as registered", lambda: SEXES),
        KeySet("education_levels", "education levels of the common schema", lambda: EDUCATION_LEVELS),
        KeySet(
            "certification_levels", "Cadre national des certifications (2019)", lambda: CERTIFICATION_LEVELS
        ),
        KeySet("fundings", "funders of training for job seekers", lambda: FUNDINGS),
        KeySet("months_out_bands", "months out of work before training, banded", lambda: MONTHS_OUT_BANDS),
        KeySet("providers", "the Region's published list of contracted providers", providers),
        KeySet("rome_domains", "ROME 4.0 grands domaines", lambda: ROME_DOMAINS),
    )
}

#: The key set each categorical field's values must come from to be grouped or counted by.
FIELD_KEY_SETS: dict[str, str] = {
    "training_domain": "training_domains",
    "zone_emploi": "zones_emploi",
    "departement": "departements",
    "age_band": "age_bands",
    "sex": "sexes",
    "education_level": "education_levels",
    "certification_level": "certification_levels",
    "funding": "fundings",
    "months_out_band": "months_out_bands",
    "provider": "providers",
    "rome_domain": "rome_domains",
}


def key_set_of(field: str) -> KeySet | None:
    name = FIELD_KEY_SETS.get(field)
    return KEY_SETS[name] if name else None
