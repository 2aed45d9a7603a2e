"""Registry of generalizations by the name used in table configurations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from anonymization.errors import ConfigError
from anonymization.generalization.age_band import AgeBandGeneralizer
from anonymization.generalization.base import Generalizer
from anonymization.generalization.geo import CommuneGeneralizer
from anonymization.generalization.month import MonthGeneralizer
from anonymization.generalization.rare import RareCategoryGeneralizer


def _age_band(column: str, options: dict[str, Any]) -> Generalizer:
    bounds = tuple(options.pop("bounds", (16, 26, 36, 46, 56)))
    return AgeBandGeneralizer(
        output=options.pop("output", "age_band"),
        reference_year=int(options.pop("reference_year", 2025)),
        bounds=bounds,
    )


def _commune(column: str, options: dict[str, Any]) -> Generalizer:
    return CommuneGeneralizer(
        zone_output=options.pop("zone_output", "zone_emploi"),
        departement_output=options.pop("departement_output", "departement"),
    )


def _month(column: str, options: dict[str, Any]) -> Generalizer:
    return MonthGeneralizer(output=options.pop("output", f"{column}_month"))


def _rare(column: str, options: dict[str, Any]) -> Generalizer:
    return RareCategoryGeneralizer(
        output=options.pop("output", column),
        min_count=int(options.pop("min_count", 11)),
        other=str(options.pop("other", "autre")),
    )


GENERALIZERS: dict[str, Callable[[str, dict[str, Any]], Generalizer]] = {
    "age_band": _age_band,
    "commune_to_zone": _commune,
    "month": _month,
    "group_rare": _rare,
}


def build_generalizer(column: str, method: str, options: dict[str, Any]) -> Generalizer:
    """Build a generalization; unknown methods and leftover options are configuration errors."""
    factory = GENERALIZERS.get(method)
    if factory is None:
        raise ConfigError(
            f"column {column!r}: unknown generalization {method!r}; known: {', '.join(sorted(GENERALIZERS))}"
        )
    remaining = dict(options)
    try:
        generalizer = factory(column, remaining)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"column {column!r}: invalid options for {method!r}: {exc}") from exc
    if remaining:
        raise ConfigError(
            f"column {column!r}: unknown option(s) for {method!r}: {', '.join(sorted(remaining))}"
        )
    return generalizer
