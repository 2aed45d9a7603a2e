"""The node agent's path: raw parcours → analysis view, nothing identifying left, everything counted."""

from __future__ import annotations

import contextlib
import json
import logging
import random

import pandas as pd
import pii_factory as f
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parcours_factory import make_parcours

from anonymization.config import parse_config
from anonymization.errors import ConfigError
from anonymization.identifiers import get_identifier_type
from anonymization.parcours import anonymize_parcours, parcours_config
from anonymization.table import anonymize_table

ANALYSIS_VIEW = [
    "linkage_pseudonym",
    "study_pseudonym",
    "age_band",
    "sex",
    "zone_emploi",
    "departement",
    "education_level",
    "rome_target",
    "rome_previous",
    "months_unemployed",
    "mobility_km",
    "driving_licence",
    "training_followed",
    "registration_month",
    "employed_6m",
    "months_to_employment",
    "counselor_note",
]
IDENTIFYING = ["nir", "ft_id", "last_name", "first_name", "email", "phone", "address", "record_id"]


def identifying_strings(raw: pd.DataFrame) -> set[str]:
    """Every raw identifier as written, compact, and normalized; and every name."""
    values: set[str] = set()
    for column in IDENTIFYING:
        for value in raw[column]:
            if value:
                values.update({value, value.replace(" ", "").replace(".", "").replace("-", "")})
    for column in ("nir", "phone", "email"):
        for value in raw[column]:
            with contextlib.suppress(ValueError):
                values.add(get_identifier_type(column).normalize(value))
    return {v for v in values if len(v) >= 4}


@pytest.fixture(scope="module")
def anonymized(linkage_key, scrubber):
    raw = make_parcours(40, seed=11)
    rng = random.Random(1)
    raw.loc[3, "nir"] = f.wrong_key_nir(rng)
    raw.loc[7, "nir"] = ""
    raw.loc[9, "email"] = "pas-un-email"
    raw.loc[12, "commune"] = "99999"
    return raw, *anonymize_parcours(
        raw,
        source="france_travail/parcours.csv",
        linkage_key=linkage_key,
        study_id="study-1",
        scrubber=scrubber,
    )


def test_output_is_exactly_the_analysis_view(anonymized) -> None:
    _, out, _ = anonymized
    assert list(out.columns) == ANALYSIS_VIEW
    assert set(out["age_band"].dropna()) <= {"16-25", "26-35", "36-45", "46-55", "56+"}
    assert out["registration_month"].str.fullmatch(r"\d{4}-\d{2}").all()
    assert out["zone_emploi"].dropna().str.fullmatch(r"\d{4}").all()


def test_no_identifier_reaches_the_output_or_the_report(anonymized) -> None:
    raw, out, report = anonymized
    dumped = out.to_csv(index=False) + json.dumps(report.to_dict())
    leaks = [v for v in identifying_strings(raw) if v in dumped]
    assert leaks == []


def test_invalid_and_missing_linkage_identifiers_are_dropped_and_counted_by_row(anonymized) -> None:
    raw, out, report = anonymized
    assert report.records_in == 40 and report.records_out == 38 == len(out)
    # the file's line numbers (header on line 1), as in the node's messages
    assert report.identifiers["nir"].rejected == 1 and report.identifiers["nir"].rejected_rows == [5]
    assert report.identifiers["nir"].empty == 1
    assert {r.rows[0] for r in report.dropped_records.values()} == {5, 9}
    assert report.identifiers["email"].rejected_rows == [11]
    assert report.generalized["commune"].unknown_rows == [14]
    assert report.scrubbed["counselor_note"].entities.get("FR_PHONE", 0) >= 38
    json.dumps(report.to_dict())


def test_the_node_view_states_no_k_target_it_does_not_reach(anonymized) -> None:
    """Issue 10, item 8: the node reported k achieved = 1 against its target of 5. The training view
    states no target (it never leaves the node; what leaves is DP); any target stated is reached."""
    _, _, report = anonymized
    k = report.k_anonymity
    assert k is None or (k["target_reached"] and k["k_achieved"] >= k["k_target"])


def test_a_k_target_that_is_only_reported_is_refused() -> None:
    with pytest.raises(ConfigError, match="enforced.*or not stated"):
        parse_config(
            {
                "linkage": "nir",
                "columns": {"nir": {"identifier": "nir"}, "sex": "keep"},
                "k_anonymity": {"quasi_identifiers": ["sex"], "k": 5, "action": "report"},
            }
        )


