"""Dataclasses to and from Flower's config records, whose keys are the field names with dashes.

Both the coordinator's run config and the round instructions travel this way; one reader and
one writer so that a missing or mistyped key is named the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

#: Parsers of the annotation strings (``from __future__ import annotations``) of scalar fields.
_SCALARS: dict[str, Callable[[Any], object]] = {"str": str, "int": int, "float": float}


def dashed(name: str) -> str:
    return name.replace("_", "-")


def read_dashed(
    cls: type,
    config: Mapping[str, object],
    *,
    what: str,
    error: type[ValueError],
    parsers: Mapping[str, Callable[[object], object]] | None = None,
) -> dict[str, Any]:
    """Constructor arguments of dataclass `cls` from `config`; `error` names the key at fault."""
    values: dict[str, Any] = {}
    for f in fields(cls):
        key = dashed(f.name)
        if key not in config:
            if f.default is MISSING:
                raise error(f"{what} lacks '{key}'")
            continue
        parse = (parsers or {}).get(f.name) or _SCALARS[str(f.type)]
        try:
            values[f.name] = parse(config[key])
        except (TypeError, ValueError):
            raise error(f"{what} '{key}' = {config[key]!r} is not a {f.type}") from None
    return values


def write_dashed(obj: object) -> dict[str, str | int | float]:
    """Flower config values: tuples as comma-separated text, paths as text."""
    out: dict[str, str | int | float] = {}
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if isinstance(value, tuple):
            value = ",".join(value)
        elif isinstance(value, Path):
            value = str(value)
        out[dashed(f.name)] = value
    return out
