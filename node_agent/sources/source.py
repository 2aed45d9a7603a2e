"""A site's raw table, wherever the partner keeps it: the one interface the node reads data through.

A source reads one table *as it is* (no cleaning, no typing) and numbers its records the way its
owner will look for them — a CSV file's line, a Parquet record, a SQL row of the result — in the
frame's ``attrs`` (``tasks.schema.LINE_NUMBERS`` / ``ROW_UNIT``); ``tasks.schema.validate_table``
then checks it, the same for every source. Where a new kind of source goes: a subclass here, chosen
in ``factory.py`` from the node's settings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from tasks.schema import table_problem

#: A task's pure validation (``TaskSpec.validate``): raw frame and source name → typed frame.
Validate = Callable[[pd.DataFrame, str], pd.DataFrame]


class TableSource(ABC):
    """One raw table of one site.

    ``name`` is how every message calls the table (``site/parcours.csv``, or a database URL with its
    password hidden and the table or query): it goes into the partner's log and, without cell values,
    into the Region's report.
    """

    name: str

    @abstractmethod
    def read(self) -> pd.DataFrame:
        """The table's cells as stored, its records numbered in ``attrs``.

        A table that cannot be read at all (absent, unreadable, refused) raises
        ``tasks.schema.SchemaErrors`` naming this source and the rule, never a traceback.
        """

    @abstractmethod
    def exists(self) -> bool:
        """Whether there is something to read (a file present; a database is asked on ``read``)."""

    def load(self, validate: Validate) -> pd.DataFrame:
        """Read, then validate with the task's rules: the typed table or ``SchemaErrors``."""
        return validate(self.read(), self.name)


class FileSource(TableSource):
    """A table in one file of the site's data folder (CSV, Parquet, or a type no source reads)."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = Path(path)
        self.name = name

    def exists(self) -> bool:
        return self.path.is_file()

    def _require_file(self) -> None:
        if not self.path.is_file():
            raise table_problem(self.name, "missing_file", "file not found")