def test_pseudonyms_are_linkable_across_partners_but_not_across_studies(
    anonymized, linkage_key, scrubber
) -> None:
    raw, out, _ = anonymized
    other_partner, _ = anonymize_parcours(
        raw.iloc[20:30],
        source="apec/parcours.csv",
        linkage_key=linkage_key,
        study_id="study-1",
        scrubber=scrubber,
    )
    assert set(other_partner["linkage_pseudonym"]) <= set(out["linkage_pseudonym"])
    assert set(other_partner["study_pseudonym"]) <= set(out["study_pseudonym"])
    other_study, _ = anonymize_parcours(
        raw.iloc[20:30],
        source="apec/parcours.csv",
        linkage_key=linkage_key,
        study_id="study-2",
        scrubber=scrubber,
    )
    assert list(other_study["linkage_pseudonym"]) == list(other_partner["linkage_pseudonym"])
    assert not set(other_study["study_pseudonym"]) & set(out["study_pseudonym"])


def test_no_identifier_in_logs(linkage_key, scrubber, caplog, capsys) -> None:
    raw = make_parcours(8, seed=5)
    raw.loc[2, "nir"] = f.wrong_key_nir(random.Random(2))
    with caplog.at_level(logging.DEBUG):
        anonymize_parcours(
            raw, source="ml/parcours.csv", linkage_key=linkage_key, study_id="s", scrubber=scrubber
        )
    captured = capsys.readouterr()
    text = caplog.text + captured.out + captured.err
    assert "ml/parcours.csv" in caplog.text
    assert [v for v in identifying_strings(raw) if v in text] == []


def test_config_must_cover_every_column_and_only_existing_ones(linkage_key, scrubber) -> None:
    raw = make_parcours(3)
    with pytest.raises(ConfigError, match="salary.*not covered"):
        anonymize_parcours(
            raw.assign(salary="1"), source="x.csv", linkage_key=linkage_key, study_id="s", scrubber=scrubber
        )
    with pytest.raises(ConfigError, match="phone.*configured but not in x.csv"):
        anonymize_parcours(
            raw.drop(columns=["phone"]),
            source="x.csv",
            linkage_key=linkage_key,
            study_id="s",
            scrubber=scrubber,
        )


def test_k_anonymity_enforcement_suppresses_small_classes(linkage_key) -> None:
    config = parse_config(
        {
            "linkage": "nir",
            "columns": {
                "nir": {"identifier": "nir"},
                "birth_year": {"generalize": "age_band"},
                "sex": "keep",
            },
            "k_anonymity": {
                "quasi_identifiers": ["age_band", "sex"],
                "k": 3,
                "action": "enforce",
                "max_suppression": 1.0,
            },
        }
    )
    rng = random.Random(4)
    raw = pd.DataFrame(
        {
            "nir": [f.nir(rng) for _ in range(7)],
            "birth_year": ["1990"] * 3 + ["1960"] * 3 + ["2000"],
            "sex": ["F"] * 6 + ["M"],
        }
    )
    out, report = anonymize_table(raw, config, source="t.csv", linkage_key=linkage_key, study_id="s")
    assert len(out) == 6 and report.dropped_records["k-anonymity (k=3)"].rows == [8]  # line 8 of t.csv
    assert report.k_anonymity["k_achieved"] == 3 and report.k_anonymity["target_reached"]


def test_shipped_config_covers_the_contract_schema() -> None:
    assert list(parcours_config().columns) == list(make_parcours(1).columns)


def test_typed_frames_from_an_adapter_are_handled(linkage_key, scrubber) -> None:
    raw = make_parcours(6, seed=21)
    typed = raw.assign(
        birth_year=raw["birth_year"].astype(int),
        commune=raw["commune"].astype(int),  # a CSV reader may drop the leading zero of 04/05/06 codes
        months_to_employment=pd.to_numeric(raw["months_to_employment"]),
        ft_id=raw["ft_id"].replace("", None),
        counselor_note=[None, *raw["counselor_note"][1:]],
    )
    out, report = anonymize_parcours(
        typed, source="t", linkage_key=linkage_key, study_id="s", scrubber=scrubber
    )
    expected, _ = anonymize_parcours(
        raw, source="t", linkage_key=linkage_key, study_id="s", scrubber=scrubber
    )
    assert list(out["zone_emploi"]) == list(expected["zone_emploi"])
    assert list(out["age_band"]) == list(expected["age_band"])
    assert pd.isna(out["counselor_note"].iloc[0]) and report.scrubbed["counselor_note"].texts == 5
    assert report.identifiers["ft_id"].empty == (raw["ft_id"] == "").sum()


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**9))
def test_no_generated_identifier_ever_reaches_the_output(seed: int, linkage_key, scrubber) -> None:
    raw = make_parcours(6, seed=seed)
    out, report = anonymize_parcours(
        raw, source="p.csv", linkage_key=linkage_key, study_id="s", scrubber=scrubber
    )
    dumped = out.to_csv(index=False) + json.dumps(report.to_dict())
    assert [v for v in identifying_strings(raw) if v in dumped] == []
