"""``tasks.schema`` as pure functions on frames: typed cells from any source are checked like a CSV's
text, problems are numbered as the source numbered its records, and the package reads no file."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import pandas as pd
import pytest

import tasks.schema
from tasks.schema import LINE_NUMBERS, ROW_UNIT, SchemaErrors, validate_adult

ROW = {
    "age": 39,
    "workclass": "State-gov",
    "fnlwgt": 77516,
    "education": "Bachelors",
    "education_num": 13,
    "marital_status": "Never-married",
    "occupation": "Adm-clerical",
    "relationship": "Not-in-family",
    "race": "White",
    "sex": "Male",
    "capital_gain": 2174,
    "capital_loss": 0,
    "hours_per_week": 40,
    "native_country": "United-States",
    "income": "<=50K",
}


def test_typed_cells_as_a_database_returns_them_validate_like_text() -> None:
    """Decimals, NULLs and floats holding integers (an INTEGER column with a NULL elsewhere)."""
    typed = pd.DataFrame(
        [
            {**ROW, "capital_gain": decimal.Decimal("2174"), "workclass": None},
            {**ROW, "age": 50.0, "native_country": None},
        ]
    )
    text = pd.DataFrame([{**ROW, "workclass": ""}, {**ROW, "age": "50", "native_country": ""}]).astype(str)
    pd.testing.assert_frame_equal(validate_adult(typed, "db"), validate_adult(text, "file"))


def test_booleans_and_dates_are_read_as_their_csv_text() -> None:
    from tasks.schema import ColumnSpec, InRange, TableSchema, validate_table

    schema = TableSchema("t", (ColumnSpec("flag", "int", rules=(InRange(0, 1),)), ColumnSpec("day", "date")))
    frame = pd.DataFrame({"flag": [True, False], "day": [dt.date(2024, 3, 11), dt.date(2024, 2, 29)]})
    table = validate_table(frame, "db", schema)
    assert table["flag"].tolist() == [1, 0] and table["day"].tolist() == ["2024-03-11", "2024-02-29"]


def test_problems_are_numbered_as_the_source_numbered_its_records() -> None:
    frame = pd.DataFrame([ROW, {**ROW, "age": "vieux"}, ROW]).astype(str)
    frame.attrs[LINE_NUMBERS] = [1, 2, 3]
    frame.attrs[ROW_UNIT] = "row"
    with pytest.raises(SchemaErrors) as caught:
        validate_adult(frame, "site/db table adult")
    [problem] = caught.value.problems
    assert str(problem) == "site/db table adult, row 2, field 'age': 'vieux' is not an integer"
    assert problem.public() == "site/db table adult, row 2, field 'age': is not an integer (rule type)"


def test_a_missing_column_is_named_with_the_close_name_found() -> None:
    frame = pd.DataFrame([ROW]).rename(columns={"hours_per_week": "hours_week"})
    with pytest.raises(SchemaErrors) as caught:
        validate_adult(frame, "src")
    assert {(p.rule, p.field) for p in caught.value.problems} == {
        ("missing_column", "hours_per_week"),
        ("unknown_column", "hours_week"),
    }


def test_the_schema_package_reads_no_file() -> None:
    """``tasks`` does no I/O: reading is the node's sources' (reference data aside, in tasks.reference)."""
    folder = Path(tasks.schema.__file__).parent
    for path in folder.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for call in ("read_csv", "read_parquet", "read_sql", "open(", "read_bytes", "read_text"):
            assert call not in text, f"{path.name} calls {call}"
