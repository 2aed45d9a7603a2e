"""Similar profiles: what happened to people like this one at the partners, from a released DP table.

A person's request never asks the partners anything. Each question answered under differential
privacy spends privacy budget, and a stream of questions chosen by whoever types into a public
form is exactly the differencing attack DP budgets exist to stop. So the service only *reads* a
table that a granted statistics study already published (``r2dde query``, docs/QUERIES.md): noisy
counts, rates and delays per cell, each with its 95 % interval, small cells suppressed by the
coordinator on noisy counts. Looking a cell up in a published table is post-processing: it costs
no ε, however many people ask.

The table ships with the study folder, in ``<study>/profils-similaires/report.json`` (the folder
``r2dde query`` writes). Its cells may be grouped only by what the form asks (zone d'emploi,
département, diploma, months out of work, ROME domain of the target occupation): never by sex or
age, which the service does not ask. A value without its interval is refused when the service
starts, so the page can never show a number without its uncertainty.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from tasks import keysets
from tasks.analytics import QuerySpec

from .study import Estimate, StudyFolderError

#: Where a study folder carries its released table (the ``--out`` of ``r2dde query``).
RELEASE_FOLDER = "profils-similaires"
#: The service's key for each group field it can fill from the form.
FORM_KEYS = ("zone_emploi", "departement", "education_level", "months_out_band", "rome_domain")
#: An interval wider than this (on a share) says little: the page says so beside the numbers.
WIDE_SHARE = 0.30
_MONTHS_OUT_EDGES = ((5, "0-5"), (11, "6-11"), (23, "12-23"))


@dataclass(frozen=True)
class SimilarTable:
    """A released table as the service reads it: which measure is which, and each cell's values."""

    study_id: str
    title: str
    group_by: tuple[str, ...]
    sites: tuple[str, ...]
    epsilon: dict[str, float]
    min_cell_size: int
    count: str
    rate: str | None
    delay: str | None
    #: cell key (values in ``group_by`` order) → measure name → estimate; ``None`` = suppressed.
    cells: dict[tuple[str, ...], dict[str, Estimate] | None]


@dataclass(frozen=True)
class SimilarProfiles:
    """The person's cell, or why there is none (``message`` is French and always set)."""

    available: bool
    message: str
    cell: tuple[tuple[str, str], ...] = ()
    people: Estimate | None = None
    employed_6m_share: Estimate | None = None
    median_delay_months: Estimate | None = None
    suppressed: bool = False
    imprecise: bool = False
    table: SimilarTable | None = None


def _refuse(path: Path, what: str) -> StudyFolderError:
    return StudyFolderError(f"la table de profils similaires « {path} » {what}")


