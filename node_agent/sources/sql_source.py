"""A table or a query in the partner's own database (PostgreSQL, SQLite, any SQLAlchemy URL).

Partners keep their data in databases; the node reads it where it is, through SQLAlchemy, and
checks it with the same rules as a file. Three promises:

- **The password never reaches a log or a message.** Every name is rendered with SQLAlchemy's
  ``hide_password``, and a driver's error text is scrubbed of it too.
- **A query only reads.** It must be one ``SELECT`` (or ``WITH … SELECT``) statement, and it runs in
  a read-only transaction where the database offers one (PostgreSQL ``SET TRANSACTION READ ONLY``,
  SQLite ``PRAGMA query_only``), so that a ``WITH … DELETE`` or ``SELECT … INTO`` that passes the
  text check is still refused by the database itself.
- **Rows are numbered as the result comes** (1, 2, …, "row N"): a SQL table has no lines, so a
  problem names the row of the result, the column and the rule — order a query by a key (``ORDER
  BY``) to find row N again.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from tasks.schema import LINE_NUMBERS, ROW_UNIT, RecordNumbers, SchemaError, SchemaErrors, table_problem

from .source import TableSource

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_READ_ONLY_RULE = "read_only_query"


def database_url(url: str, site: str) -> URL:
    """The parsed URL, or a refusal that names it with the password hidden."""
    try:
        return sa.make_url(url)
    except ArgumentError:
        shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
        message = "is not a database URL (e.g. postgresql+psycopg://user@host/db)"
        raise table_problem(f"{site}/{shown}", "source_url", message) from None


def shown_url(url: URL) -> str:
    """What logs and messages may say about the database: everything but the password."""
    return url.render_as_string(hide_password=True)


def check_read_only(query: str, source: str) -> str:
    """The query, if it is one SELECT or WITH statement; else a refusal naming the rule."""
    body = _COMMENTS.sub(" ", query).strip().rstrip(";").strip()
    words = body.split(None, 1)
    first = words[0].lower() if words else ""
    if first not in ("select", "with") or ";" in body:
        raise table_problem(
            source,
            _READ_ONLY_RULE,
            "the query must be a single SELECT (or WITH … SELECT) statement: a node only reads its data",
        )
    return body


class SqlSource(TableSource):
    """One table (``schema.table`` allowed) or one read-only query of a database."""

    def __init__(self, url: str, *, site: str, table: str | None = None, query: str | None = None) -> None:
        self.url = database_url(url, site)
        self.table = table
        self.query = query
        if (table is None) == (query is None):
            raise ValueError("a SQL source reads either a table or a query (exactly one)")
        what = f"table {table}" if table is not None else "query"
        self.name = f"{site}/{shown_url(self.url)} {what}"
        if query is not None:
            check_read_only(query, self.name)

    def exists(self) -> bool:
        return True  # a database is asked when read: a missing table is a `missing_table` problem

    def read(self) -> pd.DataFrame:
        engine = sa.create_engine(self.url, poolclass=NullPool)
        try:
            with engine.connect() as connection, connection.begin():
                self._read_only(connection)
                frame = pd.read_sql_query(self._statement(connection), connection)
        except SchemaErrors:
            raise
        except (SQLAlchemyError, OSError) as exc:
            reason = self._reason(exc)
            refused = "read-only" in reason or "readonly" in reason  # the database refused a write
            rule = _READ_ONLY_RULE if refused else "sql"
            # The driver's text may quote a cell ('invalid input syntax for type date: "…"'): it goes
            # to the partner's log as the problem's value, never into what leaves the node.
            raise SchemaErrors(
                self.name, [SchemaError(self.name, None, None, rule, "cannot be read", value=reason)]
            ) from None
        finally:
            engine.dispose()
        frame.attrs[LINE_NUMBERS] = RecordNumbers(range(1, len(frame) + 1))
        frame.attrs[ROW_UNIT] = "row"
        return frame

    def _statement(self, connection: Connection) -> sa.TextClause | sa.Select[Any]:
        if self.query is not None:
            return sa.text(check_read_only(self.query, self.name))
        assert self.table is not None
        schema, _, name = self.table.rpartition(".")
        if not sa.inspect(connection).has_table(name, schema=schema or None):
            raise table_problem(self.name, "missing_table", f"no table {self.table!r} in this database")
        return sa.select(sa.text("*")).select_from(sa.table(name, schema=schema or None))

    def _read_only(self, connection: Connection) -> None:
        """Make the transaction unable to write, where the database can say so."""
        dialect = connection.dialect.name
        if dialect == "postgresql":
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        elif dialect == "sqlite":
            connection.exec_driver_sql("PRAGMA query_only = ON")
        else:  # a text check alone lets `SELECT … INTO` and friends through: no unguarded database
            raise table_problem(
                self.name, _READ_ONLY_RULE, f"{dialect} cannot be made read-only: use PostgreSQL or SQLite"
            )

    def _reason(self, exc: BaseException) -> str:
        """The driver's first line, without the password even if a driver echoed it."""
        original = getattr(exc, "orig", None) or exc
        first = (str(original).strip().splitlines() or [type(exc).__name__])[0]
        password = self.url.password
        return first.replace(str(password), "***") if password else first
