"""``r2dde audit verify`` and ``r2dde audit report`` as an auditor runs them."""

from __future__ import annotations

import json
from pathlib import Path

from audit_helpers import event_lines, write_lines
from typer.testing import CliRunner

from trust_broker.audit.cli import app

RUNNER = CliRunner()


def test_verify_exits_zero_and_shows_each_account(export_lines: list[str], tmp_path: Path) -> None:
    result = RUNNER.invoke(app, ["verify", str(write_lines(tmp_path, export_lines))], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "france_travail" in result.output and "apec" in result.output and "OK" in result.output


def test_verify_exits_one_and_names_the_line_of_a_tampered_event(
    export_lines: list[str], tmp_path: Path
) -> None:
    line = event_lines(export_lines, "study.decided")[0]
    lines = list(export_lines)
    record = json.loads(lines[line - 1])
    record["payload"]["allowed"] = False
    lines[line - 1] = json.dumps(record)
    result = RUNNER.invoke(app, ["verify", str(write_lines(tmp_path, lines))], terminal_width=200)
    assert result.exit_code == 1
    assert "chain.hash" in result.output
    row = next(text for text in result.output.splitlines() if "chain.hash" in text)
    assert f" {line} " in row


def test_verify_exits_two_on_an_unreadable_file(export_lines: list[str], tmp_path: Path) -> None:
    path = write_lines(tmp_path, [export_lines[0], "{not json"])
    result = RUNNER.invoke(app, ["verify", str(path)], terminal_width=200)
    assert result.exit_code == 2
    assert "audit.jsonl:2" in result.output
    assert RUNNER.invoke(app, ["verify", str(tmp_path / "missing.jsonl")]).exit_code == 2


def test_report_writes_markdown_and_one_png_per_site(export_lines: list[str], tmp_path: Path) -> None:
    out = tmp_path / "rapport"
    result = RUNNER.invoke(app, ["report", str(write_lines(tmp_path, export_lines)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    markdown = (out / "report.md").read_text(encoding="utf-8")
    for site in ("france_travail", "apec"):
        png = out / f"budget_{site}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png.name})" in markdown
    assert "| france_travail | parcours | 2026 |" in markdown
    assert "intègre" in markdown


def test_verify_with_receipts_fails_on_a_cut_export(
    export_lines: list[str], broker_key, tmp_path: Path
) -> None:  # noqa: ANN001 - the session's broker key fixture
    """A node's receipt for the last event: the full export verifies with it, the cut one exits 1."""
    from audit_helpers import AuditEvent  # the chain's event model, re-exported by the helpers

    from trust_broker.audit.receipts import keep_receipt, sign_receipt

    last = AuditEvent.model_validate(
        {
            k: v
            for k, v in json.loads(export_lines[event_lines(export_lines, "budget.expired")[-1] - 1]).items()
            if k != "type"
        }
    )
    keep_receipt(
        tmp_path / "receipts" / "france_travail.jsonl", sign_receipt(broker_key, "broker", last, last)
    )
    full = write_lines(tmp_path, export_lines)
    ok = RUNNER.invoke(
        app, ["verify", str(full), "--receipts", str(tmp_path / "receipts")], terminal_width=200
    )
    assert ok.exit_code == 0, ok.output
    assert "1 node receipt(s) checked" in ok.output
    cut_at = event_lines(export_lines, "budget.released")[-1]
    kept = [line for number, line in enumerate(export_lines, start=1) if number < cut_at]
    cut = write_lines(tmp_path, kept, "cut.jsonl")
    result = RUNNER.invoke(
        app, ["verify", str(cut), "--receipts", str(tmp_path / "receipts")], terminal_width=200
    )
    assert result.exit_code == 1
    assert "receipt.missing_event" in result.output
