"""Each record's number in its source, as a table's ``attrs[LINE_NUMBERS]`` carries it: shared, never copied.

pandas deep-copies a frame's ``attrs`` into every frame an operation returns (each ``astype``, mask,
column selection). Kept as a list of N numbers, that is N objects copied per operation: in a 10-node
deployment profile, copying a 3 000-record site's numbers took longer than validating its table.
A tuple cannot change, so every frame may share the same one; it still compares and serializes as
the numbers it holds (pandas compares ``attrs`` when it concatenates, writes them as JSON in Parquet).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class RecordNumbers(tuple[int, ...]):
    __slots__ = ()

    def __new__(cls, numbers: Iterable[Any]) -> RecordNumbers:
        return super().__new__(cls, (int(n) for n in numbers))

    def __deepcopy__(self, memo: dict[int, Any]) -> RecordNumbers:
        return self  # immutable: sharing it is copying it
