"""A CSV export, read as text: encoding, separator and line numbers as the partner's editor shows them.

One numbering everywhere (the node's log, the Region's report, `r2dde anonymize table`): the file's
line number. The header is line 1 and the first record line 2; a record whose quoted text spans
several lines starts on the line where it starts.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.schema import LINE_NUMBERS, ROW_UNIT, RecordNumbers, SchemaErrors, table_problem

from .source import FileSource


def _not_utf8(path: Path, source: str) -> SchemaErrors:
    """The line of the first byte that is not UTF-8 (a latin-1 export, typically), and the fix."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        position = len(data)
    except UnicodeDecodeError as exc:
        position = exc.start
    line = data.count(b"\n", 0, position) + 1
    message = "is not UTF-8 text (latin-1?): re-export the file as UTF-8"
    return table_problem(source, "encoding", message, row=line)


def line_numbers(frame: pd.DataFrame, first_line: int) -> np.ndarray:
    """The line each CSV record starts on: quoted text spanning several lines pushes the next ones."""
    starts = np.arange(len(frame)) + first_line
    if len(frame) == 0:
        return starts
    extra = np.zeros(len(frame), dtype=np.int64)
    for name in frame.columns:  # read as text (dtype=str): every column may hold a quoted newline
        extra += frame[name].astype("str").str.count("\n").fillna(0).to_numpy(dtype=np.int64)
    numbers: np.ndarray = starts + np.concatenate([[0], np.cumsum(extra)[:-1]])
    return numbers


class CsvSource(FileSource):
    """A UTF-8 CSV file, ``,`` or ``;`` separated (French exports: ``;`` with decimal commas)."""

    def read(self) -> pd.DataFrame:
        self._require_file()
        try:
            with self.path.open(encoding="utf-8-sig", newline="") as handle:
                header = handle.readline()
        except UnicodeDecodeError:
            raise _not_utf8(self.path, self.name) from None
        if not header.strip():
            raise table_problem(self.name, "empty_file", "the file is empty")
        separator = ";" if header.count(";") > header.count(",") else ","
        try:
            frame = pd.read_csv(
                self.path,
                sep=separator,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                encoding="utf-8-sig",
                quoting=csv.QUOTE_MINIMAL,
            )
        except UnicodeDecodeError:
            raise _not_utf8(self.path, self.name) from None
        except pd.errors.EmptyDataError:
            raise table_problem(self.name, "empty_file", "the file is empty") from None
        except pd.errors.ParserError as exc:
            raise table_problem(self.name, "csv_syntax", f"is not valid CSV: {exc}") from None
        frame.attrs[LINE_NUMBERS] = RecordNumbers(line_numbers(frame, 2))
        frame.attrs[ROW_UNIT] = "line"
        return frame
