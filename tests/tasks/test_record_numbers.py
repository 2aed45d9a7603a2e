"""Record numbers ride along every pandas operation without being copied (tasks.schema.RecordNumbers)."""

from __future__ import annotations

import copy
import io

import numpy as np
import pandas as pd

from tasks.schema import LINE_NUMBERS, RecordNumbers


def _table(rows: int) -> pd.DataFrame:
    frame = pd.DataFrame({"age": np.arange(rows) % 90, "zone": ["9301"] * rows})
    frame.attrs[LINE_NUMBERS] = RecordNumbers(np.arange(rows) + 2)
    return frame


def test_operations_share_the_numbers_instead_of_copying_them() -> None:
    """pandas deep-copies attrs into every result: with a list that was N objects per operation."""
    table = _table(3000)
    numbers = table.attrs[LINE_NUMBERS]
    derived = [
        table.astype({"age": "float64"}),
        table[table["age"] > 30],
        table[["zone"]],
        table.copy(deep=True),
        table.reset_index(drop=True),
    ]
    assert all(frame.attrs[LINE_NUMBERS] is numbers for frame in derived)
    assert copy.deepcopy(numbers) is numbers
    assert all(type(n) is int for n in numbers[:5])


def test_frames_concatenated_keep_equal_numbers_and_drop_different_ones() -> None:
    """pandas compares attrs when it concatenates (an array there raised "truth value … ambiguous")."""
    one, other = _table(4), _table(4)
    assert list(pd.concat([one, other]).attrs[LINE_NUMBERS]) == [2, 3, 4, 5]
    other.attrs[LINE_NUMBERS] = RecordNumbers([10, 11, 12, 13])
    assert LINE_NUMBERS not in pd.concat([one, other]).attrs


def test_a_table_with_its_numbers_is_written_as_parquet() -> None:
    """pandas writes attrs as JSON in a Parquet file (the node's prepared-table cache is Parquet)."""
    payload = io.BytesIO()
    _table(3).to_parquet(payload)
    assert pd.read_parquet(io.BytesIO(payload.getvalue())).attrs[LINE_NUMBERS] == [2, 3, 4]