def read_similar_table(study: Path) -> SimilarTable | None:
    """The table shipped with the study, ``None`` when there is none; a French error when unusable."""
    path = study / RELEASE_FOLDER / "report.json"
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(path, f"est illisible ({type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise _refuse(path, "n'est pas un objet JSON")
    return parse_similar_table(raw, path)


def parse_similar_table(raw: Mapping[str, object], path: Path) -> SimilarTable:
    if raw.get("kind") != "table" or raw.get("status") != "completed":
        raise _refuse(path, "n'est pas la table publiée d'une étude de statistiques terminée (r2dde query)")
    audit = raw.get("audit")
    if isinstance(audit, dict) and audit.get("verified") is False:
        raise _refuse(path, "vient d'une étude dont l'audit a échoué : elle ne peut pas être publiée")
    try:
        spec = QuerySpec.from_json(str(raw.get("query")))
    except (ValidationError, ValueError):
        raise _refuse(path, "n'indique pas sa requête (champ « query ») sous une forme lisible") from None
    unknown = [g for g in spec.group_by if g not in FORM_KEYS]
    if unknown:
        raise _refuse(
            path,
            f"est groupée par « {', '.join(unknown)} », que le formulaire ne demande pas : publiez une table "
            f"groupée par {', '.join(FORM_KEYS)} seulement",
        )
    count = next((m.name for m in spec.measures if m.kind == "count"), None)
    if count is None:
        raise _refuse(path, "n'a pas de mesure « count » : l'effectif de chaque case doit être publié")
    rate = next(
        (m.name for m in spec.measures if (m.kind, m.field, m.equals) == ("share", "employed_6m", None)),
        None,
    )
    delay = next(
        (
            f"{m.name}[q50]"
            for m in spec.measures
            if m.kind == "quantile" and m.field == "months_to_employment" and 0.5 in m.quantiles
        ),
        None,
    )
    cells: dict[tuple[str, ...], dict[str, Estimate] | None] = {}
    rows = raw.get("cells")
    if not isinstance(rows, list):
        raise _refuse(path, "n'a pas de liste « cells »")
    wanted = {count, rate, delay} - {None}
    for i, row in enumerate(rows):
        where = f"(case n° {i + 1})"
        if not isinstance(row, dict) or not isinstance(row.get("group"), dict):
            raise _refuse(path, f"a une case sans « group » {where}")
        key = tuple(str(row["group"].get(g, "")) for g in spec.group_by)
        if row.get("suppressed") is True:
            cells[key] = None
            continue
        if row.get("measure") not in wanted or key in cells and cells[key] is None:
            continue
        numbers = [
            float(v)
            for v in (row.get("value"), row.get("ci_low"), row.get("ci_high"))
            if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        if len(numbers) != 3 or not all(map(math.isfinite, numbers)):
            raise _refuse(
                path,
                f"publie « {row.get('measure')} » sans valeur ni intervalle à 95 % {where} : "
                "aucun chiffre ne peut être montré sans son incertitude",
            )
        cells.setdefault(key, {})[str(row["measure"])] = Estimate(*numbers)  # type: ignore[index]
    sites = raw.get("sites")
    epsilon = {
        str(s): float(info["epsilon"])
        for s, info in (sites.items() if isinstance(sites, dict) else ())
        if isinstance(info, dict) and isinstance(info.get("epsilon"), int | float) and info["epsilon"] > 0
    }
    min_cell = raw.get("min_cell_size")
    return SimilarTable(
        study_id=str(raw.get("study_id", "?")),
        title=spec.title or spec.id,
        group_by=spec.group_by,
        sites=tuple(epsilon),
        epsilon=epsilon,
        min_cell_size=int(min_cell) if isinstance(min_cell, int) else 11,
        count=count,
        rate=rate,
        delay=delay,
        cells=cells,
    )


def months_out_band(months: int) -> str:
    """The public band of months out of work (``tasks.keysets.MONTHS_OUT_BANDS``)."""
    return next((band for edge, band in _MONTHS_OUT_EDGES if months <= edge), "24+")


def form_keys(
    zone_emploi: str, departements: tuple[str, ...], education_level: str, months_unemployed: int, rome: str
) -> dict[str, str]:
    """The person's value of each group field the service knows (a zone across two départements
    has no single département: its cell is then not looked up)."""
    return {
        "zone_emploi": zone_emploi,
        "departement": departements[0] if len(departements) == 1 else "",
        "education_level": education_level,
        "months_out_band": months_out_band(months_unemployed),
        "rome_domain": rome[:1],
    }


@lru_cache(maxsize=512)
def describe_cell(field: str, value: str) -> str:
    key_set = keysets.key_set_of(field)
    return key_set.label(value) if key_set else value


UNAVAILABLE = (
    "Aucune table de profils similaires n'a été publiée avec cette étude : les partenaires n'ont pas "
    "calculé ces statistiques. Aucun chiffre n'est donc affiché ici, et votre demande n'en fait "
    "calculer aucun."
)


def similar_profiles(table: SimilarTable | None, person: Mapping[str, str]) -> SimilarProfiles:
    """The person's cell in the released table (a lookup: no query, no privacy cost).

    ``person`` holds the form's values for ``FORM_KEYS`` (``form_keys`` builds it).
    """
    if table is None:
        return SimilarProfiles(False, UNAVAILABLE)
    key = tuple(person.get(g, "") for g in table.group_by)
    cell = tuple(zip(table.group_by, key, strict=True))
    if key not in table.cells:
        return SimilarProfiles(
            False,
            "La table publiée n'a pas de case pour votre situation : aucun chiffre n'est affiché.",
            cell=cell,
            table=table,
        )
    values = table.cells[key]
    if values is None:
        return SimilarProfiles(
            False,
            "Trop peu de personnes dans votre situation pour publier un chiffre sans risque pour leur "
            f"vie privée : la table masque toute case qui pourrait compter moins de {table.min_cell_size} "
            "personnes. Aucun chiffre n'est donc affiché ici.",
            cell=cell,
            suppressed=True,
            table=table,
        )
    rate = values.get(table.rate) if table.rate else None
    imprecise = rate is not None and (rate.high or 0.0) - (rate.low or 0.0) > WIDE_SHARE
    return SimilarProfiles(
        True,
        "",
        cell=cell,
        people=values.get(table.count),
        employed_6m_share=rate,
        median_delay_months=values.get(table.delay) if table.delay else None,
        imprecise=imprecise,
        table=table,
    )
