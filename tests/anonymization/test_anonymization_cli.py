"""`r2dde anonymize table|text` through typer's CliRunner."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from parcours_factory import make_parcours
from typer.testing import CliRunner

from anonymization.keys import KEY_ENV_VAR, KEY_FILE_ENV_VAR
from node_agent.anonymize_cli import app

CONFIG = Path(__file__).resolve().parents[2] / "anonymization" / "configs" / "parcours.yaml"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV_VAR, raising=False)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "linkage.key"
    path.write_text(os.urandom(32).hex())
    path.chmod(0o600)
    return path


def test_table_command_writes_the_table_and_its_report(
    tmp_path: Path, key_file: Path, scrubber, monkeypatch
) -> None:
    monkeypatch.setattr("anonymization.table.default_scrubber", lambda: scrubber)
    raw = make_parcours(12, seed=3)
    source, target = tmp_path / "parcours.csv", tmp_path / "out" / "parcours.parquet"
    raw.to_csv(source, index=False)
    result = runner.invoke(
        app,
        [
            "table",
            str(source),
            str(target),
            "--config",
            str(CONFIG),
            "--key-file",
            str(key_file),
            "--study",
            "s1",
        ],
    )
    assert result.exit_code == 0, result.output
    out = pd.read_parquet(target)
    assert len(out) == 12 and "nir" not in out.columns and out["study_pseudonym"].str.startswith("s1.").all()
    report = json.loads((target.parent / "parcours.parquet.report.json").read_text())
    assert report["records_out"] == 12 and report["identifiers"]["nir"]["pseudonymized"] == 12
    assert raw.loc[0, "last_name"] not in result.output


def test_table_command_refuses_a_world_readable_key(tmp_path: Path, key_file: Path) -> None:
    key_file.chmod(0o644)
    source = tmp_path / "p.csv"
    make_parcours(2).to_csv(source, index=False)
    result = runner.invoke(
        app,
        ["table", str(source), str(tmp_path / "o.csv"), "--config", str(CONFIG), "--key-file", str(key_file)],
    )
    assert result.exit_code == 2 and f"chmod 600 {key_file}" in result.output


def test_table_command_names_an_unknown_config_column(tmp_path: Path, key_file: Path) -> None:
    config = tmp_path / "c.yaml"
    text = CONFIG.read_text().replace(
        "  counselor_note: scrub\n", "  counselor_note: scrub\n  salaire: keep\n"
    )
    config.write_text(text, encoding="utf-8")
    source = tmp_path / "p.csv"
    make_parcours(2).to_csv(source, index=False)
    result = runner.invoke(
        app,
        ["table", str(source), str(tmp_path / "o.csv"), "--config", str(config), "--key-file", str(key_file)],
    )
    assert result.exit_code == 2 and "salaire" in result.output and str(config) in result.output


def test_text_command_writes_one_scrubbed_line_per_input_line(monkeypatch, scrubber) -> None:
    monkeypatch.setattr("anonymization.scrubber.FrenchScrubber", lambda **_: scrubber)
    lines = ["Mme Julie MARTIN au 06 12 34 56 78.", "", "Rien.", "Écrire à a.b@orange.fr"]
    result = runner.invoke(app, ["text"], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    out = result.stdout.split("\n")[:-1]
    assert len(out) == 4 and out[1] == "" and out[2] == "Rien."
    assert "MARTIN" not in result.stdout and "06 12" not in result.stdout and "orange" not in result.stdout


def test_text_command_rejects_non_utf8_input_naming_the_line(monkeypatch, scrubber) -> None:
    monkeypatch.setattr("anonymization.scrubber.FrenchScrubber", lambda **_: scrubber)
    result = runner.invoke(app, ["text"], input=b"ok\n\xe9t\xe9 latin-1\n")
    assert result.exit_code == 2
    assert "line 2" in result.stderr and "UTF-8" in result.stderr


def test_table_command_names_the_line_of_non_utf8_bytes(tmp_path: Path, key_file: Path) -> None:
    source = tmp_path / "p.csv"
    make_parcours(3).to_csv(source, index=False)
    data = source.read_bytes().replace(b"Entretien", "Entr\xe9tien".encode("latin-1"), 2)
    source.write_bytes(data)
    result = runner.invoke(
        app,
        ["table", str(source), str(tmp_path / "o.csv"), "--config", str(CONFIG), "--key-file", str(key_file)],
    )
    assert result.exit_code == 2 and f"{source}: line 2 is not UTF-8" in result.output


def test_table_command_applies_the_nodes_row_rule_and_numbers_lines_as_the_node(
    tmp_path: Path, key_file: Path
) -> None:
    """Issue 12: a birth year 1890 was '1 unknown' here while the node refused the site for it."""
    raw = make_parcours(4, seed=3)
    raw["birth_year"] = raw["birth_year"].astype(str)
    raw.loc[2, "birth_year"] = "1890"
    source = tmp_path / "parcours.csv"
    raw.to_csv(source, index=False)
    result = runner.invoke(
        app,
        ["table", str(source), str(tmp_path / "o.csv"), "--config", str(CONFIG), "--key-file", str(key_file)],
    )
    assert result.exit_code == 2, result.output
    assert "line 4, field 'birth_year'" in result.output  # header line 1, third record on line 4
    assert "Traceback" not in result.output and not (tmp_path / "o.csv").exists()


def test_the_report_lists_file_line_numbers(tmp_path: Path, key_file: Path, scrubber, monkeypatch) -> None:
    monkeypatch.setattr("anonymization.table.default_scrubber", lambda: scrubber)
    raw = make_parcours(4, seed=3)
    raw.loc[1, "nir"] = ""  # dropped: no linkage identifier (the schema requires one; a generic table)
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG.read_text().replace("dataset: parcours", "dataset: partner_export"))
    source = tmp_path / "p.csv"
    raw.to_csv(source, index=False)
    result = runner.invoke(
        app,
        ["table", str(source), str(tmp_path / "o.csv"), "--config", str(config), "--key-file", str(key_file)],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "o.csv.report.json").read_text())
    dropped = [entry for entry in report["dropped_records"].values() if entry["count"]]
    assert dropped[0]["rows"] == [3]  # the second record is on line 3 of the file
