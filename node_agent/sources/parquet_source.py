"""A Parquet file: typed columns, no lines — its records are numbered from 1 and called "record"."""

from __future__ import annotations

import pandas as pd

from tasks.schema import LINE_NUMBERS, ROW_UNIT, RecordNumbers, table_problem

from .source import FileSource


class ParquetSource(FileSource):
    """A Parquet file (its typed cells are rendered as text by the validation, like a CSV's)."""

    def read(self) -> pd.DataFrame:
        self._require_file()
        try:
            frame = pd.read_parquet(self.path)
        except (OSError, ValueError) as exc:
            raise table_problem(self.name, "parquet", f"is not a readable Parquet file ({exc})") from None
        frame.attrs[LINE_NUMBERS] = RecordNumbers(range(1, len(frame) + 1))
        frame.attrs[ROW_UNIT] = "record"
        return frame
