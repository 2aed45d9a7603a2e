"""A small multi-site study on Flower's simulation engine, healthy and with broken sites."""

import json
import math
import subprocess

import pandas as pd
import pytest

from coordinator.study_config import StudyConfig
from simulations.adult import write_adult_sites
from simulations.engine import run_simulated_study, site_nodes

pytestmark = pytest.mark.timeout(300)


def _ray_processes() -> int:
    found = subprocess.run(["pgrep", "-f", "raylet|gcs_server"], capture_output=True, text=True)
    return len(found.stdout.split())


def _config(tmp_path, sites, **overrides) -> StudyConfig:
    values = dict(
        study_id="test-study",
        task="adult_income",
        sites=tuple(sites),
        num_server_rounds=2,
        min_sites=2,
        target_epsilon=3.0,
        local_epochs=1,
        batch_size=512,
        learning_rate=0.01,
        study_dir=tmp_path / "study",
    )
    values.update(overrides)
    return StudyConfig(**values)


def test_study_beats_chance_keeps_each_site_within_epsilon_and_goes_on_without_a_missing_site(tmp_path):
    paths = write_adult_sites(tmp_path / "data", 4, seed=5)
    paths["site_4"].unlink()
    config = _config(tmp_path, paths)
    report = run_simulated_study(config, site_nodes(tmp_path / "data", list(paths)))

    assert report["status"] == "completed" and report["rounds"] == 2
    assert report["metrics"]["auc"] > 0.7  # chance is 0.5; noisy pooled AUC (label-skewed holdouts)
    trained = {s: v for s, v in report["sites"].items() if v["status"] == "trained"}
    assert set(trained) == {"site_1", "site_2", "site_3"}
    for site in trained.values():
        assert 0 < site["epsilon"] <= config.target_epsilon
        assert site["delta"] <= 1 / (10 * site["examples"])
    missing = report["sites"]["site_4"]
    assert missing["status"] == "data error"  # the site's own file, not a policy refusal
    assert "data.schema" in missing["data_errors"][0] and "file not found" in missing["data_errors"][0]
    on_disk = json.loads((config.study_dir / "report.json").read_text())
    assert on_disk["sites"]["site_4"]["status"] == "data error"
    assert (config.study_dir / "model.pt").exists() and "site_4" in (
        config.study_dir / "report.md"
    ).read_text()
    assert _ray_processes() == 0


def test_study_stops_cleanly_when_too_few_sites_remain_and_says_why(tmp_path):
    paths = write_adult_sites(tmp_path / "data", 2, seed=5)
    broken = pd.read_csv(paths["site_1"], dtype=str, keep_default_na=False)
    broken.loc[6, "age"] = "forty"
    broken.to_csv(paths["site_1"], index=False)
    tiny = pd.read_csv(paths["site_2"], dtype=str, keep_default_na=False).head(60)
    tiny.to_csv(paths["site_2"], index=False)
    config = _config(tmp_path, paths, min_sites=1)
    report = run_simulated_study(config, site_nodes(tmp_path / "data", list(paths)))

    assert report["status"] == "aborted" and "0 site(s) trained" in report["reason"]
    malformed = report["sites"]["site_1"]["data_errors"][0]
    assert "line 8" in malformed and "'age'" in malformed and "rule type" in malformed
    assert "forty" not in malformed  # the cell's value stays in the node's log
    assert "dp.plan" in report["sites"]["site_2"]["declined"][0]
    assert not (config.study_dir / "model.pt").exists()
    assert all(not math.isnan(v["epsilon"]) and v["epsilon"] == 0 for v in report["sites"].values())
    assert _ray_processes() == 0
