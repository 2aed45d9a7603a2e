"""The fairness gate on release, tested as the adversary: a model that takes a protected input, a
model whose gaps exceed the purpose's thresholds, a report that hides its gaps — each must keep the
service from starting, with a French message naming the rule."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from autodiag_fixtures import passing_fairness, write_study
from scipy.stats import binomtest
from typer.testing import CliRunner

from autodiag.diagnosis import calibrated, median_delay
from autodiag.gate import check_release
from autodiag.release import release_markdown, study_section
from autodiag.service import ServiceRefused, open_study
from autodiag.study import Calibration, read_estimate, read_report
from policies import load_purposes
from r2dde.cli import app as r2dde_app

PURPOSE = load_purposes()["autodiagnostic_mobilite"]


def test_the_purpose_forbids_protected_inputs_and_sets_thresholds():
    assert PURPOSE.fairness is not None
    assert set(PURPOSE.fairness.protected_attributes) == {"sex", "age_band"}
    assert PURPOSE.fairness.protected_inputs_reason == ""


def test_a_passing_study_opens(study_dir):
    opened = open_study(study_dir)
    assert opened.gate.passed and not opened.gate.failures


def test_a_model_with_sex_as_input_is_refused(tmp_path):
    features = ["sex=F", "sex=M", "sex=other", "tension"]
    folder = write_study(tmp_path / "s", features=features)
    with pytest.raises(ServiceRefused, match=r"fairness.protected_input.*le sexe en entrée"):
        open_study(folder)


def test_gaps_above_the_thresholds_are_refused_with_the_numbers(tmp_path):
    fairness = passing_fairness()
    fairness["age_band"]["demographic_parity_gap"] = 0.36  # above the age limit
    folder = write_study(tmp_path / "s", fairness=fairness)
    with pytest.raises(ServiceRefused) as refused:
        open_study(folder)
    message = str(refused.value)
    assert "[fairness.demographic_parity_gap]" in message and "0,360 > seuil 0,30" in message
    assert "tranche d'âge" in message


def test_unmeasured_gaps_are_refused(tmp_path):
    fairness = passing_fairness()
    del fairness["age_band"]
    fairness["sex"]["equal_opportunity_gap"] = None  # e.g. a group suppressed as too small
    report = read_report(write_study(tmp_path / "s", fairness=fairness))
    failed = {(c.rule, c.attribute) for c in check_release(report, PURPOSE).failures}
    assert ("fairness.equal_opportunity_gap", "sex") in failed
    assert ("fairness.demographic_parity_gap", "age_band") in failed


def test_noisy_releases_are_read_with_their_interval(tmp_path):
    fairness = passing_fairness()
    fairness["sex"]["demographic_parity_gap"] = {"value": 0.04, "noise_std": 0.01}
    fairness["age_band"]["equal_opportunity_gap"] = {"estimate": 0.31, "low": 0.25, "high": 0.37}
    report = read_report(write_study(tmp_path / "s", fairness=fairness))
    sex_dp = report.fairness["sex"].demographic_parity_gap
    assert sex_dp.value == 0.04 and sex_dp.low == pytest.approx(0.04 - 1.959964 * 0.01)
    failures = check_release(report, PURPOSE).failures
    assert [c.rule for c in failures] == ["fairness.equal_opportunity_gap"]
    assert "IC 95 %" in failures[0].message


@pytest.mark.parametrize("raw", [None, "0.1", True, {"value": "x"}, [0.1]])
def test_unreadable_numbers_are_unknown_not_errors(raw):
    assert not read_estimate(raw).known


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": False}, "ne contient pas de modèle publié"),
        ({"status": "aborted"}, "n'est pas terminée"),
    ],
)
def test_a_folder_without_a_released_model_is_refused_in_french(tmp_path, change, message):
    with pytest.raises(ServiceRefused, match=message):
        open_study(write_study(tmp_path / "s", **change))


def test_cli_refuses_to_start_with_a_french_message_and_exit_2(tmp_path):
    fairness = passing_fairness()
    fairness["sex"]["equal_opportunity_gap"] = 0.5
    folder = write_study(tmp_path / "s", fairness=fairness)
    result = CliRunner().invoke(r2dde_app, ["autodiag", "serve", "--study", str(folder), "--port", "9"])
    assert result.exit_code == 2
    assert "porte d'équité" in result.output and "Traceback" not in result.output
    missing = CliRunner().invoke(r2dde_app, ["autodiag", "serve", "--study", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "n'existe pas" in missing.output


def test_a_corrupt_report_is_refused_in_french(tmp_path):
    folder = write_study(tmp_path / "s")
    (folder / "report.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ServiceRefused, match="illisible"):
        open_study(folder)


def test_the_study_report_says_whether_the_gate_passed(study_dir):
    report = json.loads((study_dir / "report.json").read_text(encoding="utf-8"))
    histograms = {1: {"a": ([1, 2], [3, 4]), "b": ([0, 1], [1, 0])}}
    section = study_section(report, histograms)
    assert section["calibration"] == {"positive": [1.0, 3.0], "negative": [4.0, 4.0]}
    assert section["fairness_gate"]["passed"] is True
    lines = "\n".join(release_markdown({**report, "release": section}))
    assert "Porte d'équité" in lines and "**passée**" in lines


def test_calibration_interval_matches_scipys_wilson_interval():
    positive, negative = [0] * 10, [0] * 10
    positive[5], negative[5] = 40, 30  # 70 people scored in [0.5, 0.6)
    chance = calibrated(0.55, Calibration(tuple(positive), tuple(negative)))
    reference = binomtest(40, 70).proportion_ci(confidence_level=0.95, method="wilson")
    assert chance.people == 70 and chance.observed == pytest.approx(40 / 70)
    assert (chance.low, chance.high) == pytest.approx((reference.low, reference.high), abs=1e-4)


def test_the_delay_is_consistent_with_the_chance_at_six_months():
    for p in np.linspace(0.05, 0.95, 10):
        median = median_delay(p)
        # constant hazard: P(job within 6 months) = 1 - 2^(-6 / median)
        assert 1 - math.pow(2, -6 / median) == pytest.approx(p)


def test_the_use_case_model_takes_no_protected_input_but_still_measures_them():
    from tasks.registry import get_task

    spec = get_task("employment_outcome")
    names = spec.encoder().feature_names
    assert not [n for n in names if n.split("=")[0] in PURPOSE.fairness.protected_attributes]
    assert {"sex", "age_band"} <= set(spec.default_fields())  # requested: the nodes measure gaps on them


def test_an_unexpected_histogram_shape_gives_no_calibration_not_a_crash(study_dir):
    report = json.loads((study_dir / "report.json").read_text(encoding="utf-8"))
    section = study_section(report, {3: {"a": {"positive": [1], "negative": [2]}}})
    assert "calibration" not in section and section["fairness_gate"]["passed"] is True
