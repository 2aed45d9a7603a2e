"""Every study type's report.json is strict JSON: no NaN, no infinity, no numpy scalar."""

import json
import math

import numpy as np
import pytest

from coordinator.study_folder import json_safe, number, read_report, rows, section, write_report


def test_non_finite_numbers_and_numpy_scalars_become_strict_json(tmp_path):
    report = {
        "auc": float("nan"),
        "epsilon": {"apec": math.inf, "france_travail": np.float64(1.25)},
        "count": np.int64(12),
        "interval": (np.float32(-np.inf), 0.5),
        3: "an int key",
    }
    write_report(tmp_path, report, "# rapport\n")
    text = (tmp_path / "report.json").read_text(encoding="utf-8")
    parsed = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} written to report.json"))
    assert parsed == {
        "auc": None,
        "epsilon": {"apec": None, "france_travail": 1.25},
        "count": 12,
        "interval": [None, 0.5],
        "3": "an int key",
    }
    assert (tmp_path / "report.md").read_text(encoding="utf-8") == "# rapport\n"
    assert read_report(tmp_path) == parsed


def test_json_safe_leaves_plain_values_alone():
    value = {"a": [1, 2.5, "x", None, True]}
    assert json_safe(value) == value


def test_a_report_that_is_not_an_object_is_refused_naming_the_file(tmp_path):
    (tmp_path / "report.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="report.json"):
        read_report(tmp_path)


def test_readers_of_report_sections_read_malformed_parts_as_empty():
    assert section({"k": 1}) == {"k": 1}
    assert section(None) == {} and section([1]) == {}
    assert rows([1, 2]) == [1, 2] and rows((1,)) == [1]
    assert rows(None) == [] and rows({"a": 1}) == []
    assert number(2) == 2.0
    assert math.isnan(number(None)) and math.isnan(number("3")) and math.isnan(number(True))
