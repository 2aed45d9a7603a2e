"""The audit export: JSON Lines an auditor can check offline with nothing but this file.

Line 1, the header::

    {"type": "header", "format": "r2dde-audit/1", "broker_public_key": {JWK OKP/Ed25519} or "PEM",
     "broker_kid": "broker", "exported_at": "2026-…Z"}

then one ``{"type": "event", seq, at, kind, actor, payload, prev_hash, hash}`` line per event in seq
order, then ``{"type": "head", "jws": "…"}`` lines (at least the head of the last event).

Line numbers are 1-based, as an editor shows them, and every error and problem quotes them.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from trust_broker.audit.chain import AuditEvent, format_at

EXPORT_FORMAT = "r2dde-audit/1"


class ExportError(ValueError):
    """An export that cannot be read; names the file and the line."""

    def __init__(self, path: Path | str, line: int, detail: str) -> None:
        self.path = str(path)
        self.line = line
        self.detail = detail
        super().__init__(f"{path}:{line}: {detail}")


@dataclass(frozen=True)
class ExportedEvent:
    line: int
    event: AuditEvent
    content_hash: str = ""  # the hash of its content, computed once while reading (RFC 8785 is costly)


@dataclass(frozen=True)
class ExportedHead:
    line: int
    jws: str


@dataclass
class AuditExport:
    path: str
    broker_public_key: Ed25519PublicKey
    broker_kid: str
    exported_at: str
    events: list[ExportedEvent] = field(default_factory=list)
    heads: list[ExportedHead] = field(default_factory=list)


def public_key_to_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")}


def public_key_from_header(value: Any) -> Ed25519PublicKey:
    """Accept an OKP/Ed25519 JWK or a PEM ``SubjectPublicKeyInfo``."""
    if isinstance(value, dict):
        if value.get("kty") != "OKP" or value.get("crv") != "Ed25519" or not isinstance(value.get("x"), str):
            raise ValueError("broker_public_key JWK must be kty=OKP, crv=Ed25519 with an x")
        x = value["x"]
        return Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))
    if isinstance(value, str) and "BEGIN PUBLIC KEY" in value:
        key = serialization.load_pem_public_key(value.encode("ascii"))
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("broker_public_key PEM is not an Ed25519 key")
        return key
    raise ValueError("broker_public_key must be a JWK object or a PEM string")


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"


def write_export(
    fp: TextIO,
    *,
    broker_public_key: Ed25519PublicKey,
    kid: str,
    events: Iterable[AuditEvent],
    heads: Iterable[str],
    exported_at: dt.datetime | None = None,
) -> None:
    """Write the header, the events (in the order given: the chain's seq order) and the signed heads."""
    header = {
        "type": "header",
        "format": EXPORT_FORMAT,
        "broker_public_key": public_key_to_jwk(broker_public_key),
        "broker_kid": kid,
        "exported_at": format_at(exported_at or dt.datetime.now(dt.UTC)),
    }
    fp.write(_line(header))
    for event in events:
        fp.write(_line({"type": "event", **event.model_dump(mode="json")}))
    for jws in heads:
        fp.write(_line({"type": "head", "jws": jws}))


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "<line>"
    return f"{where}: {error['msg']}"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_export(path: Path | str) -> AuditExport:
    """Parse an export; ``ExportError`` names the line of anything unreadable.

    Reading checks the *shape* of each line only; whether the chain holds is ``verify``'s job, so a
    tampered but well-formed export reads fine and is then judged line by line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(path, 0, f"cannot read the export: {exc}") from exc
    export: AuditExport | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw, parse_constant=_refuse_constant)
        except (json.JSONDecodeError, ValueError) as exc:
            raise ExportError(path, number, f"not JSON: {getattr(exc, 'msg', exc)}") from exc
        if not isinstance(record, dict):
            raise ExportError(path, number, "a line must be a JSON object")
        kind = record.pop("type", None)
        if export is None:
            if kind != "header":
                raise ExportError(path, number, "the first line must be the header")
            export = _read_header(path, number, record)
        elif kind == "event":
            try:
                event = AuditEvent.model_validate(record)
                # What the hash covers must be expressible in RFC 8785 JSON; its hash is kept for verify.
                content_hash = event.expected_hash()
            except ValidationError as exc:
                raise ExportError(path, number, f"malformed event: {_first_error(exc)}") from exc
            except rfc8785.CanonicalizationError as exc:
                raise ExportError(path, number, f"event holds a value outside RFC 8785 JSON: {exc}") from exc
            export.events.append(ExportedEvent(number, event, content_hash))
        elif kind == "head":
            if not isinstance(record.get("jws"), str) or set(record) != {"jws"}:
                raise ExportError(path, number, "a head line is exactly {type: head, jws: <compact JWS>}")
            export.heads.append(ExportedHead(number, record["jws"]))
        else:
            raise ExportError(path, number, f"unknown line type {kind!r} (expected event or head)")
    if export is None:
        raise ExportError(path, 1, "empty export: no header")
    return export


def _read_header(path: Path, number: int, record: dict[str, Any]) -> AuditExport:
    if record.get("format") != EXPORT_FORMAT:
        raise ExportError(path, number, f"format {record.get('format')!r} is not {EXPORT_FORMAT!r}")
    try:
        key = public_key_from_header(record.get("broker_public_key"))
    except ValueError as exc:
        raise ExportError(path, number, str(exc)) from exc
    kid, exported_at = record.get("broker_kid"), record.get("exported_at")
    if not isinstance(kid, str) or not isinstance(exported_at, str):
        raise ExportError(path, number, "header needs broker_kid and exported_at strings")
    return AuditExport(path=str(path), broker_public_key=key, broker_kid=kid, exported_at=exported_at)
