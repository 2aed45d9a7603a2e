"""Which source a node reads a dataset from, chosen by the node's own settings (never a message).

- No ``source`` setting: the data folder, as simulations, the demo and every deployment so far
  write it — ``<data-dir>/<dataset>.csv`` (the task's file name), else ``<dataset>.parquet``.
- ``source`` a database URL: the ``source-table`` or ``source-query`` for ``source-dataset``
  (``parcours`` unless told), and for any other dataset the table named after it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tasks.schema import table_problem

from ..settings import NodeSettings
from .csv_source import CsvSource
from .parquet_source import ParquetSource
from .source import FileSource, TableSource, Validate

FILE_SOURCES: dict[str, type[CsvSource] | type[ParquetSource]] = {
    ".csv": CsvSource,
    ".parquet": ParquetSource,
    ".pq": ParquetSource,
}


class _UnsupportedFile(FileSource):
    """A file of a type no source reads: refused when read, with the types that are."""

    def read(self) -> pd.DataFrame:
        self._require_file()
        message = f"unsupported file type '{self.path.suffix.lower()}' (expected .csv or .parquet)"
        raise table_problem(self.name, "format", message)


def file_source(path: Path, name: str) -> TableSource:
    """A file's source by its suffix (CSV or Parquet)."""
    path = Path(path)
    kind = FILE_SOURCES.get(path.suffix.lower())
    return kind(path, name) if kind is not None else _UnsupportedFile(path, name)


def load_file(path: Path, site: str, validate: Validate) -> pd.DataFrame:
    """Read a site's file and validate it: ``load_file(path, site, tasks.schema.validate_parcours)``."""
    path = Path(path)
    return file_source(path, f"{site}/{path.name}").load(validate)


def site_source(settings: NodeSettings, dataset: str, file_name: str) -> TableSource:
    """Where this node reads ``dataset`` from (``file_name`` is its name in the data folder)."""
    if settings.source is not None:
        from .sql_source import SqlSource  # SQLAlchemy only for nodes that read a database

        chosen = dataset == settings.source_dataset
        table = settings.source_table if chosen else None
        query = settings.source_query if chosen else None
        if query is None:
            table = table or dataset
        return SqlSource(settings.source, site=settings.site, table=table, query=query)
    path = settings.data_dir / file_name
    if not path.is_file():
        parquet = path.with_suffix(".parquet")
        if parquet.is_file():
            path = parquet
    return file_source(path, f"{settings.site}/{path.name}")
