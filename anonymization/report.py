"""What anonymization did to a table: counts and row numbers, never values.

The node's study report embeds `AnonymizationReport.to_dict()`; a partner's data officer reads the same
JSON from `r2dde anonymize table`. Row numbers are the file's line numbers (the header is line 1), as
in the node's messages, so they can be looked up in the partner's own file with any editor.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_LISTED_ROWS = 1000


@dataclass
class IdentifierCounts:
    """Outcome of one identifier column."""

    identifier_type: str
    role: str
    pseudonymized: int = 0
    empty: int = 0
    rejected: int = 0
    rejected_rows: list[int] = field(default_factory=list)
    rejected_rules: dict[str, int] = field(default_factory=dict)


@dataclass
class GeneralizationCounts:
    """Outcome of one quasi-identifier generalization."""

    method: str
    outputs: list[str]
    generalized: int = 0
    empty: int = 0
    unknown: int = 0
    unknown_rows: list[int] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScrubCounts:
    """Outcome of the scrubbing of one free-text column."""

    texts: int = 0
    texts_changed: int = 0
    entities: dict[str, int] = field(default_factory=dict)


@dataclass
class DroppedRecords:
    """Records removed from the output, with why."""

    count: int = 0
    rows: list[int] = field(default_factory=list)


@dataclass
class AnonymizationReport:
    """Counts of what was pseudonymized, rejected, generalized, scrubbed and dropped."""

    source: str
    study_id: str | None = None
    key_id: str | None = None
    records_in: int = 0
    records_out: int = 0
    identifiers: dict[str, IdentifierCounts] = field(default_factory=dict)
    generalized: dict[str, GeneralizationCounts] = field(default_factory=dict)
    scrubbed: dict[str, ScrubCounts] = field(default_factory=dict)
    dropped_records: dict[str, DroppedRecords] = field(default_factory=dict)
    dropped_columns: list[str] = field(default_factory=list)
    passed_through: list[str] = field(default_factory=list)
    k_anonymity: dict[str, Any] | None = None

    def drop(self, reason: str, rows: list[int]) -> None:
        """Record that `rows` (line numbers) were removed for `reason`."""
        entry = self.dropped_records.setdefault(reason, DroppedRecords())
        entry.count += len(rows)
        entry.rows.extend(rows[: max(0, MAX_LISTED_ROWS - len(entry.rows))])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (row lists are capped at MAX_LISTED_ROWS per entry)."""
        return asdict(self)

    def to_json(self) -> str:
        """Pretty JSON, stable key order."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False)

    def summary_lines(self) -> list[str]:
        """A short human summary for the command line."""
        lines = [f"{self.source}: {self.records_in} records in, {self.records_out} out"]
        for column, ident in self.identifiers.items():
            lines.append(
                f"  {column} ({ident.identifier_type}, {ident.role}): {ident.pseudonymized} pseudonymized, "
                f"{ident.rejected} rejected, {ident.empty} empty"
            )
        for column, gen in self.generalized.items():
            lines.append(
                f"  {column} -> {', '.join(gen.outputs)} ({gen.method}): {gen.generalized} generalized, "
                f"{gen.unknown} unknown"
            )
        for column, scrub in self.scrubbed.items():
            found = ", ".join(f"{k}={v}" for k, v in sorted(scrub.entities.items())) or "none"
            lines.append(f"  {column}: {scrub.texts} texts scrubbed, {scrub.texts_changed} changed; {found}")
        for reason, dropped in self.dropped_records.items():
            lines.append(f"  dropped {dropped.count} records: {reason}")
        if self.k_anonymity:
            lines.append(f"  k-anonymity: {self.k_anonymity.get('summary', '')}")
        return lines
