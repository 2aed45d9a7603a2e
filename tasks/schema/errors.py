"""What a refused table says: where (source, row, field) and which rule, never an identifier's value.

Problems are collected (up to ``MAX_PROBLEMS``) and reported together. ``str()`` is the partner's own
log (it may show a non-identifying cell value); ``public()`` is what may leave the node.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_PROBLEMS = 20


class SchemaError(ValueError):
    """One problem in a partner file: where (source, row, field) and which rule failed."""

    def __init__(
        self,
        source: str,
        row: int | None,
        field: str | None,
        rule: str,
        message: str,
        *,
        value: str | None = None,
        unit: str = "line",
    ) -> None:
        self.source = source
        self.row = row  # the line (CSV), record (Parquet) or row (SQL) number, see `unit`
        self.field = field
        self.rule = rule
        self.detail = message
        self.value = value  # the offending cell of a non-identifying field, shown on the node only
        self.unit = unit
        super().__init__(self._render())

    def _where(self) -> str:
        parts = [self.source]
        if self.row is not None:
            parts.append(f"{self.unit} {self.row}")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        return ", ".join(parts)

    def _render(self) -> str:
        shown = f"{self.value!r} " if self.value is not None else ""
        return f"{self._where()}: {shown}{self.detail}"

    def public(self) -> str:
        """The problem without any cell value: what may leave the node (where, which rule)."""
        return f"{self._where()}: {self.detail} (rule {self.rule})"


class SchemaErrors(SchemaError):
    """Every problem found in one file (capped at ``MAX_PROBLEMS``), reported at once."""

    def __init__(self, source: str, problems: Sequence[SchemaError], more: int = 0) -> None:
        self.problems: list[SchemaError] = list(problems)
        self.more = more
        total = len(self.problems) + more
        lines = [str(p) for p in self.problems]
        if more:
            lines.append(f"... and {more} more problem(s) not shown")
        header = f"{total} problem(s) in {source}"
        super().__init__(source, None, None, "schema", header + ":\n  " + "\n  ".join(lines))

    def _render(self) -> str:
        return self.detail

    def public(self) -> str:
        """Every problem's place and rule, no value: one line, fit for the Region's report."""
        total = len(self.problems) + self.more
        shown = "; ".join(p.public() for p in self.problems[:5])
        rest = total - min(5, len(self.problems))
        return f"{total} problem(s) in {self.source}: {shown}" + (f"; and {rest} more" if rest else "")


def table_problem(source: str, rule: str, message: str, *, row: int | None = None) -> SchemaErrors:
    """A problem with the table as a whole (unreadable, absent, not UTF-8 from a line on)."""
    return SchemaErrors(source, [SchemaError(source, row, None, rule, message)])
