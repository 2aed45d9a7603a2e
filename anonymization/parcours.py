"""The node agent's entry point: raw `parcours` records → the analysis view of docs/CONTRACTS.md."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import pandas as pd

from anonymization.config import TableConfig, packaged_config
from anonymization.keys import LinkageKey
from anonymization.report import AnonymizationReport
from anonymization.table import anonymize_table

if TYPE_CHECKING:
    from anonymization.scrubber import FrenchScrubber


@lru_cache(maxsize=1)
def parcours_config() -> TableConfig:
    """The shipped configuration of the raw common schema (anonymization/configs/parcours.yaml)."""
    return packaged_config("parcours")


def anonymize_parcours(
    raw: pd.DataFrame,
    *,
    source: str,
    linkage_key: LinkageKey,
    study_id: str,
    scrubber: FrenchScrubber | None = None,
    fields: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, AnonymizationReport]:
    """Pseudonymize, generalize and scrub raw parcours records into the analysis view.

    Output columns: linkage_pseudonym, study_pseudonym, age_band, sex, zone_emploi, departement,
    education_level, rome_target, rome_previous, months_unemployed, mobility_km, driving_licence,
    training_followed, registration_month, employed_6m, months_to_employment, counselor_note (scrubbed).
    Records whose NIR is missing or invalid are dropped and counted with their row numbers: without a
    linkage pseudonym the person's opt-out could not be honoured. Pass one `scrubber` built per
    process; without it a process-wide default is built on first use. With `fields` (a study's grant),
    columns whose outputs are not among them are dropped unread (data minimization).
    """
    if fields is None:
        return anonymize_table(
            raw,
            parcours_config(),
            source=source,
            linkage_key=linkage_key,
            study_id=study_id,
            scrubber=scrubber,
        )
    needed = {*fields, "study_pseudonym"}
    frame, report = anonymize_table(
        raw,
        parcours_config().minimized(needed),
        source=source,
        linkage_key=linkage_key,
        study_id=study_id,
        scrubber=scrubber,
    )
    # A generalization may yield more than was granted (commune -> zone *and* département).
    return frame[[c for c in frame.columns if c in needed]], report
