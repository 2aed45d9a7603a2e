from __future__ import annotations

import csv

import pandas as pd
import pytest

from anonymization.errors import ConfigError
from anonymization.generalization import build_generalizer
from anonymization.kanonymity import (
    GroupRare,
    ReplaceBy,
    SuppressColumn,
    enforce_k_anonymity,
    k_anonymity_report,
)
from anonymization.reference import reference_data_dir


def test_birth_years_become_contract_age_bands() -> None:
    result = build_generalizer("birth_year", "age_band", {}).apply(
        pd.Series(["2000", "1999", "1990", "1980", "1970", "1969", "1940", "2010", "", "abc", "1985-06-01"])
    )
    assert list(result.columns["age_band"][:8]) == [
        "16-25",
        "26-35",
        "26-35",
        "36-45",
        "46-55",
        "56+",
        "56+",
        "16-25",
    ]
    assert result.columns["age_band"][10] == "36-45"
    assert result.empty_positions == [8] and result.unknown_positions == [9]
    assert result.details["below_first_band"] == 1


def test_communes_map_to_their_insee_employment_zone_and_departement() -> None:
    with (reference_data_dir() / "geo" / "insee_ze2020_communes_paca.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[::97]
    codes = pd.Series([r["codgeo"] for r in rows] + ["99999", "6088"])
    result = build_generalizer("commune", "commune_to_zone", {}).apply(codes)
    assert list(result.columns["zone_emploi"][: len(rows)]) == [r["ze2020"] for r in rows]
    assert list(result.columns["departement"][: len(rows)]) == [r["dep"] for r in rows]
    assert result.columns["departement"].iloc[-1] == "06"  # Nice written without its leading zero
    assert result.unknown_positions == [len(rows)]


def test_dates_become_months_and_non_dates_are_counted() -> None:
    result = build_generalizer("registration_date", "month", {"output": "registration_month"}).apply(
        pd.Series(["2024-03-15", "2023-12-01", "15/03/2024", None])
    )
    assert list(result.columns["registration_month"][:2]) == ["2024-03", "2023-12"]
    assert result.unknown_positions == [2] and result.empty_positions == [3]


def test_rare_categories_are_grouped() -> None:
    values = pd.Series(["a"] * 12 + ["b"] * 3 + ["c"])
    result = build_generalizer("x", "group_rare", {"min_count": 5}).apply(values)
    assert list(result.columns["x"]) == ["a"] * 12 + ["autre"] * 4
    assert result.details["categories_grouped"] == 2


def test_unknown_generalization_or_option_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown generalization"):
        build_generalizer("x", "blur", {})
    with pytest.raises(ConfigError, match="unknown option"):
        build_generalizer("x", "age_band", {"colour": "red"})


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age_band": ["16-25"] * 8 + ["26-35"] * 4 + ["56+"],
            "zone": ["9312"] * 6 + ["9307"] * 2 + ["9312"] * 4 + ["9307"],
            "dep": ["13"] * 6 + ["04"] * 2 + ["13"] * 4 + ["04"],
            "y": list("0101010101010"),
        }
    )


def test_k_anonymity_report_measures_smallest_class_and_l_diversity() -> None:
    report = k_anonymity_report(frame(), ["age_band", "zone"], k=3, sensitive=["y"])
    assert (report.k_achieved, report.classes, report.classes_below_k, report.records_below_k) == (1, 4, 2, 3)
    assert report.l_diversity == {"y": 1}
    assert "k=1" in report.to_dict()["summary"]


def test_enforcement_generalizes_then_suppresses_to_reach_k() -> None:
    steps = [ReplaceBy("zone", "dep"), SuppressColumn("zone"), GroupRare("age_band", 5)]
    out, report, suppressed = enforce_k_anonymity(
        frame(), ["age_band", "zone"], 3, steps, max_suppression=0.1
    )
    assert report.k_achieved >= 3
    assert report.steps_applied == ["replace zone by dep", "suppress_column zone"]
    assert suppressed == [12] and len(out) == 12
    assert k_anonymity_report(out, ["age_band", "zone"], 3).k_achieved >= 3


def test_enforcement_reaches_the_target_even_when_the_steps_run_out_and_says_so() -> None:
    out, report, suppressed = enforce_k_anonymity(frame(), ["age_band", "zone"], 4, [], max_suppression=0.05)
    assert report.target_reached and k_anonymity_report(out, ["age_band", "zone"], 4).k_achieved >= 4
    assert report.suppression_exceeded and report.suppressed_records == len(suppressed) > 0
    assert "more than the 5% allowed" in report.summary and "target reached" in report.summary
