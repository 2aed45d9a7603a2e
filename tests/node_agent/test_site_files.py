"""A partner's files read by the node's file sources and checked by ``tasks.schema``: every bad input gives
a located, readable error without identifier values."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from node_agent.sources import load_file
from tasks import schema
from tasks.schema import SchemaErrors, validate_adult, validate_parcours

SITE = "france_travail"


def load_parcours(path: Path, site: str) -> pd.DataFrame:
    return load_file(path, site, validate_parcours)


def load_adult_site(path: Path, site: str) -> pd.DataFrame:
    return load_file(path, site, validate_adult)


def _person(i: int, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "record_id": f"FT-{i:04d}",
        "nir": "1 85 05 13 055 123 45",
        "ft_id": "1234567A",
        "last_name": "MARTIN",
        "first_name": "Julie",
        "email": "julie.martin@orange.fr",
        "phone": "06 12 34 56 78",
        "address": "12 rue Victor Hugo, 13001 Marseille",
        "birth_year": 1985,
        "sex": "F",
        "commune": "13055",
        "education_level": "bac+2",
        "rome_target": "M1805",
        "rome_previous": "",
        "months_unemployed": 7,
        "mobility_km": 20,
        "driving_licence": 1,
        "training_followed": 0,
        "registration_date": "2024-03-11",
        "employed_6m": 1,
        "months_to_employment": 3.5,
        "counselor_note": "Entretien avec Julie MARTIN, joignable au 06 12 34 56 78.",
    }
    row.update(changes)
    return row


def _write(tmp_path: Path, rows: list[dict[str, object]], name: str = "parcours.csv") -> Path:
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _errors(path: Path) -> SchemaErrors:
    with pytest.raises(SchemaErrors) as caught:
        load_parcours(path, SITE)
    return caught.value


def test_valid_file_loads_with_typed_columns(tmp_path: Path) -> None:
    rows = [_person(1), _person(2, employed_6m=0, months_to_employment="", rome_previous="M1805")]
    table = load_parcours(_write(tmp_path, rows), SITE)
    assert list(table.columns) == list(schema.PARCOURS_COLUMNS)
    assert table["birth_year"].dtype == "int64" and table["employed_6m"].tolist() == [1, 0]
    assert table["months_to_employment"].iloc[0] == 3.5 and math.isnan(table["months_to_employment"].iloc[1])
    assert table["rome_previous"].tolist() == ["", "M1805"]


def test_parquet_files_load_and_count_rows_from_one(tmp_path: Path) -> None:
    path = tmp_path / "parcours.parquet"
    frame = pd.DataFrame([_person(1), _person(2, birth_year=1990)])
    frame["months_to_employment"] = frame["months_to_employment"].astype(float)
    frame.to_parquet(path)
    assert load_parcours(path, SITE)["birth_year"].tolist() == [1985, 1990]
    frame.loc[1, "sex"] = "X"
    frame.to_parquet(path)
    assert _errors(path).problems[0].row == 2


def test_missing_column_names_the_expected_column_and_the_close_name_found(tmp_path: Path) -> None:
    frame = pd.DataFrame([_person(1)]).rename(columns={"birth_year": "birthyear"})
    path = tmp_path / "parcours.csv"
    frame.to_csv(path, index=False)
    error = _errors(path)
    rules = {(p.rule, p.field) for p in error.problems}
    assert ("missing_column", "birth_year") in rules and ("unknown_column", "birthyear") in rules
    missing = next(p for p in error.problems if p.rule == "missing_column")
    assert "'birthyear'" in str(missing) and missing.row is None
    unknown = next(p for p in error.problems if p.rule == "unknown_column")
    assert "did you mean 'birth_year'" in str(unknown)


def test_missing_column_without_a_close_name_is_reported_alone(tmp_path: Path) -> None:
    frame = pd.DataFrame([_person(1)]).drop(columns=["mobility_km"])
    path = tmp_path / "parcours.csv"
    frame.to_csv(path, index=False)
    error = _errors(path)
    assert [(p.rule, p.field) for p in error.problems] == [("missing_column", "mobility_km")]
    assert "close names" not in str(error)


def test_unknown_extra_column_is_an_error(tmp_path: Path) -> None:
    error = _errors(_write(tmp_path, [_person(1, salary=2100)]))
    assert [(p.rule, p.field) for p in error.problems] == [("unknown_column", "salary")]


def test_wrong_type_names_file_row_and_field(tmp_path: Path) -> None:
    rows = [_person(1), _person(2), _person(3, birth_year="abc")]
    error = _errors(_write(tmp_path, rows))
    assert len(error.problems) == 1
    problem = error.problems[0]
    assert (problem.row, problem.field, problem.rule) == (4, "birth_year", "type")  # header is row 1
    assert str(problem) == "france_travail/parcours.csv, line 4, field 'birth_year': 'abc' is not an integer"


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("birth_year", 1930, "range"),
        ("months_unemployed", -2, "range"),
        ("driving_licence", 2, "range"),
        ("sex", "X", "allowed_values"),
        ("education_level", "master", "allowed_values"),
        ("rome_target", "Z9999", "format"),
        ("rome_target", "M9999", "known_code"),
        ("commune", "75056", "known_code"),
        ("registration_date", "2024-02-30", "type"),
        ("months_to_employment", 30, "range"),
    ],
)
def test_out_of_range_or_unknown_values_are_rejected_with_their_rule(
    tmp_path: Path, field: str, value: object, rule: str
) -> None:
    error = _errors(_write(tmp_path, [_person(1), _person(2, **{field: value})]))
    assert [(p.row, p.field, p.rule) for p in error.problems] == [(3, field, rule)]
    assert str(value) in str(error)  # not an identifier: the value helps the data steward


def test_label_and_months_to_employment_must_agree(tmp_path: Path) -> None:
    error = _errors(_write(tmp_path, [_person(1, employed_6m=0, months_to_employment=2.0)]))
    assert [p.rule for p in error.problems] == ["outcome_consistency"]


def test_required_field_left_empty_is_reported(tmp_path: Path) -> None:
    error = _errors(_write(tmp_path, [_person(1, sex="")]))
    assert [(p.row, p.field, p.rule) for p in error.problems] == [(2, "sex", "required")]


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "parcours.csv"
    path.write_text("")
    error = _errors(path)
    assert [p.rule for p in error.problems] == ["empty_file"]
    assert "france_travail/parcours.csv" in str(error)


def test_header_without_rows_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "parcours.csv"
    path.write_text(",".join(schema.PARCOURS_COLUMNS) + "\n")
    assert [p.rule for p in _errors(path).problems] == ["no_rows"]


def test_missing_file_and_unknown_format_are_clear_errors(tmp_path: Path) -> None:
    assert [p.rule for p in _errors(tmp_path / "absent.csv").problems] == ["missing_file"]
    other = tmp_path / "parcours.xlsx"
    other.write_bytes(b"PK")
    assert [p.rule for p in _errors(other).problems] == ["format"]


def test_identifier_values_never_appear_in_error_messages(tmp_path: Path) -> None:
    secrets = {
        "nir": "NIRSECRET000042",
        "ft_id": "FTSECRETX",
        "email": "secret.person-at-nowhere",
        "phone": "SECRETPHONE",
        "address": "Secret Street without postcode",
    }
    rows = [_person(1, **secrets), _person(1, last_name="", first_name="")]  # duplicate record_id too
    error = _errors(_write(tmp_path, rows))
    flagged = {(p.row, p.field) for p in error.problems}
    assert {(2, name) for name in secrets} <= flagged
    assert {(3, "record_id"), (3, "last_name"), (3, "first_name")} <= flagged
    text = str(error)
    for value in [*secrets.values(), "FT-0001"]:
        assert value not in text


def test_problems_are_collected_together_and_capped(tmp_path: Path) -> None:
    rows = [_person(i, sex="X") for i in range(50)]
    error = _errors(_write(tmp_path, rows))
    assert len(error.problems) == schema.MAX_PROBLEMS
    assert [p.row for p in error.problems] == list(range(2, 2 + schema.MAX_PROBLEMS))
    assert error.more == 50 - schema.MAX_PROBLEMS
    assert f"and {50 - schema.MAX_PROBLEMS} more problem(s)" in str(error)


def test_semicolon_file_with_decimal_commas_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "parcours.csv"
    pd.DataFrame([_person(1, months_to_employment="3,5")]).to_csv(path, index=False, sep=";")
    assert load_parcours(path, SITE)["months_to_employment"].iloc[0] == 3.5


def test_adult_site_file_is_validated_with_the_same_error_style(tmp_path: Path) -> None:
    row = {
        "age": 39,
        "workclass": "State-gov",
        "fnlwgt": 77516,
        "education": "Bachelors",
        "education_num": 13,
        "marital_status": "Never-married",
        "occupation": "Adm-clerical",
        "relationship": "Not-in-family",
        "race": "White",
        "sex": "Male",
        "capital_gain": 2174,
        "capital_loss": 0,
        "hours_per_week": 40,
        "native_country": "United-States",
        "income": "<=50K",
    }
    assert list(row) == list(schema.ADULT_COLUMNS)
    path = tmp_path / "adult.csv"
    pd.DataFrame([row, {**row, "workclass": ""}]).to_csv(path, index=False)
    assert load_adult_site(path, "site_1")["workclass"].tolist() == ["State-gov", ""]
    pd.DataFrame([row, {**row, "income": ">50K."}]).to_csv(path, index=False)
    with pytest.raises(SchemaErrors) as caught:
        load_adult_site(path, "site_1")
    assert str(caught.value.problems[0]).startswith("site_1/adult.csv, line 3, field 'income': '>50K.'")


def test_rows_are_the_files_line_numbers_also_after_a_note_on_several_lines(tmp_path: Path) -> None:
    """Issue 12: one numbering, the line an editor shows — a quoted note over 3 lines pushes the rest."""
    rows = [_person(1, counselor_note="Entretien.\nSuite.\nFin."), _person(2), _person(3, sex="X")]
    path = _write(tmp_path, rows)
    assert path.read_text(encoding="utf-8").splitlines()[5].startswith("FT-0003")  # line 6 of the file
    problem = _errors(path).problems[0]
    assert (problem.row, problem.unit) == (6, "line")
    assert str(problem).startswith("france_travail/parcours.csv, line 6, field 'sex'")


def test_the_public_form_of_a_problem_holds_no_cell_value(tmp_path: Path) -> None:
    """What leaves the node says where and which rule, never the value ('1890' reached the Region)."""
    error = _errors(_write(tmp_path, [_person(1), _person(2, birth_year=1890)]))
    assert "1890" in str(error)  # the partner's own log shows it
    public = error.public()
    assert "1890" not in public
    assert "line 3" in public and "birth_year" in public and "rule range" in public
