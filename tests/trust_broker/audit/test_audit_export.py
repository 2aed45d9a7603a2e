"""The JSON Lines export: round trip, accepted key forms, and errors naming the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trust_broker.audit.export import ExportError, read_export


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_events_and_heads_read_back_with_their_line_numbers(export_lines: list[str], tmp_path: Path) -> None:
    export = read_export(_write(tmp_path, export_lines))
    assert [item.line for item in export.events] == list(range(2, 2 + len(export.events)))
    assert [item.event.seq for item in export.events] == list(range(1, 1 + len(export.events)))
    assert export.heads[-1].line == len(export_lines)
    assert export.broker_kid == "broker"


def test_a_pem_broker_key_is_accepted(
    export_lines: list[str], tmp_path: Path, broker_key: Ed25519PrivateKey
) -> None:
    header = json.loads(export_lines[0])
    header["broker_public_key"] = (
        broker_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    export = read_export(_write(tmp_path, [json.dumps(header), *export_lines[1:]]))
    assert export.broker_public_key == broker_key.public_key()


@pytest.mark.parametrize(
    ("line", "replacement", "message"),
    [
        (1, '{"type": "event"}', "the first line must be the header"),
        (1, '{"type": "header", "format": "r2dde-audit/9"}', "is not 'r2dde-audit/1'"),
        (3, '{"type": "event", "seq": 2', "not JSON"),
        (3, '{"type": "event", "seq": "two"}', "malformed event"),
        (4, '{"type": "comment", "text": "hi"}', "unknown line type 'comment'"),
        (4, '["event"]', "must be a JSON object"),
        (3, '{"type": "event", "seq": NaN}', "NaN is not JSON"),
    ],
)
def test_unreadable_lines_are_named(
    export_lines: list[str], tmp_path: Path, line: int, replacement: str, message: str
) -> None:
    lines = list(export_lines)
    lines[line - 1] = replacement
    with pytest.raises(ExportError, match=message) as caught:
        read_export(_write(tmp_path, lines))
    assert caught.value.line == line
    assert f"export.jsonl:{line}:" in str(caught.value)


def test_an_event_holding_an_integer_beyond_rfc8785_is_unreadable(
    export_lines: list[str], tmp_path: Path
) -> None:
    lines = list(export_lines)
    record = json.loads(lines[2])
    record["payload"]["huge"] = 2**60
    lines[2] = json.dumps(record)
    with pytest.raises(ExportError, match="outside RFC 8785") as caught:
        read_export(_write(tmp_path, lines))
    assert caught.value.line == 3


def test_an_empty_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no header"):
        read_export(_write(tmp_path, [""]))
