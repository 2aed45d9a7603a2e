"""The node's data sources under one contract: the same hand-written records read from a CSV file, a
Parquet file, SQLite and PostgreSQL give the same validated table; bad input is refused with the
source, row, field and rule; a query source only reads; a database password reaches no message."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from sql_tables import count_rows, postgres_url_or_skip, throwaway_schema, write_table

from node_agent.settings import NodeSettings, NodeSettingsError
from node_agent.sources import TableSource, file_source, site_source
from node_agent.sources.sql_source import SqlSource
from tasks.schema import LINE_NUMBERS, ROW_UNIT, SchemaErrors, validate_parcours

SITE = "apec"
DATES = ("registration_date",)


def _person(i: int, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "record_id": f"AP-{i:04d}",
        "nir": f"2 90 07 13 055 {i:03d} 17",
        "ft_id": "" if i % 2 else f"765432{i % 10}B",
        "last_name": "BERNARD",
        "first_name": "Nadia",
        "email": "" if i % 3 else "n.bernard@laposte.net",
        "phone": "04 91 00 00 00",
        "address": "3 boulevard Longchamp, 13001 Marseille",
        "birth_year": 1980 + i,
        "sex": "F" if i % 2 else "M",
        "commune": "13055",
        "education_level": ("bac", "bac+2", "bac+5")[i % 3],
        "rome_target": "M1607",
        "rome_previous": "" if i % 2 else "M1605",
        "months_unemployed": i,
        "mobility_km": 5 * i,
        "driving_licence": i % 2,
        "training_followed": 0,
        "registration_date": f"2024-0{1 + i % 9}-1{i % 10}",
        "employed_6m": 1 if i % 2 else 0,
        "months_to_employment": 2.5 if i % 2 else float("nan"),
        "counselor_note": "" if i % 2 else "Suivi régulier.",
    }
    row.update(changes)
    return row


RECORDS = pd.DataFrame([_person(i) for i in range(1, 8)])

#: A writer puts a frame where one kind of source keeps it and returns that source.
Writer = Callable[[pd.DataFrame, str], TableSource]


def _csv_writer(folder: Path) -> Writer:
    def write(frame: pd.DataFrame, table: str) -> TableSource:
        path = folder / f"{table}.csv"
        frame.to_csv(path, index=False)
        return file_source(path, f"{SITE}/{path.name}")

    return write


def _parquet_writer(folder: Path) -> Writer:
    def write(frame: pd.DataFrame, table: str) -> TableSource:
        path = folder / f"{table}.parquet"
        frame.to_parquet(path, index=False)
        return file_source(path, f"{SITE}/{path.name}")

    return write


def _sql_writer(url: str, schema: str | None) -> Writer:
    def write(frame: pd.DataFrame, table: str) -> TableSource:
        write_table(url, table, frame, schema=schema, dates=DATES)
        return SqlSource(url, site=SITE, table=f"{schema}.{table}" if schema else table)

    return write


@pytest.fixture(params=["csv", "parquet", "sqlite", "postgresql"])
def writer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Writer]:
    if request.param == "csv":
        yield _csv_writer(tmp_path)
    elif request.param == "parquet":
        yield _parquet_writer(tmp_path)
    elif request.param == "sqlite":
        yield _sql_writer(f"sqlite:///{tmp_path / 'site.db'}", None)
    else:
        url = postgres_url_or_skip()
        with throwaway_schema(url) as schema:
            yield _sql_writer(url, schema)


def _problems(source: TableSource) -> SchemaErrors:
    with pytest.raises(SchemaErrors) as caught:
        source.load(validate_parcours)
    return caught.value


# --------------------------------------------------------------------------- the contract, for each source


def test_every_source_gives_the_same_validated_table(writer: Writer, tmp_path: Path) -> None:
    reference = _csv_writer(tmp_path)(RECORDS, "reference").load(validate_parcours)
    table = writer(RECORDS, "parcours").load(validate_parcours)
    # A SQL table has no order (PostgreSQL may return rows otherwise than inserted): by the key.
    table = table.sort_values("record_id", ignore_index=True)
    pd.testing.assert_frame_equal(table, reference)
    assert len(table) == 7 and table["months_to_employment"].isna().sum() == 3


def test_every_source_numbers_its_records_in_its_owners_terms(writer: Writer) -> None:
    raw = writer(RECORDS, "parcours").read()
    unit = raw.attrs[ROW_UNIT]
    first = 2 if unit == "line" else 1  # a CSV's header is line 1
    assert unit in ("line", "record", "row")
    assert list(raw.attrs[LINE_NUMBERS]) == list(range(first, first + len(RECORDS)))


def test_a_missing_column_is_named_by_every_source(writer: Writer) -> None:
    source = writer(RECORDS.drop(columns=["mobility_km"]), "parcours")
    problems = _problems(source).problems
    assert [(p.rule, p.field, p.source) for p in problems] == [("missing_column", "mobility_km", source.name)]


def test_a_wrong_type_at_row_n_is_located_by_every_source(writer: Writer) -> None:
    frame = RECORDS.astype({"birth_year": str})  # a text column, as a careless export makes it
    frame.loc[4, "birth_year"] = "mille neuf cent"  # the fifth record
    source = writer(frame, "parcours")
    error = _problems(source)
    [problem] = error.problems
    number = 6 if problem.unit == "line" else 5
    assert (problem.row, problem.field, problem.rule) == (number, "birth_year", "type")
    assert str(problem).startswith(f"{source.name}, {problem.unit} {number}, field 'birth_year'")


def test_an_identifier_value_never_reaches_a_message_from_any_source(writer: Writer) -> None:
    secret = "SECRET-NIR-VALUE"
    source = writer(pd.DataFrame([_person(1, nir=secret), _person(2)]), "parcours")
    error = _problems(source)
    assert [(p.field, p.rule) for p in error.problems] == [("nir", "format")]
    assert secret not in str(error) and secret not in error.public()


# --------------------------------------------------------------------------- SQL: tables, queries, refusals


def _sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    write_table(url, "parcours", RECORDS, dates=DATES)
    return url


def test_a_missing_table_is_named(tmp_path: Path) -> None:
    source = SqlSource(_sqlite(tmp_path), site=SITE, table="parcours_2025")
    [problem] = _problems(source).problems
    assert problem.rule == "missing_table" and "parcours_2025" in str(problem)


def test_a_query_selects_and_is_validated_like_a_table(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    query = "SELECT * FROM parcours WHERE sex = 'F' ORDER BY record_id  -- the women only"
    table = SqlSource(url, site=SITE, query=query).load(validate_parcours)
    assert table["sex"].tolist() == ["F"] * 4 and table.attrs[ROW_UNIT] == "row"


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM parcours",
        "UPDATE parcours SET sex = 'M'",
        "DROP TABLE parcours",
        "SELECT * FROM parcours; DROP TABLE parcours",
        "/* looks harmless */ INSERT INTO parcours SELECT * FROM parcours",
    ],
)
def test_a_write_statement_is_refused_as_a_query_before_anything_runs(tmp_path: Path, statement: str) -> None:
    url = _sqlite(tmp_path)
    with pytest.raises(SchemaErrors) as caught:
        SqlSource(url, site=SITE, query=statement).read()
    assert [p.rule for p in caught.value.problems] == ["read_only_query"]
    assert count_rows(url, "parcours") == len(RECORDS)


def test_a_write_hidden_behind_with_is_refused_by_sqlite_itself(tmp_path: Path) -> None:
    """Passes the text check (it starts with WITH); the read-only connection stops it."""
    url = _sqlite(tmp_path)
    source = SqlSource(url, site=SITE, query="WITH doomed AS (SELECT 1) DELETE FROM parcours")
    with pytest.raises(SchemaErrors) as caught:
        source.read()
    assert [p.rule for p in caught.value.problems] == ["read_only_query"]
    assert count_rows(url, "parcours") == len(RECORDS)


@pytest.mark.postgres
def test_a_write_hidden_behind_with_is_refused_by_postgresql_itself() -> None:
    url = postgres_url_or_skip()
    with throwaway_schema(url) as schema:
        write_table(url, "parcours", RECORDS, schema=schema, dates=DATES)
        attack = f"WITH gone AS (DELETE FROM {schema}.parcours RETURNING *) SELECT * FROM gone"
        with pytest.raises(SchemaErrors) as caught:
            SqlSource(url, site=SITE, query=attack).read()
        assert [p.rule for p in caught.value.problems] == ["read_only_query"]
        into = f"SELECT * INTO {schema}.copied FROM {schema}.parcours"
        with pytest.raises(SchemaErrors):
            SqlSource(url, site=SITE, query=into).read()
        assert count_rows(url, f"{schema}.parcours") == len(RECORDS)


def test_a_password_in_the_url_reaches_no_message() -> None:
    url = "postgresql+psycopg://node:s3cret-pw@127.0.0.1:1/emploi?connect_timeout=2"
    source = SqlSource(url, site=SITE, table="parcours")
    with pytest.raises(SchemaErrors) as caught:
        source.read()  # nothing listens on port 1
    error = caught.value
    assert [p.rule for p in error.problems] == ["sql"]
    for text in (source.name, str(error), error.public()):
        assert "s3cret-pw" not in text and "***" in text
    # Node settings travel in configs, manifests and process arguments: a password there is refused.
    with pytest.raises(NodeSettingsError, match="pgpass") as refused:
        NodeSettings(site=SITE, data_dir=Path("."), source=url, source_table="parcours")
    assert "s3cret-pw" not in str(refused.value)


@pytest.mark.postgres
def test_a_cell_the_database_quotes_in_its_error_stays_at_the_node() -> None:
    """PostgreSQL quotes the offending value ('invalid input syntax for type date: "…"'): the
    partner's log may show it, the decline sent to the Region may not."""
    url = postgres_url_or_skip()
    with throwaway_schema(url) as schema:
        write_table(url, "parcours", RECORDS, schema=schema, dates=DATES)
        query = f"SELECT *, CAST('Dupont-Jeanne' AS date) AS born FROM {schema}.parcours"
        with pytest.raises(SchemaErrors) as caught:
            SqlSource(url, site=SITE, query=query).read()
    assert [p.rule for p in caught.value.problems] == ["sql"]
    assert "Dupont-Jeanne" in str(caught.value)  # the node's own log
    assert "Dupont-Jeanne" not in caught.value.public()


