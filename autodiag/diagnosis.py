"""One person's diagnosis from the released model: chance and delay with their uncertainty, the
factors as applied to this person (exact Shapley values against a stated reference person), the
levers the person controls, neighbouring occupations, and the market reality of the bassin.

Nothing here is stored or logged: a ``Profile`` lives for one request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tasks import reference
from tasks.registry import EDUCATION_LEVELS, PARCOURS_WHAT_IF

from .catalogue import Appellation, Catalogue, Market, Place
from .similar import SimilarProfiles, SimilarTable, form_keys, similar_profiles
from .study import Calibration, ReleasedModel

HORIZON_MONTHS = 6.0
#: Holdout people needed around a score before its observed rate is shown as the uncertainty.
MIN_CALIBRATION_PEOPLE = 60
NEIGHBOURS_SHOWN = 6

EDUCATION_FR = {
    "infra_bac": "Sans le baccalauréat",
    "bac": "Baccalauréat",
    "bac+2": "Bac + 2 (BTS, DUT…)",
    "bac+3_4": "Bac + 3 ou 4 (licence, maîtrise)",
    "bac+5": "Bac + 5 et plus (master, ingénieur…)",
}
assert set(EDUCATION_FR) == set(EDUCATION_LEVELS)

#: The factors a person can state, by model column, with their French name.
FACTOR_FR = {
    "rome_target": "Métier visé",
    "zone_emploi": "Territoire (zone d'emploi)",
    "rome_previous": "Expérience dans le métier visé",
    "education_level": "Niveau de diplôme",
    "months_unemployed": "Durée sans emploi",
    "mobility_km": "Rayon de mobilité",
    "driving_licence": "Permis de conduire",
    "training_followed": "Formation suivie",
}


@dataclass(frozen=True)
class Profile:
    """What the person told the form (no name, no identifier, not kept after the answer)."""

    target: Appellation
    place: Place
    education_level: str
    months_unemployed: int
    mobility_km: int
    driving_licence: bool
    training_followed: bool
    previous: Appellation | None = None

    def model_row(self) -> dict[str, object]:
        return {
            "zone_emploi": self.place.zone_emploi,
            "rome_target": self.target.rome,
            "rome_previous": self.previous.rome if self.previous else "",
            "education_level": self.education_level,
            "months_unemployed": self.months_unemployed,
            "mobility_km": self.mobility_km,
            "driving_licence": int(self.driving_licence),
            "training_followed": int(self.training_followed),
        }


@dataclass(frozen=True)
class Chance:
    """The model's chance, and what the partners' holdouts observed around it (the uncertainty)."""

    value: float
    low: float | None
    high: float | None
    observed: float | None
    people: int
    score_low: float | None
    score_high: float | None


@dataclass(frozen=True)
class Delay:
    """Median months to a job under a constant monthly hazard that gives the chance at six months."""

    months: float
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Factor:
    column: str
    label: str
    person_value: str
    reference_value: str
    contribution: float  # points of chance (0..1 scale)


@dataclass(frozen=True)
class Lever:
    label: str
    chance: float
    effect: float
    available: bool = True
    note: str = ""


@dataclass(frozen=True)
class Neighbour:
    rome: str
    label: str
    chance: float
    tension: float
    tension_level: str
    market: Market | None


@dataclass(frozen=True)
class Diagnosis:
    profile: Profile
    chance: Chance
    delay: Delay
    reference_chance: float
    reference_description: list[tuple[str, str]]
    factors: list[Factor]
    unused_factors: list[str]
    levers: list[Lever]
    neighbours: list[Neighbour]
    market: Market | None
    tension: float
    tension_level: str
    similar: SimilarProfiles


def median_delay(chance: float) -> float:
    """Median months to a job if the monthly hazard is constant and P(job ≤ 6 months) = chance."""
    chance = min(max(chance, 1e-6), 1 - 1e-6)
    hazard = -math.log1p(-chance) / HORIZON_MONTHS
    return math.log(2.0) / hazard


def calibrated(score: float, calibration: Calibration | None) -> Chance:
    """The observed rate among holdout people scored near ``score`` (widening the window of score
    bins until ``MIN_CALIBRATION_PEOPLE``), with its Wilson 95 % interval."""
    if calibration is None:
        return Chance(score, None, None, None, 0, None, None)
    bins = calibration.bins
    centre = min(int(score * bins), bins - 1)
    lo = hi = centre
    while True:
        pos = sum(calibration.positive[lo : hi + 1])
        total = pos + sum(calibration.negative[lo : hi + 1])
        if total >= MIN_CALIBRATION_PEOPLE or (lo == 0 and hi == bins - 1):
            break
        lo, hi = max(lo - 1, 0), min(hi + 1, bins - 1)
    if total <= 0:
        return Chance(score, None, None, None, 0, None, None)
    rate = pos / total
    z = 1.959964
    denom = 1 + z * z / total
    centre_w = (rate + z * z / (2 * total)) / denom
    half = z * math.sqrt(rate * (1 - rate) / total + z * z / (4 * total * total)) / denom
    return Chance(
        score,
        max(centre_w - half, 0.0),
        min(centre_w + half, 1.0),
        rate,
        int(total),
        lo / bins,
        (hi + 1) / bins,
    )


def _describe(column: str, value: object, catalogue: Catalogue, same: bool = False) -> str:
    if column == "rome_target":
        return f"{catalogue.rome_labels.get(str(value), value)} ({value})"
    if column == "zone_emploi":
        zone = catalogue.zones.get(str(value))
        return zone.label if zone else str(value)
    if column == "rome_previous":  # the model reads it only as "same occupation as the target"
        return "a déjà exercé ce métier" if same else "n'a pas exercé ce métier"
    if column == "education_level":
        return EDUCATION_FR.get(str(value), str(value))
    if column == "months_unemployed":
        return f"{value} mois"
    if column == "mobility_km":
        return f"{value} km"
    if column in ("driving_licence", "training_followed"):
        return "oui" if int(value) else "non"  # type: ignore[call-overload]
    return str(value)


def reference_row(person: dict[str, object]) -> dict[str, object]:
    """The stated reference person the contributions are measured against (the study's what-if
    profile: baccalauréat, six months without a job, driving licence, no training, aiming at her
    previous occupation in the Marseille zone)."""
    base = dict(PARCOURS_WHAT_IF.profile)
    return {c: base.get(c, person[c]) for c in person}


def shapley_rows(
    person: dict[str, object], base: dict[str, object], players: list[str]
) -> list[dict[str, object]]:
    """The 2^n coalition rows of ``players`` between ``base`` and ``person`` (bit i = player i)."""
    return [
        {**base, **{p: person[p] for i, p in enumerate(players) if m >> i & 1}}
        for m in range(1 << len(players))
    ]


def shapley_values(values: list[float], players: list[str]) -> dict[str, float]:
    """Exact Shapley values from the coalition values: they add up to v(all) − v(none)."""
    n = len(players)
    weight = [math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) for k in range(n)]
    out = {}
    for i, p in enumerate(players):
        out[p] = sum(
            weight[bin(m).count("1")] * (values[m | 1 << i] - values[m])
            for m in range(1 << n)
            if not m >> i & 1
        )
    return out


def diagnose(
    model: ReleasedModel, catalogue: Catalogue, profile: Profile, similar: SimilarTable | None = None
) -> Diagnosis:
    person = profile.model_row()
    used = set(model.encoder.source_columns)
    players = [c for c in FACTOR_FR if c in used and c in person]
    base = reference_row(person)
    # A factor where the person equals the reference contributes exactly 0 (null player): only the
    # others enter the coalitions, so the common case is 8–32 rows, not 2^8.
    moving = [c for c in players if person[c] != base[c]]
    coalition_rows = shapley_rows(person, base, moving)
    unused = [FACTOR_FR[c] for c in FACTOR_FR if c not in used]

    # Everything else is one more forward pass: levers, zones, neighbouring occupations.
    variants: list[tuple[str, dict[str, object]]] = []
    if "training_followed" in used and not profile.training_followed:
        variants.append(("lever:Suivre une formation qualifiante", {**person, "training_followed": 1}))
    if "driving_licence" in used and not profile.driving_licence:
        variants.append(("lever:Obtenir le permis de conduire", {**person, "driving_licence": 1}))
    if "mobility_km" in used:
        wider = max(profile.mobility_km + 20, 30)
        variants.append(
            (f"lever:Élargir le rayon de mobilité à {wider} km", {**person, "mobility_km": wider})
        )
    zones = catalogue.neighbouring_zones(profile.place.zone_emploi)
    if "zone_emploi" in used:
        variants += [(f"zone:{z.code}", {**person, "zone_emploi": z.code}) for z in zones]
    targets = catalogue.mobility.get(profile.target.rome, ())[:NEIGHBOURS_SHOWN]
    variants += [(f"rome:{r}", {**person, "rome_target": r}) for r in targets]
    # One forward pass for everything: coalitions, levers, zones, neighbouring occupations.
    values = model.chances(coalition_rows + [r for _, r in variants])
    coalition_values, variant_values = values[: len(coalition_rows)], values[len(coalition_rows) :]
    contributions = {c: 0.0 for c in players} | shapley_values(coalition_values, moving)
    score, ref_score = coalition_values[-1], coalition_values[0]
    chances = dict(zip((k for k, _ in variants), variant_values, strict=True))

    factors = sorted(
        (
            Factor(
                c,
                FACTOR_FR[c],
                _describe(c, person[c], catalogue, person["rome_previous"] == person["rome_target"]),
                _describe(c, base[c], catalogue, base["rome_previous"] == base["rome_target"]),
                contributions[c],
            )
            for c in players
        ),
        key=lambda f: -abs(f.contribution),
    )
    levers = [Lever(k[6:], v, v - score) for k, v in chances.items() if k.startswith("lever:")]
    for column, label in (
        ("training_followed", "Suivre une formation"),
        ("driving_licence", "Le permis"),
        ("mobility_km", "Le rayon de mobilité"),
    ):
        if column not in used:
            levers.append(Lever(label, score, 0.0, False, "le modèle de cette étude n'en tient pas compte"))
    zone_levers = sorted(
        ((catalogue.zones[k[5:]], v) for k, v in chances.items() if k.startswith("zone:")),
        key=lambda t: -t[1],
    )[:3]
    levers += [Lever(f"Chercher aussi dans la zone de {z.label}", v, v - score) for z, v in zone_levers]

    neighbours = []
    for rome in targets:
        lookup = reference.bassin_tension_lookup(profile.place.bassin, rome)
        neighbours.append(
            Neighbour(
                rome,
                catalogue.rome_labels.get(rome, rome),
                chances[f"rome:{rome}"],
                lookup.value,
                lookup.level,
                catalogue.market(profile.place.bassin, rome),
            )
        )
    chance = calibrated(score, model.report.calibration)
    delay = Delay(
        median_delay(score),
        median_delay(chance.high) if chance.high is not None else None,
        median_delay(chance.low) if chance.low is not None else None,
    )
    tension = reference.bassin_tension_lookup(profile.place.bassin, profile.target.rome)
    return Diagnosis(
        profile=profile,
        chance=chance,
        delay=delay,
        reference_chance=ref_score,
        reference_description=[
            (FACTOR_FR[c], _describe(c, base[c], catalogue, base["rome_previous"] == base["rome_target"]))
            for c in players
        ],
        factors=factors,
        unused_factors=unused,
        levers=levers,
        neighbours=neighbours,
        market=catalogue.market(profile.place.bassin, profile.target.rome),
        tension=tension.value,
        tension_level=tension.level,
        similar=similar_profiles(
            similar,
            form_keys(
                profile.place.zone_emploi,
                profile.place.departements,
                profile.education_level,
                profile.months_unemployed,
                profile.target.rome,
            ),
        ),
    )
