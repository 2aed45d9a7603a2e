"""Values JSON allows but the broker cannot keep: refused as 422 before any handler sees them.

The audit chain hashes canonical JSON (RFC 8785), which has no NaN/Infinity and no integer
beyond 2**53; PostgreSQL text cannot hold NUL. Catching them here keeps those a clear 4xx.
"""

from __future__ import annotations

import json
import math
from typing import Any

from trust_broker.store.records import StoreError

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 32


def _reject_constant(name: str) -> Any:
    raise StoreError("request.invalid", f"JSON constant {name} is not accepted", status=422)


def _walk(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise StoreError("request.invalid", f"JSON nested deeper than {MAX_DEPTH} levels", status=422)
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, float):
        # 1e400 parses as infinity; RFC 8785 has no spelling for it, nor for a float beyond 2**53.
        if not math.isfinite(value) or abs(value) > MAX_SAFE_INTEGER:
            raise StoreError(
                "request.invalid", "numbers must be finite and at most 2**53 in magnitude", status=422
            )
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise StoreError("request.invalid", "integers above 2**53 are not accepted", status=422)
    elif isinstance(value, str):
        if "\x00" in value:
            raise StoreError("request.invalid", "NUL characters are not accepted in strings", status=422)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (\ud800): not Unicode text, not hashable JSON
            raise StoreError(
                "request.invalid", "strings must be valid Unicode (lone surrogate)", status=422
            ) from None
    elif isinstance(value, list):
        for item in value:
            _walk(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(key, depth + 1)
            _walk(item, depth + 1)


def check_json_body(body: bytes) -> None:
    """Raise a 422 ``StoreError`` for values the store or the chain cannot represent; ignore non-JSON."""
    if not body:
        return
    try:
        parsed = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return  # FastAPI's own parser answers malformed JSON with 422
    _walk(parsed, 0)
