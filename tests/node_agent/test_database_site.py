"""End to end: a node whose site data lives in PostgreSQL answers a training message exactly as the
same node does from its CSV file, and a bad table there is declined with its name, row and rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sql_tables import postgres_url_or_skip, throwaway_schema, write_table
from test_train_handler import SITE, _config, _context, _declined, _message, _train, _weights, adult_rows

from node_agent.sources.sql_source import database_url, shown_url
from tasks.schema import ADULT_COLUMNS

__all__ = ["adult_rows"]  # the shared fixture of the train handler's tests

pytestmark = pytest.mark.postgres


@pytest.fixture
def database(adult_rows: pd.DataFrame) -> object:
    url = postgres_url_or_skip()
    with throwaway_schema(url) as schema:
        # The partner's table has a key of its own; the node reads the granted columns in its order
        # (a SQL table has no order of its own, and DP-SGD's batches depend on the records' order).
        write_table(url, "adult", adult_rows.assign(person_key=range(len(adult_rows))), schema=schema)
        yield url, schema


def test_a_training_round_from_postgresql_releases_what_the_csv_file_releases(
    database: tuple[str, str], adult_rows: pd.DataFrame, tmp_path: Path
) -> None:
    url, schema = database
    from_file, from_database = tmp_path / "file-site", tmp_path / "database-site"
    from_file.mkdir()
    from_database.mkdir()
    adult_rows.to_csv(from_file / "adult.csv", index=False, lineterminator="\n")
    config = _config()
    seeded = {"reproducible-seed": 11}  # the node's own setting: the two runs draw the same noise
    file_reply = _train(_message(config, 1), _context(from_file, **seeded))
    query = f"SELECT {', '.join(ADULT_COLUMNS)} FROM {schema}.adult ORDER BY person_key"
    database_config = {"source": url, "source-query": query, "source-dataset": "adult"}
    database_reply = _train(_message(config, 1), _context(from_database, **seeded, **database_config))
    assert not list(from_database.glob("*.csv"))  # nothing was read from (or written as) a file
    assert np.array_equal(_weights(file_reply), _weights(database_reply))
    assert dict(file_reply.content["metrics"]) == dict(database_reply.content["metrics"])


def test_a_bad_table_in_postgresql_is_declined_with_its_name_row_and_rule(
    database: tuple[str, str], adult_rows: pd.DataFrame, tmp_path: Path
) -> None:
    url, schema = database
    broken = adult_rows.astype({"age": str}).assign(person_key=range(len(adult_rows)))
    broken.loc[broken.index[41], "age"] = "forty"
    write_table(url, "adult_broken", broken, schema=schema)
    folder = tmp_path / "site"
    folder.mkdir()
    query = f"SELECT {', '.join(ADULT_COLUMNS)} FROM {schema}.adult_broken ORDER BY person_key"
    node = {"source": url, "source-query": query, "source-dataset": "adult"}
    reason = _declined(_train(_message(_config(), 1), _context(folder, **node)))
    assert "data.schema" in reason and f"{shown_url(database_url(url, SITE))} query" in reason
    assert "row 42" in reason and "age" in reason and "rule type" in reason and "forty" not in reason
    missing = {"source": url, "source-table": f"{schema}.adult_2025", "source-dataset": "adult"}
    reason = _declined(_train(_message(_config(), 1), _context(folder, **missing)))
    assert f"table {schema}.adult_2025" in reason and "rule missing_table" in reason
