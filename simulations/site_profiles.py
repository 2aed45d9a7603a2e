"""Who each partner follows (use case 1): the profile of a partner's public, and where it works.

A profile is a *network* (France Travail, APEC, Missions Locales, Carif-Oref) with stated
assumptions on its public; a region-scale simulation (``simulations.region``) derives one profile per
agency or Mission Locale from its network's, restricted to the BMO bassins the site serves.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SiteProfile:
    """Who a partner follows. Probabilities over ``EDUCATION_LEVELS`` are in that order."""

    site: str
    record_prefix: str
    share: float  # share of the distinct people of the simulation
    age_min: int
    age_max: int
    age_mode: float  # most frequent age (triangular distribution)
    education: tuple[float, float, float, float, float]
    executive_weight: float  # multiplies the BMO weight of executive (``emploi_cadre``) occupations
    non_executive_weight: float
    female_share: float
    months_unemployed_mean: float
    licence_rate: float
    training_rate: float
    previous_missing_rate: float
    same_occupation_rate: float
    upper_case_surnames: bool
    #: The network whose public this is (``SITE_PROFILES`` key); a region's agency keeps its network's.
    network: str = ""
    #: BMO bassins the site serves (its people live there); empty: the whole region.
    bassins: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return self.network or self.site


_PROFILES = (
    SiteProfile(
        site="france_travail",
        record_prefix="FT",
        share=0.60,
        age_min=18,
        age_max=64,
        age_mode=32,
        education=(0.30, 0.26, 0.17, 0.15, 0.12),
        executive_weight=1.0,
        non_executive_weight=1.0,
        female_share=0.50,
        months_unemployed_mean=12.0,
        licence_rate=0.76,
        training_rate=0.22,
        previous_missing_rate=0.12,
        same_occupation_rate=0.45,
        upper_case_surnames=True,
    ),
    SiteProfile(  # executives only (``emploi_cadre``), mostly graduates
        site="apec",
        record_prefix="APEC",
        share=0.15,
        age_min=23,
        age_max=64,
        age_mode=38,
        education=(0.0, 0.02, 0.08, 0.38, 0.52),
        executive_weight=1.0,
        non_executive_weight=0.0,
        female_share=0.44,
        months_unemployed_mean=8.0,
        licence_rate=0.93,
        training_rate=0.15,
        previous_missing_rate=0.05,
        same_occupation_rate=0.55,
        upper_case_surnames=False,
    ),
    SiteProfile(  # young people 16-25, few executive targets, often no previous job
        site="missions_locales",
        record_prefix="ML",
        share=0.25,
        age_min=16,
        age_max=25,
        age_mode=19,
        education=(0.50, 0.33, 0.12, 0.04, 0.01),
        executive_weight=0.1,
        non_executive_weight=1.0,
        female_share=0.49,
        months_unemployed_mean=5.0,
        licence_rate=0.42,
        training_rate=0.38,
        previous_missing_rate=0.55,
        same_occupation_rate=0.35,
        upper_case_surnames=False,
    ),
    SiteProfile(  # optional: training-heavy population (Carif-Oref follows trainees)
        site="carif_oref",
        record_prefix="CO",
        share=0.10,
        age_min=18,
        age_max=60,
        age_mode=30,
        education=(0.28, 0.30, 0.20, 0.14, 0.08),
        executive_weight=0.8,
        non_executive_weight=1.0,
        female_share=0.52,
        months_unemployed_mean=10.0,
        licence_rate=0.70,
        training_rate=0.92,
        previous_missing_rate=0.15,
        same_occupation_rate=0.30,
        upper_case_surnames=False,
    ),
)
SITE_PROFILES: dict[str, SiteProfile] = {profile.site: profile for profile in _PROFILES}
DEFAULT_SITES: tuple[str, ...] = ("france_travail", "apec", "missions_locales")

#: Share of a partner's people also registered at France Travail (France Travail's own people excluded).
OVERLAP_WITH_FRANCE_TRAVAIL: dict[str, float] = {"apec": 0.08, "missions_locales": 0.07, "carif_oref": 0.06}
#: When a person is also at France Travail, chance that the other partner recorded their FT id.
FT_ID_KNOWN_ELSEWHERE = 0.5
