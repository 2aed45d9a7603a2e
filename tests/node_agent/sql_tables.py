"""Test support: a site's table written to SQLite or to a throwaway PostgreSQL schema, as a partner's
database would hold it (typed columns, NULL for an empty cell)."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
import pytest
import sqlalchemy as sa

POSTGRES_ENV = "R2DDE_TEST_POSTGRES_URL"


def postgres_url_or_skip() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests skipped: {POSTGRES_ENV} is not set")
    return url


@contextmanager
def throwaway_schema(url: str) -> Iterator[str]:
    """A fresh schema on the PostgreSQL server, dropped with everything in it on exit."""
    schema = f"r2dde_source_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def as_database_rows(frame: pd.DataFrame, dates: tuple[str, ...] = ()) -> pd.DataFrame:
    """Typed cells as a database returns them: '' and NaN become NULL, ISO dates become DATEs."""
    out = frame.astype(object).where(frame.notna(), None)
    out = out.map(lambda v: None if v == "" else v)
    for name in dates:
        out[name] = [dt.date.fromisoformat(v) if v else None for v in out[name]]
    return out


def write_table(
    url: str,
    table: str,
    frame: pd.DataFrame,
    *,
    schema: str | None = None,
    dates: tuple[str, ...] = (),
    as_text: bool = False,
) -> None:
    """``frame`` as a table: typed columns (int, float, text, date), or every column TEXT."""
    engine = sa.create_engine(url)
    rows = frame.astype(str) if as_text else as_database_rows(frame, dates)
    types: dict[str, sa.types.TypeEngine[object]] = {}
    for name in frame.columns:
        if as_text:
            types[name] = sa.Text()
        elif name in dates:
            types[name] = sa.Date()
        elif pd.api.types.is_integer_dtype(frame[name]):
            types[name] = sa.BigInteger()
        elif pd.api.types.is_float_dtype(frame[name]):
            types[name] = sa.Float()
        else:
            types[name] = sa.Text()
    try:
        rows.to_sql(table, engine, schema=schema, index=False, dtype=types, if_exists="replace")  # type: ignore[arg-type]
    finally:
        engine.dispose()


def count_rows(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()
