"""`r2dde simulate --scenario usecase2`: granted, budgeted, audited, and no SIRET in any output."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.timeout(420)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The real command in its own process (Ray and the broker start and stop there)."""
    out = tmp_path_factory.mktemp("usecase2") / "run"
    command = [str(Path(sys.executable).with_name("r2dde")), "simulate", "--scenario", "usecase2"]
    command += ["--sites", "3", "--rounds", "2", "--epsilon", "1", "--companies", "6000", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    return out, result.returncode, result.stdout + result.stderr


def test_the_company_study_completes_within_budget_and_verifies(study):
    out, returncode, output = study
    assert returncode == 0, output
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "completed" and report["audit"]["verified"] is True
    assert set(report["sites"]) == {"france_travail", "carif_oref", "apec"}
    for site in report["sites"].values():
        assert site["status"] == "completed" and site["releases"] == 2 + 3
        assert 0 < site["epsilon"] <= 1.0 + 1e-9
    assert report["clusters"] and all(c["noisy_size"] >= 11 for c in report["clusters"])
    assert all(c["profile_fr"].startswith("Environ") for c in report["clusters"])
    quality = report["quality"]
    assert quality["cost_ratio"] < 1.4 and quality["ari_local_labels_vs_true_types"] > 0.4
    assert 0 < report["prediction"]["precision_at_3"] < 1
    assert (out / "types.png").is_file() and "Typologie" in (out / "report.md").read_text()
    assert "zone_emploi" not in report["grant"]["fields"]  # the clustering asks for no geography


def test_bad_rows_are_reported_with_file_line_and_field(study):
    out, _, _ = study
    report = json.loads((out / "report.json").read_text())
    bad = report["bad_input"]["france_travail"]
    assert bad["rows_left_out"] == 3
    assert set(bad["by_rule"]) == {
        "company.naf_unknown",
        "company.size_out_of_range",
        "company.count_negative",
    }
    assert all(line.startswith("france_travail/entreprises.csv:") for line in bad["examples"])


def test_no_siret_reaches_any_output(study):
    out, _, output = study
    sirets = set()
    for site_file in (out / "data").glob("*/entreprises.csv"):
        sirets |= set(pd.read_csv(site_file, dtype=str)["siret"])
    outputs = [out / "report.json", out / "report.md", out / "audit.jsonl", out / "simulation-nodes.json"]
    joined = "\n".join([p.read_text(encoding="utf-8") for p in outputs] + [output])
    broker = (out / "broker.db").read_bytes()
    assert not [s for s in sirets if s in joined or s.encode() in broker]
    labels = list((out / "data").glob("*/node-reports/*.company_types.csv"))
    assert len(labels) == 3  # the local labelling stays in each holder's own folder
