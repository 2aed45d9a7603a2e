"""Policy digests: a stable fingerprint a grant binds, so a node can tell which rules allowed a study.

SHA-256 over RFC 8785 (JSON Canonicalization Scheme) of the JSON form of the documents: key order,
whitespace and number spelling in the YAML never change the digest; any value change does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import rfc8785
from pydantic import BaseModel

DIGEST_PREFIX = "sha256:"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, Mapping):
        return {str(key): _jsonable(value) for key, value in obj.items()}
    if isinstance(obj, Sequence) and not isinstance(obj, str | bytes):
        return [_jsonable(value) for value in obj]
    return obj


def canonical_bytes(obj: Any) -> bytes:
    """RFC 8785 bytes of a model, or of a mapping / sequence of models and plain JSON values."""
    return rfc8785.dumps(_jsonable(obj))


def policy_digest(obj: Any) -> str:
    """``"sha256:" + hex`` of the canonical JSON of ``obj`` (a pydantic model or nested models)."""
    return DIGEST_PREFIX + hashlib.sha256(canonical_bytes(obj)).hexdigest()
