"""Typed reads of the values carried by Flower records and run configs.

A ``ConfigRecord`` or ``MetricRecord`` value is a union (a number, a text, a list of either); a
message comes from another institution, so what it holds is checked where it is read, never assumed.
Each reader returns one Python type or raises ``TypeError``/``ValueError`` naming the key, which the
codecs turn into their own protocol error. ``ConfigValue`` is the union Flower accepts, spelt here so
that ``tasks`` stays free of Flower.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

ConfigValue: TypeAlias = (
    int | float | str | bytes | bool | list[int] | list[float] | list[str] | list[bytes] | list[bool]
)

_MISSING = object()


def _get(record: Mapping[str, object], key: str, default: object) -> object:
    value = record.get(key, default)
    if value is _MISSING:
        raise KeyError(key)
    return value


def _number(key: str, value: int | float | str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"'{key}' = {value!r} is not a number") from None


def read_int(record: Mapping[str, object], key: str, default: object = _MISSING) -> int:
    """An integer (a whole float or numeric text is accepted, as Flower's run configs carry them)."""
    value = _get(record, key, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"'{key}' = {value!r} is not an integer")
    number = _number(key, value)
    if not number.is_integer():
        raise ValueError(f"'{key}' = {value!r} is not an integer")
    return int(number)


def read_float(record: Mapping[str, object], key: str, default: object = _MISSING) -> float:
    """A number (numeric text is accepted)."""
    value = _get(record, key, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"'{key}' = {value!r} is not a number")
    return _number(key, value)


def read_str(record: Mapping[str, object], key: str, default: object = _MISSING) -> str:
    """A text."""
    value = _get(record, key, default)
    if not isinstance(value, str):
        raise TypeError(f"'{key}' = {value!r} is not a text")
    return value


def read_floats(record: Mapping[str, object], key: str, default: object = _MISSING) -> list[float]:
    """A list of numbers (None reads as empty)."""
    value = _get(record, key, default)
    if value is None:
        return []
    if not isinstance(value, list | tuple) or any(
        isinstance(v, bool) or not isinstance(v, int | float) for v in value
    ):
        raise TypeError(f"'{key}' is not a list of numbers")
    return [float(v) for v in value]


def read_strs(record: Mapping[str, object], key: str, default: object = _MISSING) -> list[str]:
    """A list of texts (None reads as empty)."""
    value = _get(record, key, default)
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"'{key}' is not a list of texts")
    return [str(v) for v in value]
