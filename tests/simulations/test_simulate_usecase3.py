"""`r2dde simulate --scenario usecase3`: governed DP statistics end to end, as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.timeout(420)
OBJECTORS = 30


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("uc3") / "run"
    command = [str(Path(sys.executable).with_name("r2dde")), "simulate", "--scenario", "usecase3"]
    command += ["--sites", "2", "--epsilon", "1", "--people", "3000", "--opt-outs", str(OBJECTORS)]
    result = subprocess.run(
        [*command, "--out", str(out)], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}
    )
    return out, result.returncode, result.stdout + result.stderr


def test_the_report_has_cells_with_intervals_epsilon_per_site_and_a_verified_audit(run):
    out, returncode, output = run
    assert returncode == 0, output
    report = json.loads((out / "report.json").read_text())
    assert report["audit"]["verified"] is True and report["audit"]["problems"] == []
    for site in ("carif_oref", "france_travail"):
        assert 0.9 < report["sites"][site]["epsilon"] <= 1.0
    measures = {c["measure"] for c in report["cells"]}
    assert {"effectif", "taux_emploi_6m", "taux_attendu", "valeur_ajoutee"} <= measures
    released = [c for c in report["cells"] if not c["suppressed"]]
    assert released and any(c["suppressed"] for c in report["cells"])
    for cell in released:
        assert set(cell) >= {"group", "measure", "value", "ci_low", "ci_high", "suppressed"}
        assert cell["ci_low"] <= cell["value"] <= cell["ci_high"]
    for cell in report["cells"]:
        if cell["suppressed"]:
            assert cell["value"] is None
    assert (out / "valeur_ajoutee_par_domaine.png").stat().st_size > 0
    assert "Valeur ajoutée" in (out / "report.md").read_text()
    assert (out / "data" / "ground_truth.json").exists()


def test_no_nir_reaches_any_output_and_opt_outs_reached_the_registry(run):
    out, _, output = run
    nirs = set()
    for site_file in (out / "data").glob("*/formations.csv"):
        nirs |= set(pd.read_csv(site_file, dtype=str)["nir"])
    texts = "\n".join(p.read_text() for p in (out / "report.json", out / "report.md", out / "audit.jsonl"))
    assert not [n for n in nirs if n in texts + output]
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines() if line.strip()]
    kinds = json.dumps(audit)
    assert kinds.count('"gaussian"') >= 2 * 4  # every release of both sites reserved and committed
