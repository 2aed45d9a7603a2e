"""A Parquet file: typed columns, no lines — its records are numbered from 1 and called "record"."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tasks.schema import LINE_NUMBERS, ROW_UNIT, table_problem

from .source import TableSource


class ParquetSource(TableSource):
    """A Parquet file (its typed cells are rendered as text by the validation, like a CSV's)."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = Path(path)
        self.name = name

    def exists(self) -> bool:
        return self.path.is_file()

    def read(self) -> pd.DataFrame:
        if not self.path.is_file():
            raise table_problem(self.name, "missing_file", "file not found")
        try:
            frame = pd.read_parquet(self.path)
        except (OSError, ValueError) as exc:
            raise table_problem(self.name, "parquet", f"is not a readable Parquet file ({exc})") from None
        frame.attrs[LINE_NUMBERS] = list(range(1, len(frame) + 1))
        frame.attrs[ROW_UNIT] = "record"
        return frame