def test_a_url_that_does_not_parse_is_named_without_its_password() -> None:
    with pytest.raises(SchemaErrors) as caught:
        SqlSource("not a url://node:s3cret-pw@db/x", site=SITE, table="parcours")
    assert caught.value.problems[0].rule == "source_url" and "s3cret-pw" not in str(caught.value)


# --------------------------------------------------------------------------- the node's settings choose


def test_the_data_folder_layout_is_read_unchanged_and_parquet_beside_it(tmp_path: Path) -> None:
    settings = NodeSettings(site=SITE, data_dir=tmp_path)
    RECORDS.to_csv(tmp_path / "parcours.csv", index=False)
    assert site_source(settings, "parcours", "parcours.csv").name == f"{SITE}/parcours.csv"
    (tmp_path / "parcours.csv").unlink()
    RECORDS.to_parquet(tmp_path / "parcours.parquet", index=False)
    source = site_source(settings, "parcours", "parcours.csv")
    assert source.name == f"{SITE}/parcours.parquet" and len(source.load(validate_parcours)) == 7


def test_a_database_source_comes_from_the_node_config_keys(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    write_table(url, "formations", pd.DataFrame({"x": [1]}))
    config = {"site": SITE, "data-dir": str(tmp_path), "source": url, "source-table": "parcours"}
    settings = NodeSettings.from_mapping(config, "node config")
    assert len(site_source(settings, "parcours", "parcours.csv").load(validate_parcours)) == 7
    other = site_source(settings, "formations", "formations.csv")  # another dataset: its own table
    assert isinstance(other, SqlSource) and other.table == "formations"
    again = NodeSettings.from_mapping(settings.to_mapping(), "manifest")
    assert again.source == url and again.source_table == "parcours"


@pytest.mark.parametrize(
    "extra",
    [
        {"source": "sqlite://", "source-table": "t", "source-query": "SELECT 1"},
        {"source-table": "parcours"},
    ],
)
def test_inconsistent_source_settings_are_refused(tmp_path: Path, extra: dict[str, str]) -> None:
    with pytest.raises(NodeSettingsError, match="node config"):
        NodeSettings.from_mapping({"site": SITE, "data-dir": str(tmp_path), **extra}, "node config")
