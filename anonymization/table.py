"""Anonymize a table according to its configuration: pseudonymize, drop, generalize, scrub, check k.

Order matters: identifiers are pseudonymized (and records without a valid linkage identifier dropped)
before anything else reads the rows, so no later step ever sees a record that cannot honour an opt-out.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import TYPE_CHECKING

import pandas as pd

from anonymization.config import TableConfig
from anonymization.kanonymity import enforce_k_anonymity
from anonymization.keys import LinkageKey
from anonymization.pseudonyms import Pseudonymizer
from anonymization.report import (
    MAX_LISTED_ROWS,
    AnonymizationReport,
    GeneralizationCounts,
    IdentifierCounts,
    ScrubCounts,
)

if TYPE_CHECKING:  # Presidio and spaCy load only when a table has free text to scrub
    from anonymization.scrubber import FrenchScrubber

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def default_scrubber() -> FrenchScrubber:
    """One tag-operator scrubber per process (the spaCy model is loaded once)."""
    from anonymization.scrubber import FrenchScrubber

    return FrenchScrubber()


#: ``DataFrame.attrs`` key under which the reader left each record's number (``tasks.schema.LINE_NUMBERS``;
#: a CSV's line: header on line 1, first record on line 2, multi-line notes counted).
LINE_NUMBERS = "line_numbers"


def _line_numbers(raw: pd.DataFrame) -> list[int]:
    """Each record's line in its file — one numbering with the node's messages; a table read
    without them is taken as a CSV of one line per record under its header."""
    numbers = raw.attrs.get(LINE_NUMBERS)
    if numbers is not None and len(numbers) == len(raw):
        return [int(n) for n in numbers]
    return list(range(2, len(raw) + 2))


def _rows(positions: list[int], row_numbers: list[int]) -> list[int]:
    return [row_numbers[p] for p in positions[:MAX_LISTED_ROWS]]


def anonymize_table(
    raw: pd.DataFrame,
    config: TableConfig,
    *,
    source: str,
    linkage_key: LinkageKey,
    study_id: str,
    scrubber: FrenchScrubber | None = None,
) -> tuple[pd.DataFrame, AnonymizationReport]:
    """Return the anonymized table and the report of what was done (counts and row numbers only)."""
    config.check_table([str(c) for c in raw.columns], where=source)
    pseudonymizer = Pseudonymizer(linkage_key)
    study = pseudonymizer.for_study(study_id)
    report = AnonymizationReport(
        source=source, study_id=study_id, key_id=linkage_key.key_id, records_in=len(raw)
    )
    row_numbers = _line_numbers(raw)
    frame = raw.reset_index(drop=True)
    new_columns: dict[str, pd.Series] = {}

    # 1. Identifiers: every value is normalized, validated and keyed; none is copied to the output.
    keep = pd.Series(True, index=frame.index)
    for spec in config.columns.values():
        if spec.action != "identifier" or spec.identifier_type is None:
            continue
        result = pseudonymizer.pseudonymize_column(spec.identifier_type, frame[spec.name].tolist())
        is_linkage = spec.name == config.linkage
        counts = IdentifierCounts(
            identifier_type=spec.identifier_type,
            role="linkage" if is_linkage else f"output:{spec.output}",
            pseudonymized=len(frame) - len(result.rejected_rows) - len(result.empty_rows),
            empty=len(result.empty_rows),
            rejected=len(result.rejected_rows),
            rejected_rows=_rows(result.rejected_rows, row_numbers),
            rejected_rules=result.rejected_rules,
        )
        report.identifiers[spec.name] = counts
        linkage = pd.Series(result.pseudonyms, index=frame.index, dtype="object")
        if is_linkage:
            report.drop(
                "invalid linkage identifier (" + spec.name + ")", _rows(result.rejected_rows, row_numbers)
            )
            report.drop(
                "missing linkage identifier (" + spec.name + ")", _rows(result.empty_rows, row_numbers)
            )
            keep &= linkage.notna()
            new_columns["linkage_pseudonym"] = linkage
            new_columns["study_pseudonym"] = pd.Series(
                study.from_linkage_many(result.pseudonyms), index=frame.index, dtype="object"
            )
        elif spec.output == "linkage":
            new_columns[f"{spec.name}_pseudonym"] = linkage
        elif spec.output == "study":
            new_columns[f"{spec.name}_pseudonym"] = pd.Series(
                study.from_linkage_many(result.pseudonyms), index=frame.index, dtype="object"
            )
        if not spec.optional and result.empty_rows and not is_linkage:
            logger.warning(
                "%s: %d empty value(s) in required identifier column %s",
                source,
                len(result.empty_rows),
                spec.name,
            )
    report.dropped_records = {k: v for k, v in report.dropped_records.items() if v.count}

    kept_positions = keep.to_numpy(dtype=bool)
    frame = frame[kept_positions].reset_index(drop=True)
    row_numbers = [n for n, kept in zip(row_numbers, kept_positions, strict=True) if kept]
    new_columns = {name: col[kept_positions].reset_index(drop=True) for name, col in new_columns.items()}

    # 2. Quasi-identifiers are generalized, 3. free text is scrubbed, the rest kept or dropped.
    for spec in config.columns.values():
        if spec.action == "generalize" and spec.generalizer is not None:
            generalized = spec.generalizer.apply(frame[spec.name])
            new_columns.update(generalized.columns)
            report.generalized[spec.name] = GeneralizationCounts(
                method=spec.generalizer.method,
                outputs=spec.generalizer.outputs(),
                generalized=len(frame)
                - len(generalized.empty_positions)
                - len(generalized.unknown_positions),
                empty=len(generalized.empty_positions),
                unknown=len(generalized.unknown_positions),
                unknown_rows=_rows(generalized.unknown_positions, row_numbers),
                details=generalized.details,
            )
        elif spec.action == "scrub":
            active = scrubber if scrubber is not None else default_scrubber()
            values = frame[spec.name]
            present = values.notna() & values.astype("string").str.strip().ne("").fillna(False)
            texts = values[present].astype(str).tolist()
            scrubbed, entity_counts = active.scrub_batch_with_counts(texts)
            column = values.astype("object").copy()
            column[present.to_numpy(dtype=bool)] = scrubbed
            new_columns[spec.name] = column
            report.scrubbed[spec.name] = ScrubCounts(
                texts=len(texts),
                texts_changed=sum(a != b for a, b in zip(texts, scrubbed, strict=True)),
                entities=dict(entity_counts),
            )
        elif spec.action == "keep":
            new_columns[spec.name] = frame[spec.name]
            report.passed_through.append(spec.name)
        elif spec.action == "drop" or (spec.action == "identifier" and spec.name != config.linkage):
            report.dropped_columns.append(spec.name)
        if spec.action == "identifier" and spec.name == config.linkage:
            report.dropped_columns.append(spec.name)

    output = pd.DataFrame({name: new_columns[name] for name in config.output_columns()})

    # 4. k-anonymity over the generalized quasi-identifiers: generalize, then suppress, until reached.
    k_spec = config.k_anonymity
    if k_spec is not None:
        output, k_report, suppressed = enforce_k_anonymity(
            output,
            k_spec.quasi_identifiers,
            k_spec.k,
            k_spec.steps,
            k_spec.max_suppression,
            k_spec.sensitive,
        )
        output = output.reset_index(drop=True)
        report.drop(f"k-anonymity (k={k_spec.k})", [row_numbers[p] for p in suppressed])
        report.k_anonymity = k_report.to_dict()

    report.records_out = len(output)
    logger.info(
        "%s: anonymized %d records into %d (key %s)",
        source,
        report.records_in,
        report.records_out,
        linkage_key.key_id,
    )
    return output, report
