"""The coordinator's study settings come from Flower's run config and say which key is wrong."""

from pathlib import Path

import pytest

from coordinator.study_config import StudyConfig, StudyConfigError


def test_run_config_round_trip():
    config = StudyConfig(
        study_id="s",
        task="adult_income",
        sites=("a", "b"),
        fields=("age", "income"),
        study_dir=Path("runs/x"),
    )
    assert StudyConfig.from_run_config(config.to_run_config()) == config


def test_missing_study_id_is_named():
    with pytest.raises(StudyConfigError, match="study-id"):
        StudyConfig.from_run_config({"task": "adult_income", "sites": "a,b"})


def test_wrong_type_is_named():
    with pytest.raises(StudyConfigError, match="num-server-rounds"):
        StudyConfig.from_run_config(
            {"study-id": "s", "task": "t", "sites": "a,b", "num-server-rounds": "many"}
        )


def test_min_sites_cannot_exceed_the_sites_listed():
    with pytest.raises(StudyConfigError, match="min-sites"):
        StudyConfig.from_run_config({"study-id": "s", "task": "t", "sites": "a,b", "min-sites": 3})


def test_the_coordinator_does_not_start_a_personal_data_study_without_a_grant(tmp_path):
    from coordinator.server_app import run_study

    config = StudyConfig(study_id="s", task="employment_outcome", sites=("a", "b"), study_dir=tmp_path)
    with pytest.raises(StudyConfigError, match="grant"):
        run_study(grid=None, config=config)  # refused before any message could be sent
    assert not (tmp_path / "report.json").exists()
